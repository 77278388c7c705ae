"""cloud-init's NoCloud seed for every VM: user-data, SSH keys, hostname, network.

At create, each VM gets ``cidata.iso`` in its directory: an ISO 9660 volume
labelled ``cidata`` (made with pycdlib) holding

- ``meta-data``: ``instance-id`` (the VM's uuid) and ``local-hostname`` (its name);
- ``user-data``: what the user gave (``vm create -u FILE`` or the template's
  ``user_data``), with the template's and the host's ``ssh_authorized_keys``
  added for the image's default user; with neither, an empty cloud-config;
- ``network-config`` (version 2): DHCP on every NIC, matched by the MAC
  Virshle gave it.

The hypervisor plugins attach it read-only; cloud-init finds it by its
label. User-data must be a ``#cloud-config`` (valid YAML), a ``#!`` script,
or MIME multipart; anything else is refused at create.

Replace it with a plugin of your own (Ignition, say) by disabling this one:
``VIRSHLE_DISABLE_PLUGINS=cloudinit``.
"""

from __future__ import annotations

from virshle_core import hookimpl

NAME = "cloudinit"


@hookimpl
def virshle_pre_create(vm, template, node):
    from .seed import check_user_data, keys_for

    if vm.user_data is not None:
        check_user_data(vm.user_data)
    keys_for(template, node)


@hookimpl
def virshle_provision(vm, template, node):
    from .seed import write_seed

    return [write_seed(vm, template, node)]


@hookimpl
def virshle_guest_login(console):
    from virshle_core.models import GuestLogin

    from .login import login_of

    found = login_of(console)
    return GuestLogin(user=found[0], host_keys=found[1]) if found else None
