"""Plugin discovery: entry points only, allow and deny lists, broken plugins skipped."""

from __future__ import annotations

import json

import pytest

from tests.support import make_plugin_dist

BUILT_IN = {"ch", "qemu", "ovs", "macvtap", "kea", "lb", "cloudinit"}


def names(result) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {p["name"] for p in json.loads(result.stdout)}


def test_builtins_are_found_through_entry_points(cli):
    result = cli("plugins", "ls", "--json")
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert BUILT_IN | {"core"} <= set(plugins)
    assert plugins["lb"]["distribution"] == "virshle-lb"
    assert plugins["lb"]["version"] == "0.1.0"
    assert plugins["lb"]["hooks"] == ["virshle_choose_node"]
    assert plugins["lb"]["status"] == "loaded"
    assert "virshle_config_sections" in plugins["kea"]["hooks"]


def test_allow_list(cli):
    assert names(cli("plugins", "ls", "--json", env={"VIRSHLE_PLUGINS": "ovs,qemu"})) == {
        "core", "ovs", "qemu"}


def test_deny_list(cli):
    assert names(cli("plugins", "ls", "--json", env={"VIRSHLE_DISABLE_PLUGINS": "lb, kea"})) == (
        BUILT_IN | {"core"}) - {"lb", "kea"}


def test_a_plugin_that_raises_on_import_is_skipped(cli, tmp_path):
    site = make_plugin_dist(tmp_path, "broken", """
        raise RuntimeError("this plugin is broken on purpose")
    """)
    result = cli("plugins", "ls", "--json", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["broken"]["status"] == "broken"
    assert "this plugin is broken on purpose" in plugins["broken"]["error"]
    assert BUILT_IN <= {n for n, p in plugins.items() if p["status"] == "loaded"}
    # reported once, on stderr, with what to do
    assert result.stderr.count("plugin 'broken'") == 1
    assert "VIRSHLE_DISABLE_PLUGINS=broken" in result.stderr
    # the rest of the CLI works
    other = cli("template", "ls", "--json", env={"PYTHONPATH": str(site)},
                config=tmp_path / "none.toml")
    assert other.returncode == 2 and "no such configuration file" in other.stderr
    assert "Traceback" not in other.stderr


def test_a_plugin_with_a_bad_hook_signature_is_skipped(cli, tmp_path):
    site = make_plugin_dist(tmp_path, "badsig", """
        from virshle_core import hookimpl

        @hookimpl
        def virshle_node_info(node, surprise):
            return {}

        @hookimpl
        def virshle_no_such_hook():
            pass
    """)
    result = cli("plugins", "ls", "--json", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["badsig"]["status"] == "broken"
    assert "surprise" in plugins["badsig"]["error"]


def test_deny_list_keeps_a_broken_plugin_from_loading(cli, tmp_path):
    site = make_plugin_dist(tmp_path, "broken", "raise ImportError('nope')")
    result = cli("plugins", "ls", "--json",
                 env={"PYTHONPATH": str(site), "VIRSHLE_DISABLE_PLUGINS": "broken"})
    assert "broken" not in names(result) and result.stderr == ""


def test_plugins_ls_table(cli):
    result = cli("plugins", "ls")
    assert result.returncode == 0
    assert "virshle-ovs" in result.stdout and "choose_node" in result.stdout


def test_hookimpl_is_exported():
    import pluggy

    from virshle_core import hookimpl

    assert isinstance(hookimpl, pluggy.HookimplMarker)
    assert hookimpl.project_name == "virshle"


@pytest.mark.parametrize("module", ["virshle_lb", "virshle_kea", "virshle_ovs", "virshle_qemu",
                                    "virshle_ch", "virshle_macvtap"])
def test_builtin_plugins_import_only_the_public_core(module):
    """A built-in plugin is written as a third party would: public core names only."""
    import ast
    import importlib

    path = importlib.import_module(module).__file__
    tree = ast.parse(open(path).read())
    allowed = {"virshle_core", "virshle_core.config", "virshle_core.models", "virshle_core.errors",
               "virshle_core.marks"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("virshle"):
            assert node.module in allowed, f"{module} imports {node.module}"
            assert not node.module.startswith(tuple(f"virshle_{p}" for p in BUILT_IN))


def test_ownership_marks():
    from virshle_core.marks import mark, vm_of
    from virshle_core.models import Net, Vm

    vm = Vm(id=1, uuid="0f0e-uuid", name="a", node="n", template="t", vcpu=1, vram=1)
    assert mark(vm, Net(name="main", type="tap")) == "virshle:0f0e-uuid:main"
    assert vm_of("virshle:0f0e-uuid:main") == "0f0e-uuid"
    assert vm_of("someone else's") is None and vm_of(None) is None and vm_of("virshle:") is None
