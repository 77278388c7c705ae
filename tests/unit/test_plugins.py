"""Plugin discovery: entry points only, allow and deny lists, broken plugins skipped."""

from __future__ import annotations

import json

import pytest

from tests.support import BUILT_IN_PLUGINS as BUILT_IN, make_plugin_dist


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
    assert other.returncode == 2  # --json: the failure is the JSON document on stdout
    assert json.loads(other.stdout)["error"] == "bad_config"
    assert "no such configuration file" in json.loads(other.stdout)["message"]
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


PUBLIC_CORE = {"virshle_core", "virshle_core.config", "virshle_core.models", "virshle_core.errors",
               "virshle_core.marks", "virshle_core.netdev", "virshle_core.keys", "virshle_core.vmm",
               "virshle_core.progress"}
"""What a plugin may import of the core (docs/plugins.md, "Writing a plugin")."""


@pytest.mark.parametrize("package", ["virshle_lb", "virshle_kea", "virshle_ovs", "virshle_qemu",
                                     "virshle_ch", "virshle_macvtap", "virshle_cloudinit"])
def test_builtin_plugins_import_only_the_public_core(package):
    """A built-in plugin is written as a third party would, in every one of its modules:
    public core names only, and never another plugin."""
    import ast
    import importlib
    from pathlib import Path

    directory = Path(importlib.import_module(package).__file__).parent
    modules = sorted(directory.rglob("*.py"))
    assert len(modules) >= 1
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("virshle_core"):
                    assert name in PUBLIC_CORE, f"{path.name} imports {name}"
                elif name.startswith("virshle_"):
                    assert name.split(".")[0] == package, f"{path.name} imports {name}"


def test_ownership_marks():
    from virshle_core.marks import mark, vm_of
    from virshle_core.models import Net, Vm

    from virshle_core.marks import looks_like_ours, owned, parse
    from virshle_core.models import NodeContext

    vm = Vm(id=1, uuid="0f0e-uuid", name="a", node="n", template="t", vcpu=1, vram=1, dir="/nowhere")
    node = NodeContext(name="n", config=None, id="node-1")
    net = Net(name="main", type="tap")
    assert mark(vm, net, node) == "virshle:node-1:0f0e-uuid:main"
    assert parse("virshle:node-1:0f0e-uuid:main") == ("node-1", "0f0e-uuid")
    assert parse("virshle:0f0e-uuid:main") == (None, "0f0e-uuid")  # before marks named nodes
    assert vm_of("virshle:node-1:0f0e-uuid:main") == vm_of("virshle:0f0e-uuid:main") == "0f0e-uuid"
    assert vm_of("someone else's") is None and vm_of(None) is None and vm_of("virshle:") is None
    assert owned("virshle:node-1:0f0e-uuid:main", vm, net, "x", node)
    assert owned("virshle:0f0e-uuid:main", vm, net, "x", node)  # its own VM's older mark
    assert not owned("virshle:node-2:0f0e-uuid:main", vm, net, "x", node)  # another node's
    assert looks_like_ours("vm3n0") and looks_like_ours("vqkd12n1") and not looks_like_ours("veth0")


def test_trace_hooks_logs_each_call_its_plugins_and_time(tmp_path):
    """VIRSHLE_TRACE_HOOKS=1: every hook call on stderr, as DATASETTE_TRACE_PLUGINS does."""
    import os
    import re
    import subprocess
    import sys

    program = """
from virshle_core.config import parse_config
from virshle_core.models import NodeContext
from virshle_core.hooks import config_sections, plugins
config = parse_config("", path=None, sections=config_sections())
print(sorted(plugins().node_info(node=NodeContext(name="n", config=config))[0]))
"""
    env = {**os.environ, "VIRSHLE_TRACE_HOOKS": "1", "VIRSHLE_PLUGINS": "qemu"}
    traced = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True)
    assert traced.returncode == 0, traced.stderr
    assert re.search(r"^hook virshle_node_info\(node\) by qemu: \d+\.\d\d ms$", traced.stderr, re.M), traced.stderr
    assert re.search(r"^hook virshle_config_sections\(register\) by ", traced.stderr, re.M)
    env.pop("VIRSHLE_TRACE_HOOKS")
    quiet = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True)
    assert quiet.returncode == 0 and "hook " not in quiet.stderr
    assert quiet.stdout == traced.stdout


def test_the_documented_plugin_test_runs_under_virshles_pytest_plugin(tmp_path):
    """docs/plugins.md's "Testing a plugin" example, run as a third party would: its own
    directory, pytest, and only the fixtures the installed virshle_core.testing gives."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    section = docs[docs.index("## Testing a plugin"):]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "test_mine.py").write_text(example)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(tmp_path / "test_mine.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
