"""The NoCloud seed: what it holds, and which user-data it refuses."""

from __future__ import annotations

import email
import io
import uuid
from pathlib import Path

import pycdlib
import pytest
import yaml

from virshle_cloudinit.seed import NEW_MACHINE, check_user_data, user_data_with_keys, write_seed
from virshle_core import UsageError
from virshle_core.config import parse_config
from virshle_core.models import Net, NodeContext, Vm

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGuHBNv3CK2vFBFVIWyXB0IXAFBHOfIyX4dFzlS7y2Rv test@virshle"


def read_iso(path: Path) -> dict[str, str]:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        files = {}
        for name in ("meta-data", "user-data", "network-config"):
            out = io.BytesIO()
            try:
                iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
            except pycdlib.pycdlibexception.PyCdlibInvalidInput:
                continue
            files[name] = out.getvalue().decode()
        return files
    finally:
        iso.close()


def make(tmp_path: Path, user_data: str | None = None, template_keys=(), host_keys=()):
    text = f'[host]\nroot = "/var/lib/virshle"\nssh_authorized_keys = {list(host_keys)!r}\n' \
           f'[[template.vm]]\nname = "xs"\nssh_authorized_keys = {list(template_keys)!r}\n'
    config = parse_config(text.replace("'", '"'), path=None)
    vm_uuid = str(uuid.uuid4())
    vm = Vm(id=1, uuid=vm_uuid, name="web-1", node="default", template="xs", vcpu=1, vram=1,
            nets=[Net(name="main", type="tap", mac="02:76:73:00:00:0a", ifname="vm1n0")],
            user_data=user_data, dir=str(tmp_path / vm_uuid))
    vm.path.mkdir()
    return vm, config.template("xs"), NodeContext(name="default", config=config)


def test_the_seed_names_the_vm_and_its_nics(tmp_path):
    vm, template, node = make(tmp_path)
    disk = write_seed(vm, template, node)
    assert disk.readonly and disk.name == "cidata" and Path(disk.path).stat().st_mode & 0o777 == 0o600
    files = read_iso(Path(disk.path))
    assert yaml.safe_load(files["meta-data"]) == {"instance-id": vm.uuid, "local-hostname": "web-1"}
    # a seed even with nothing to say: Virshle's own part, which makes a clone a new machine
    assert yaml.safe_load(files["user-data"]) == {"bootcmd": [NEW_MACHINE]}
    assert yaml.safe_load(files["network-config"]) == {"version": 2, "ethernets": {"nic0": {
        "match": {"macaddress": "02:76:73:00:00:0a"}, "dhcp4": True}}}
    assert vm.provision == {"seed": "nocloud", "disk": "cidata", "user": "default",
                            "user_data": None, "keys": []}


def test_keys_from_the_template_and_the_host_reach_the_default_user(tmp_path):
    key_file = tmp_path / "id.pub"
    key_file.write_text(KEY.replace("test@", "file@") + "\n")
    vm, template, node = make(tmp_path, template_keys=[str(key_file)], host_keys=[KEY])
    files = read_iso(Path(write_seed(vm, template, node).path))
    keys = yaml.safe_load(files["user-data"])["ssh_authorized_keys"]
    assert keys == [KEY, KEY.replace("test@", "file@")]
    import subprocess

    expected = subprocess.run(["ssh-keygen", "-lf", str(key_file)], capture_output=True, text=True,
                              check=True).stdout.split()[1]
    assert vm.provision["keys"] == [expected] * 2  # as ssh-keygen -l says


@pytest.mark.parametrize("user_data,kind", [
    ("#cloud-config\nruncmd: [[touch, /x]]\nssh_authorized_keys: [mine]\n", "cloud-config"),
    ("#!/bin/sh\ntouch /x\n", "script"),
])
def test_user_data_is_kept_as_given_and_the_keys_join_it(user_data, kind):
    assert check_user_data(user_data) == kind
    merged = email.message_from_string(user_data_with_keys(user_data, [KEY]))
    parts = [part.get_payload() for part in merged.get_payload()]
    assert parts[0] == user_data  # verbatim
    ours = yaml.safe_load(parts[1])
    assert ours["ssh_authorized_keys"] == [KEY]
    assert {"name": "list", "settings": ["append"]} in ours["merge_how"]  # theirs are kept
    alone = email.message_from_string(user_data_with_keys(user_data, []))
    assert [part.get_payload() for part in alone.get_payload()][0] == user_data
    assert yaml.safe_load(alone.get_payload()[1].get_payload())["bootcmd"] == [NEW_MACHINE]


def test_mime_user_data_gets_one_more_part():
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    message = MIMEMultipart()
    message.attach(MIMEText("#!/bin/sh\necho hi\n", "x-shellscript"))
    user_data = message.as_string()
    assert check_user_data(user_data) == "mime"
    merged = email.message_from_string(user_data_with_keys(user_data, [KEY]))
    assert len(merged.get_payload()) == 2


@pytest.mark.parametrize("user_data,message", [
    ("#cloud-config\nruncmd: [a, b\nwrite_files: []\n", "not valid YAML at line 3, column 12"),
    ("#cloud-config\n- a list\n", "a mapping of keys"),
    ("hello: world\n", "must be a #cloud-config"),
    ("", "must be a #cloud-config"),
    ("MIME-Version: 1.0\nContent-Type: text/plain\n\nhi\n", "not multipart"),
])
def test_user_data_cloud_init_would_not_read_is_refused(user_data, message):
    with pytest.raises(UsageError, match=message):
        check_user_data(user_data)
