"""``vm ssh``'s command line: the lease, the user, and the node as a jump host."""

from __future__ import annotations

import pytest

from virshle_core.wire import api
from virshle_core.cli.ssh import ssh_argv
from virshle_core.errors import Conflict, VirshleError


class Client:
    def __init__(self, url: str):
        self.entry = type("Entry", (), {"url": url})()


def vm(**fields) -> api.Vm:
    base = dict(id=1, uuid="u", name="web", node="n", template="xs", state="running", vcpu=1,
                vram=1, ips=["fd00::5", "10.0.0.5"], provision={"user": "debian"})
    base.update(fields)
    return api.Vm(**base)


def test_a_local_vm_is_reached_at_its_ipv4_lease():
    argv = ssh_argv(Client("unix:///var/lib/virshle/virshle.sock"), vm(), [], "debian", None, [])
    assert argv == ["ssh", "debian@10.0.0.5"]


def test_a_remote_vm_is_reached_through_its_node():
    argv = ssh_argv(Client("ssh://anon@remote_1:2222/var/lib/virshle/virshle.sock"), vm(),
                    ["uptime"], "root", "/k", ["BatchMode=yes"])
    assert argv == ["ssh", "-J", "anon@remote_1:2222", "-i", "/k", "-o", "BatchMode=yes",
                    "root@10.0.0.5", "uptime"]
    assert ssh_argv(Client("ssh://[fd00::1]/v.sock"), vm(provision={"user": "default"}), [],
                    None, None, [])[1:] == ["-J", "[fd00::1]", "10.0.0.5"]


def test_no_lease_or_not_running_is_an_error_that_says_so():
    with pytest.raises(VirshleError, match="no DHCP server has leased one") as caught:
        ssh_argv(Client("unix:///s"), vm(ips=[]), [], None, None, [])
    assert caught.value.code == "no_address"
    with pytest.raises(Conflict, match="'web' is shutdown: there is nothing to log in to"):
        ssh_argv(Client("unix:///s"), vm(state="shutdown"), [], None, None, [])


class Answering(Client):
    """A node that holds a template and a console log."""

    def __init__(self, console: bytes, ssh_user: str | None = None):
        super().__init__("unix:///s")
        self.name, self.console, self.ssh_user = "here", console, ssh_user

    def templates(self):
        return [api.Template(name="xs", vcpu=1, vram=1, ssh_user=self.ssh_user)]

    def console_tail(self, ref, size):
        return self.console[-size:]


DEBIAN_CONSOLE = b"""\
[   12.1] cloud-init[401]: Cloud-init v. 22.4.2 running 'modules:config'
ci-info: ++++++Authorized keys from /home/debian/.ssh/authorized_keys for user debian+++++++
<14>Dec  6 23:59:01 cloud-init: #############################################################
-----BEGIN SSH HOST KEY KEYS-----
ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOld= root@web
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldKey root@web
-----END SSH HOST KEY KEYS-----
... a reboot, new keys (a clone):
-----BEGIN SSH HOST KEY KEYS-----
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewKey root@web
-----END SSH HOST KEY KEYS-----
"""


def test_the_user_is_the_user_datas_then_the_templates_then_the_consoles_then_root(
        tmp_path, monkeypatch):
    """Before, with user-data naming no user, ssh logged in as the local user; Debian's
    image answered 'Please login as the user "debian"'."""
    from virshle_core.cli.ssh import login_for

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    default = vm(provision={"user": "default"})
    assert login_for(Answering(DEBIAN_CONSOLE), vm(), None)[0] == "debian"  # its user-data's
    assert login_for(Answering(b"", ssh_user="admin"), default, None)[0] == "admin"
    user, known = login_for(Answering(DEBIAN_CONSOLE), default, None)
    assert user == "debian"
    assert login_for(Answering(b"no cloud-init here"), default, None)[0] == "root"
    assert login_for(Answering(DEBIAN_CONSOLE), default, "alice")[0] == "alice"

    # the last boot's keys, under the VM's own name, checked strictly
    assert known.path == tmp_path / "virshle" / "known_hosts" / "here" / "u"
    assert known.path.read_text() == "virshle-u ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewKey\n"
    argv = ssh_argv(Answering(b""), default, [], user, None, ["StrictHostKeyChecking=no"], known)
    assert argv == ["ssh", "-o", "StrictHostKeyChecking=no",
                    "-o", f"UserKnownHostsFile={known.path}", "-o", "HostKeyAlias=virshle-u",
                    "-o", "StrictHostKeyChecking=yes", "debian@10.0.0.5"]
    quiet = login_for(Answering(b""), default, None)[1]
    assert quiet.options()[-1] == "StrictHostKeyChecking=accept-new"  # learnt at first login


def test_hook_virshle_guest_login():
    """The cloudinit plugin reads cloud-init's console output (plugins/cloudinit)."""
    from virshle_core.hooks import plugins

    found = plugins().guest_login(vm=vm(), console=DEBIAN_CONSOLE.decode())
    assert found.user == "debian"
    assert found.host_keys == ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewKey"]
    assert plugins().guest_login(vm=vm(), console="Linux version 6.1\nlogin:") is None
