"""Every `vm` verb names its VM the same way: NAME, as start, stop and rm take it (issue 23,
item 3). `vm info att` said "Got unexpected extra argument" before, and so did `vm logs`
and `vm attach`."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "full command line"])
def test_vm_info_takes_a_name(daemon, fast):
    assert daemon.cli("vm", "create", "-t", "xs", "--name", "att").returncode == 0
    env = {} if fast else {"VIRSHLE_NO_FAST": "1"}
    shown = daemon.cli("vm", "info", "att", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.json()["name"] == "att"
    both = daemon.cli("vm", "info", "att", "--name", "att", env=env)
    assert both.returncode == 2 and "exactly one" in both.stderr


def test_vm_logs_and_attach_take_a_name(daemon):
    assert daemon.cli("vm", "create", "-t", "xs", "--name", "att").returncode == 0
    logs = daemon.cli("vm", "logs", "att")  # found by its name: one that never ran has none
    assert logs.returncode == 1 and "VM 'att' has no console" in logs.stderr, logs.stderr
    attach = daemon.cli("vm", "attach", "att")
    assert attach.returncode == 1 and "VM 'att' is created; its console is not live" \
        in attach.stderr, attach.stderr
    missing = daemon.cli("vm", "logs", "nosuch")
    assert missing.returncode == 1 and "no VM 'nosuch'" in missing.stderr
