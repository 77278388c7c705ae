"""The plugin promise: a third-party plugin, installed beside Virshle, changes nothing in the core."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "virshle-hello"


@pytest.fixture(scope="module")
def hello_site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("hello-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, text=True,
    )
    assert list(target.glob("virshle_hello-1.0.0.dist-info"))
    return target


def test_the_command_exists(cli, hello_site, tmp_path):
    env = {"PYTHONPATH": str(hello_site)}
    config = tmp_path / "c.toml"
    config.write_text('[hello]\ngreeting = "Bonjour"\n')
    result = cli("hello", config=config, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Bonjour from the hello plugin!\n"
    assert cli("hello", "--json", config=config, env=env).json() == {
        "greeting": "Bonjour", "plugin": "hello"}


def test_plugins_ls_lists_it(cli, hello_site):
    result = cli("plugins", "ls", "--json", env={"PYTHONPATH": str(hello_site)})
    plugins = {p["name"]: p for p in result.json()}
    assert plugins["hello"]["distribution"] == "virshle-hello"
    assert plugins["hello"]["version"] == "1.0.0"
    assert plugins["hello"]["hooks"] == [
        "virshle_config_sections", "virshle_node_info", "virshle_register_commands"]


def test_disabling_removes_it(cli, hello_site):
    env = {"PYTHONPATH": str(hello_site), "VIRSHLE_DISABLE_PLUGINS": "hello"}
    assert "hello" not in {p["name"] for p in cli("plugins", "ls", "--json", env=env).json()}
    result = cli("hello", env=env)
    assert result.returncode == 2 and "No such command 'hello'" in result.stderr
    # and its config table is unknown again
    config_env = dict(env)
    result = cli("plugins", "ls", env=config_env, config=_hello_config(hello_site))
    assert result.returncode == 2 and "hello: unknown key" in result.stderr


def _hello_config(directory: Path) -> Path:
    path = directory.parent / "hello-config.toml"
    path.write_text('[hello]\ngreeting = "Hi"\n')
    return path


def test_a_receiver_gets_a_signal(cli, hello_site, tmp_path):
    log = tmp_path / "events.jsonl"
    config = tmp_path / "c.toml"
    from tests.support import short_dir

    root = short_dir()
    config.write_text(f'[host]\nroot = "{root}"\n')
    result = cli("node", "init", "--dir", config=config,
                 env={"PYTHONPATH": str(hello_site), "VIRSHLE_HELLO_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    (event,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert event == {"event": "node-initialized", "node": "default", "parts": ["dir"],
                     "root": str(root)}


def test_it_cannot_replace_a_core_command(cli, hello_site):
    env = {"PYTHONPATH": str(hello_site), "VIRSHLE_HELLO_SHADOW": "1"}
    result = cli("node", "--help", env=env)
    assert result.returncode == 0
    assert "Prepare, run and list nodes" in result.stdout
    assert "a plugin tried to replace the command 'node'" in result.stderr


def test_its_node_info_reaches_node_ls(hello_site, tmp_path):
    from tests.support import Daemon, write_config

    node = Daemon(tmp_path, write_config(tmp_path))
    node.start(env={"PYTHONPATH": str(hello_site)})
    try:
        from virshle_core.client import NodeClient
        from virshle_core.config import NodeEntry

        info = NodeClient(NodeEntry(name="default", url=f"unix://{node.socket}")).info()
        assert info.plugins["hello"] == "Hello"
    finally:
        node.stop()
