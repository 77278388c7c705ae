"""Provisioning through a real daemon (issue 9): where user-data and keys come from, bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import Daemon, write_config
from tests.support import one_line_error, snapshot

ESP = bytes.fromhex("28732ac11ff8d211ba4b00a0c93ec93b")


def uefi_image(path: Path) -> Path:
    """A disk with a GPT whose first partition is an EFI system partition (enough to be seen as UEFI)."""
    data = bytearray(64 * 1024)
    data[512:520] = b"EFI PART"
    data[512 + 72:512 + 80] = (2).to_bytes(8, "little")    # partition entries at LBA 2
    data[512 + 80:512 + 84] = (128).to_bytes(4, "little")  # 128 entries
    data[512 + 84:512 + 88] = (128).to_bytes(4, "little")  # of 128 bytes
    data[1024:1040] = ESP
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    directory = tmp_path_factory.mktemp("provision")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / "key")],
                   check=True)
    (directory / "not-a-key.pub").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n")
    (directory / "template-user-data").write_text("#cloud-config\nruncmd: [[touch, /x]]\n")
    config = write_config(directory)
    config.write_text(config.read_text().replace(
        '[[template.vm]]\nname = "xs"',
        f'[[template.vm]]\nname = "xs"\nssh_authorized_keys = ["{directory / "key.pub"}"]', 1)
        + f'\n[[template.vm]]\nname = "withdata"\nuser_data = "{directory / "template-user-data"}"\n'
          f'[[template.vm.disk]]\nname = "os"\npath = "{directory / "disk.img"}"\n'
          f'\n[[template.vm]]\nname = "lostdata"\nuser_data = "{directory / "nowhere"}"\n'
          f'\n[[template.vm]]\nname = "lostkey"\nssh_authorized_keys = ["{directory / "gone.pub"}"]\n'
          f'\n[[template.vm]]\nname = "badkey"\nssh_authorized_keys = ["{directory / "not-a-key.pub"}"]\n'
          f'\n[[template.vm]]\nname = "uefi"\n[[template.vm.disk]]\nname = "os"\n'
          f'path = "{uefi_image(directory / "uefi.img")}"\n'
          f'\n[qemu]\novmf_code = "{directory / "no-ovmf" / "OVMF_CODE.fd"}"\n')
    daemon = Daemon(directory, config)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_keys_and_user_data_show_in_vm_info(node):
    user_data = node.directory / "mine"
    user_data.write_text("#!/bin/sh\necho hello\n")
    created = node.cli("vm", "create", "-t", "xs", "--name", "given", "-u", str(user_data))
    assert created.returncode == 0, created.stderr
    info = node.cli("vm", "info", "--name", "given")
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(node.directory / "key.pub")],
                                 capture_output=True, text=True).stdout.split()[1]
    assert f"nocloud seed, user default, keys {fingerprint}, user-data script" in info.stdout
    listing = node.cli("vm", "ls", "-v")
    assert "nocloud, 1 key, script" in listing.stdout
    seed = node.root / "vm" / node.cli("vm", "info", "--name", "given", "--json").json()["uuid"]
    assert (seed / "cidata.iso").exists() and (seed / "user-data").read_text() == user_data.read_text()
    templated = node.cli("vm", "create", "-t", "withdata", "--name", "templated", "--json")
    assert templated.returncode == 0, templated.stderr
    assert templated.json()[0]["provision"]["user_data"] == "cloud-config"


@pytest.mark.parametrize("args,message", [
    (["-t", "xs", "-u", "@bad-yaml"], "not valid YAML at line 3, column 6"),
    (["-t", "xs", "-u", "@plain"], "must be a #cloud-config"),
    (["-t", "lostdata"], "user_data"),
    (["-t", "lostkey"], "does not exist"),
    (["-t", "badkey"], "is not a public key"),
    (["-t", "uefi"], "Install the Debian package ovmf"),
])
def test_bad_provisioning_input_is_exit_2_and_leaves_nothing(node, args, message):
    (node.directory / "bad-yaml").write_text("#cloud-config\nruncmd: [a\n  - b: ]\n")
    (node.directory / "plain").write_text("just some text\n")
    args = [str(node.directory / a[1:]) if a.startswith("@") else a for a in args]
    before = snapshot(node)
    result = node.cli("vm", "create", *args)
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert message in line or message in result.stderr, result.stderr
    assert snapshot(node)[0] == before[0] and snapshot(node)[2] == before[2]
