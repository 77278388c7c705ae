"""Every table fits the terminal, from 80 columns up; --wide shows everything."""

from __future__ import annotations

import pytest

from tests.support import Daemon, run_cli, write_config

TABLES = [
    ["node", "ls"], ["node", "ls", "-v"], ["node", "ls", "-vv"], ["node", "ls", "--all"],
    ["node", "ls", "--all", "-v"], ["vm", "ls"], ["vm", "ls", "-v"], ["vm", "ls", "-vvv"],
    ["vm", "info", "--name", "a-rather-long-vm-name-1"], ["template", "ls"], ["plugins", "ls"],
]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tables")
    daemon = Daemon(directory, write_config(directory))
    daemon.start()
    created = daemon.cli("vm", "create", "-t", "xs", "-n", "3", "--name", "a-rather-long-vm-name")
    assert created.returncode == 0, created.stderr
    try:
        yield daemon
    finally:
        daemon.stop()


def show(node, args: list[str], columns: int):
    result = run_cli(*args, config=node.config, env={"COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("args", TABLES, ids=" ".join)
def test_each_table_fits(node, args, columns):
    lines = show(node, args, columns).splitlines()
    assert lines and max(len(line) for line in lines) <= columns, "\n".join(lines)


def test_node_ls_all_says_what_is_used_and_reserved(node):
    narrow, wide = show(node, ["node", "ls", "--all"], 80), show(node, ["node", "ls", "--all"], 120)
    for header in ("cpu rsv", "ram rsv", "disk rsv", "sat"):
        assert header in narrow  # short headers
    for header in ("cpu used", "cpu reserved", "ram reserved", "disk reserved", "saturation"):
        assert header in wide
    assert "…" not in narrow  # optional columns went, headers shortened, nothing was cut
    full = run_cli("node", "ls", "--all", "--wide", config=node.config, env={"COLUMNS": "80"})
    assert "cpu used" in full.stdout and "[" in full.stdout  # bars, every column
    assert max(len(line) for line in full.stdout.splitlines()) > 80
    as_json = run_cli("node", "ls", "--all", "--json", config=node.config, env={"COLUMNS": "80"})
    (document,) = as_json.json()
    assert {"used", "usage_pct", "reserved", "total"} <= set(document["cpu"])


def test_vm_ls_wide_keeps_every_column(node):
    for args in (["vm", "ls", "-vvv", "--wide"], ["vm", "ls", "--wide", "-vvv"]):
        shown = show(node, args, 80)
        assert "uuid" in shown and "created_at" in shown and "provision" in shown


def test_dropped_columns_are_said_once_and_names_cut_once(node):
    """Before, `vm ls -v` at 80 columns dropped columns without a word."""
    shown = show(node, ["vm", "ls", "-v"], 80)
    lines = shown.splitlines()
    assert lines[-1].endswith("hidden (provision, disks), --wide shows them"), shown
    assert "…" not in shown  # the names fit once the optional columns went
    assert "hidden" not in show(node, ["vm", "ls", "-v"], 200)


def test_vvv_adds_the_uuids_the_help_promises(node):
    shown = show(node, ["vm", "ls", "-vvv"], 120)
    uuids = [vm["uuid"] for vm in node.cli("vm", "ls", "--json").json()]
    assert "uuid" in shown and all(uuid in shown for uuid in uuids), shown
    assert "hidden" in shown  # the dates went first, and it says so
    helped = run_cli("vm", "ls", "--help", config=node.config).stdout
    assert "-vvv uuids" in helped


def test_vm_info_wraps_paths_instead_of_cutting_them(node):
    shown = show(node, ["vm", "info", "a-rather-long-vm-name-1"], 80)
    assert "…" not in shown
    vm = node.cli("vm", "info", "a-rather-long-vm-name-1", "--json").json()
    joined = "".join(line.strip("│ ").split("│")[-1].strip() for line in shown.splitlines())
    for disk in vm["disks"]:
        assert disk["path"] in joined  # whole, over several lines


def test_wide_fits_a_terminal_wide_enough(node):
    """Before, --wide drew every column at full width even where cutting long cells to a
    readable width would fit the terminal."""
    natural = max(len(line) for line in show(node, ["vm", "ls", "-vvv", "--wide"], 400).splitlines())
    shown = show(node, ["vm", "ls", "-vvv", "--wide"], natural - 10)
    assert max(len(line) for line in shown.splitlines()) <= natural - 10
    assert "created_at" in shown and "hidden" not in shown
