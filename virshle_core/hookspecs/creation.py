"""VM creation hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .marker import hookspec

if TYPE_CHECKING:
    from ..config import TemplateDisk, VmTemplate
    from ..models import ClonedDisk, Disk, NodeContext, Vm


@hookspec
def virshle_pre_create(vm: Vm, template: VmTemplate, node: NodeContext) -> None:
    """Validate or prepare a VM before anything is made for it.

    Called for every plugin, before disks are cloned. Raise ``VirshleError``
    (or ``UsageError`` for bad input: exit 2) to refuse the VM: nothing is left
    behind. An implementation may fill fields of ``vm`` (e.g. MACs of its nets).

    :param vm: the VM being created; ``vm.id`` is not set yet.
    :param template: the template it comes from.
    :param node: the node it is created on.
    :returns: nothing.

    Example::

        @hookimpl
        def virshle_pre_create(vm, template):
            if template.vcpu > 8:
                raise UsageError(f"VM {vm.name}: at most 8 vcpu here", "Use a smaller template.")
    """


@hookspec(firstresult=True)
def virshle_disk_clone(source: str, dest: str, disk: TemplateDisk, node: NodeContext
                       ) -> ClonedDisk | None:
    """Make the VM's own disk ``dest`` from the template disk ``source``.

    The template's file must never be written. The core's default keeps one
    verified copy of each image in ``node.root / "cache"`` and gives each VM a
    reflink of it or a qcow2 overlay on it; a storage plugin may do otherwise
    (a ZFS clone, an LVM snapshot).

    Stops at first non-None result.

    :param source: absolute path of the template disk.
    :param dest: absolute path to create (its directory exists).
    :param disk: the template's disk entry (name, readonly).
    :param node: the node: ``node.root`` is where its caches go.
    :returns: a ``ClonedDisk(format="raw" | "qcow2", size=bytes)``, or None to
        let another plugin clone it. (A dict with those keys, what this hook
        returned before, is still read.)

    Example::

        @hookimpl
        def virshle_disk_clone(source, dest):
            subprocess.run(["cp", "--reflink=always", source, dest], check=True)
            return ClonedDisk(format="raw", size=os.path.getsize(dest))
    """


@hookspec
def virshle_provision(vm: Vm, template: VmTemplate, node: NodeContext) -> list[Disk] | None:
    """Make what the guest needs at its first boot, e.g. a cloud-init NoCloud seed.

    Called for every plugin when a VM is created, after its own disks are
    made and its NICs have their MACs, before the VM becomes visible. Write
    files into ``vm.path`` only: they go with the VM. The disks returned are
    attached read-only after the VM's own disks (QEMU: virtio; cloud-hypervisor:
    ``readonly: true``), in the order the plugins answer. The ``cloudinit``
    plugin writes a NoCloud seed; a plugin for Ignition would write its config
    drive instead (disable ``cloudinit`` with ``VIRSHLE_DISABLE_PLUGINS=cloudinit``).

    ``vm.user_data`` is the user-data the user gave (``--user-data``, or the
    template's ``user_data`` file); ``virshle_core.keys.authorized_keys``
    reads the template's and the host's ``ssh_authorized_keys``. Validate
    them in ``virshle_pre_create`` (raise ``UsageError``: exit 2, nothing is
    made). Say what was done, for ``vm info``, in ``vm.provision``
    (JSON-serialisable: e.g. ``{"seed": "nocloud", "user": "debian",
    "keys": ["SHA256:…"]}``).

    :param vm: the VM being created; its directory exists.
    :param template: the template it comes from.
    :param node: the node it is created on.
    :returns: the extra disks it boots with, or None.

    Example::

        @hookimpl
        def virshle_provision(vm, template, node):
            keys = authorized_keys(node.config.host.ssh_authorized_keys + template.ssh_authorized_keys)
            path = vm.path / "ignition.json"
            path.write_text(json.dumps(ignition_config(vm, keys)))
            vm.provision = {"seed": "ignition", "keys": [fingerprint(k) for k in keys]}
            return [Disk(name="ignition", path=str(path), size=path.stat().st_size, readonly=True)]
    """
