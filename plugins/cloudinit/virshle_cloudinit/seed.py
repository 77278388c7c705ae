"""The NoCloud seed: its files, and the ISO 9660 volume that carries them."""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path
from typing import Any

from virshle_core import UsageError
from virshle_core.keys import authorized_keys, fingerprint
from virshle_core.models import Disk

SEED = "cidata.iso"
# Our keys part merges into the user's cloud-config instead of replacing its lists.
MERGE_HOW = [{"name": "list", "settings": ["append"]},
             {"name": "dict", "settings": ["no_replace", "recurse_list"]}]


def kind_of(user_data: str) -> str:
    """``cloud-config``, ``script`` or ``mime``; UsageError for anything else."""
    head = user_data.lstrip("\ufeff")
    if head.startswith("#cloud-config"):
        return "cloud-config"
    if head.startswith("#!"):
        return "script"
    first = head.split("\n", 1)[0].lower()
    if first.startswith(("content-type: multipart/", "mime-version:")):
        return "mime"
    raise UsageError(
        f"user-data starts with {head[:30]!r}: it must be a #cloud-config (YAML), "
        "a #! script, or MIME multipart",
        "Start a cloud-config with the line #cloud-config.", code="bad_user_data")


@functools.lru_cache(maxsize=4)
def cloud_config(user_data: str) -> Any:
    """The #cloud-config's YAML, parsed once per text (a create checks it, then the seed
    reads its user), with libyaml's C loader when it is there; UsageError when it is not
    YAML cloud-init could read."""
    import yaml  # only for the user's own YAML: what Virshle writes is JSON, which is YAML

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(user_data, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"user-data is not valid YAML{where}: {problem}",
                         "Fix the #cloud-config; `python3 -c 'import yaml,sys; "
                         "yaml.safe_load(sys.stdin)' < FILE` shows the same.",
                         code="bad_user_data") from None
    except RecursionError:
        raise UsageError("user-data: its YAML is nested too deeply", code="bad_user_data") from None


def _shape_problem(data: dict) -> str | None:
    """What in a cloud-config cloud-init (and the seed) would fail on: the keys Virshle
    reads, in the types cloud-init takes them."""
    system_info = data.get("system_info")
    if system_info is not None:
        if not isinstance(system_info, dict):
            return "system_info must be a mapping"
        default_user = system_info.get("default_user")
        if default_user is not None and not isinstance(default_user, dict):
            return "system_info.default_user must be a mapping"
    users = data.get("users")
    if users is not None:
        if isinstance(users, (str, dict)):
            return None
        if not isinstance(users, list):
            return "users must be a list (or a name, or a mapping)"
        for index, user in enumerate(users):
            if not isinstance(user, (str, dict)) and not (isinstance(user, list) and user):
                return f"users[{index}] must be a name or a mapping"
    return None


def check_user_data(user_data: str) -> str:
    """Refuse user-data cloud-init would not read; return its kind."""
    kind = kind_of(user_data)
    if kind == "cloud-config":
        data = cloud_config(user_data)
        if data is not None and not isinstance(data, dict):
            raise UsageError(f"user-data: a #cloud-config is a mapping of keys, not a "
                             f"{type(data).__name__}", code="bad_user_data")
        problem = _shape_problem(data or {})
        if problem:
            raise UsageError(f"user-data: {problem}", "See cloud-init's documentation of the "
                             "users and system_info keys.", code="bad_user_data")
    elif kind == "mime":
        import email

        message = email.message_from_string(user_data)
        if not message.is_multipart():
            raise UsageError("user-data: the MIME document is not multipart", code="bad_user_data")
    return kind


def keys_for(template, node) -> list[str]:
    """The host's and the template's ``ssh_authorized_keys``, read and checked."""
    return authorized_keys(list(node.config.host.ssh_authorized_keys)
                           + list(template.ssh_authorized_keys))


# A guest whose disk already booted as another instance (a clone of a VM that ran) resets
# what makes a machine unique and cloud-init does not: /etc/machine-id, and dhclient's
# DUID, kept in its lease file, which carries the source's MAC (so Kea took the clone for
# its source). The lease goes back (release), the file goes, and dhclient asks again.
# cloud-init itself makes new SSH host keys for the new instance-id (ssh_deletekeys).
NEW_MACHINE = r"""state=/var/lib/virshle/instance-id
if [ -s "$state" ] && [ "$(cat "$state")" != "$INSTANCE_ID" ]; then
  rm -f /etc/machine-id /var/lib/dbus/machine-id
  systemd-machine-id-setup >/dev/null 2>&1 || dbus-uuidgen --ensure=/etc/machine-id
  for lease in /var/lib/dhcp/dhclient.*.leases; do
    [ -e "$lease" ] || continue
    iface=${lease#/var/lib/dhcp/dhclient.}; iface=${iface%.leases}
    dhclient -r -pf "/run/dhclient.$iface.pid" -lf "$lease" "$iface" >/dev/null 2>&1
    rm -f "$lease"
    dhclient -4 -pf "/run/dhclient.$iface.pid" -lf "$lease" "$iface" >/dev/null 2>&1
  done
fi
mkdir -p /var/lib/virshle && echo "$INSTANCE_ID" > "$state"
"""


def user_data_with_keys(user_data: str | None, keys: list[str]) -> str:
    """The user-data the guest reads: the user's, verbatim, plus Virshle's own part: the
    keys, and the ``bootcmd`` that makes a clone a new machine (``NEW_MACHINE``)."""
    import json

    keys_part = {"bootcmd": [NEW_MACHINE], **({"ssh_authorized_keys": keys} if keys else {})}
    if user_data is None:
        return "#cloud-config\n" + json.dumps(keys_part, indent=1) + "\n"
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    import email

    kind = kind_of(user_data)
    ours = MIMEText("#cloud-config\n" + json.dumps({"merge_how": MERGE_HOW, **keys_part},
                                                    indent=1) + "\n", "cloud-config")
    ours.add_header("Content-Disposition", 'attachment; filename="virshle-keys.cfg"')
    if kind == "mime":
        message = email.message_from_string(user_data)
    else:
        message = MIMEMultipart()
        subtype = "cloud-config" if kind == "cloud-config" else "x-shellscript"
        part = MIMEText(user_data, subtype)
        part.add_header("Content-Disposition", f'attachment; filename="user-data.{subtype}"')
        message.attach(part)
    message.attach(ours)
    return message.as_string()


def user_of(user_data: str | None) -> str:
    """The user the keys are for, as far as the user-data says: else the image's default."""
    if user_data is None or kind_of(user_data) != "cloud-config":
        return "default"
    data = cloud_config(user_data) or {}
    if not isinstance(data, dict) or _shape_problem(data):
        return "default"
    default = ((data.get("system_info") or {}).get("default_user") or {}).get("name")
    users = data.get("users") or []
    for user in users if isinstance(users, list) else [users]:
        if isinstance(user, dict) and user.get("name"):
            return str(user["name"])
        if user != "default" and isinstance(user, str):
            return user
    return str(default or "default")


def network_config(vm) -> dict | None:
    """DHCP on every NIC, each matched by its MAC (cloud-init's network-config v2)."""
    ethernets = {}
    for index, net in enumerate(vm.nets):
        if net.mac:
            ethernets[f"nic{index}"] = {"match": {"macaddress": net.mac}, "dhcp4": True}
    return {"version": 2, "ethernets": ethernets} if ethernets else None


def write_seed(vm, template, node) -> Disk:
    """Write ``cidata.iso`` into the VM's directory; say what it holds in ``vm.provision``."""
    import pycdlib

    import json

    keys = keys_for(template, node)
    # JSON is YAML, and costs a fraction of PyYAML's emitter on every create
    files = {
        "meta-data": json.dumps({"instance-id": vm.uuid, "local-hostname": vm.name}, indent=1),
        "user-data": user_data_with_keys(vm.user_data, keys),
    }
    network = network_config(vm)
    if network:
        files["network-config"] = json.dumps(network, indent=1)
    iso = pycdlib.PyCdlib()
    # Rock Ridge gives the files their real names, which is what cloud-init reads (Joliet,
    # a second directory tree for Windows, would cost a third more on every create)
    iso.new(interchange_level=3, rock_ridge="1.09", vol_ident="cidata")
    for name, text in files.items():
        data = text.encode()
        short = name.replace("-", "").upper()[:8]
        iso.add_fp(io.BytesIO(data), len(data), f"/{short}.;1", rr_name=name)
    path = Path(vm.dir) / SEED
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it may hold secrets
    with os.fdopen(fd, "wb") as handle:
        iso.write_fp(handle)
    iso.close()
    vm.provision = {
        "seed": "nocloud", "disk": "cidata",
        "user": user_of(vm.user_data),
        "user_data": kind_of(vm.user_data) if vm.user_data is not None else None,
        "keys": [fingerprint(key) for key in keys],
    }
    return Disk(name="cidata", path=str(path), size=path.stat().st_size, readonly=True,
                format="raw")
