"""`vm create -n K` over several nodes: each VM placed where there is room for it, counting
what the command already placed; refused whole, before anything is made, when the nodes
together cannot take all K (issue 22, item 4)."""

from __future__ import annotations

from collections import Counter

import pytest

from virshle_core.testing import Daemon, nodes_config, run_cli, write_config


def node(directory, cpu_limit: int) -> Daemon:
    directory.mkdir()
    config = write_config(directory)
    config.write_text(config.read_text().replace(  # room counts every VM created
        "cpu = 100000", f'cpu = {cpu_limit}\nreserve = "defined"'))
    return Daemon(directory, config).start()


@pytest.fixture
def uneven(tmp_path):
    """Two nodes of this 2-core machine: ``small`` takes one 1-vcpu VM, ``big`` three."""
    daemons = {}
    try:
        daemons["small"] = node(tmp_path / "small", 50)
        daemons["big"] = node(tmp_path / "big", 150)
        yield nodes_config(tmp_path / "cli.toml", daemons), daemons
    finally:
        for daemon in daemons.values():
            daemon.close()


def names_by_node(daemons) -> dict[str, list[str]]:
    return {name: sorted(v["name"] for v in d.cli("vm", "ls", "--json").json())
            for name, d in daemons.items()}


def test_a_count_is_spread_where_there_is_room(uneven):
    config, daemons = uneven
    for attempt in range(3):  # a random plan that ignored room fitted 4 of 4 rarely
        result = run_cli("vm", "create", "-t", "xs", "-n", "4", "--name", "lb", "--json",
                         config=config)
        assert result.returncode == 0, result.stderr
        placed = Counter(vm["node"] for vm in result.json())
        assert placed == {"small": 1, "big": 3}
        on = names_by_node(daemons)
        assert sorted(on["small"] + on["big"]) == ["lb-1", "lb-2", "lb-3", "lb-4"]
        assert run_cli("vm", "rm", "--all", "--yes", config=config).returncode == 0


def test_a_count_the_nodes_cannot_take_is_refused_before_anything_is_made(uneven):
    config, daemons = uneven
    first = run_cli("vm", "create", "-t", "xs", "--node", "big", "--json", config=config)
    assert first.returncode == 0, first.stderr
    before = first.json()[0]["id"]
    result = run_cli("vm", "create", "-t", "xs", "-n", "4", "--name", "lb", config=config)
    assert result.returncode == 1
    assert "room for 3 of the 4 VMs of template 'xs' (small: 1, big: 2); nothing was created" \
        in result.stderr, result.stderr
    assert names_by_node(daemons)["small"] == []
    assert len(names_by_node(daemons)["big"]) == 1
    again = run_cli("vm", "create", "-t", "xs", "--node", "big", "--json", config=config)
    assert again.json()[0]["id"] == before + 1  # the refused attempt took no id
