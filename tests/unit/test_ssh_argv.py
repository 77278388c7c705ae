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


def test_a_local_vm_is_reached_at_its_ipv4_lease_as_its_user():
    argv = ssh_argv(Client("unix:///var/lib/virshle/virshle.sock"), vm(), [], None, None, [])
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
