"""`virshle completion bash|zsh|fish`, and the names it completes from the daemons."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.support import VIRSHLE, Daemon, run_cli, write_config


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    directory = tmp_path_factory.mktemp("completion")
    daemon = Daemon(directory, write_config(directory))
    daemon.start()
    for name in ("web-1", "db-1"):
        assert daemon.cli("vm", "create", "-t", "xs", "--name", name).returncode == 0
    try:
        yield daemon
    finally:
        daemon.stop()


def complete(config, words: str, timeout: float = 30) -> list[str]:
    """What the bash script would get back for ``words`` (the cursor after the last one)."""
    env = {**os.environ, "VIRSHLE_CONFIG": str(config), "_VIRSHLE_COMPLETE": "bash_complete",
           "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    result = subprocess.run([VIRSHLE], env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_script_for_each_shell(node, shell):
    script = run_cli("completion", shell, config=node.config)
    assert script.returncode == 0 and "_VIRSHLE_COMPLETE" in script.stdout
    if shell == "bash":
        checked = subprocess.run(["bash", "-n"], input=script.stdout, text=True, capture_output=True)
        assert checked.returncode == 0, checked.stderr
    assert "_V_COMPLETE" in run_cli("completion", shell, "--prog", "v", config=node.config).stdout


def test_names_come_from_the_daemon(node):
    assert complete(node.config, "virshle vm info --name ") == ["db-1", "web-1"]
    assert complete(node.config, "virshle vm rm --name w") == ["web-1"]
    assert complete(node.config, "virshle vm create -t ") == ["xs"]
    assert complete(node.config, "virshle vm start --node ") == ["default"]
    assert "create" in complete(node.config, "virshle vm ")


def test_bash_itself_completes_through_the_script(node):
    """The script, sourced in a real bash, fills COMPREPLY from the daemon."""
    program = ('source <("$VIRSHLE" completion bash); '
               'COMP_WORDS=(virshle vm info --name ""); COMP_CWORD=4; '
               '_virshle_completion "$VIRSHLE"; printf "%s\\n" "${COMPREPLY[@]}"')
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "VIRSHLE": VIRSHLE,
                                 "VIRSHLE_CONFIG": str(node.config)})
    assert result.stdout.split() == ["db-1", "web-1"], result.stderr


def test_a_node_that_never_answers_does_not_hold_the_shell(node, tmp_path):
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(tmp_path / "silent.sock"))
    silent.listen(8)  # accepts, and never answers
    config = tmp_path / "two.toml"
    config.write_text(f'[[node]]\nname = "live"\nurl = "unix://{node.socket}"\n\n'
                      f'[[node]]\nname = "silent"\nurl = "unix://{tmp_path / "silent.sock"}"\n')
    try:
        assert complete(config, "virshle vm info --name ", timeout=15) == ["db-1", "web-1"]
        assert complete(config, "virshle vm ls --node ") == ["live", "silent"]
    finally:
        silent.close()


@pytest.mark.parametrize("shell,words,cword,expected", [
    ("bash", "virshle vm start w", "3", "plain,web-1\n"),
    ("zsh", "virshle -v vm info ", "4", "plain\ndb-1\n_\nplain\nweb-1\n_\n"),
    ("fish", "virshle vm rm --name d", "d", "plain,db-1\n"),
])
def test_a_vm_name_is_completed_without_loading_click(node, shell, words, cword, expected):
    """Before, each Tab loaded click and every command (about 300 ms); the fast path
    answers the word that names a VM from the nodes alone."""
    import sys

    assert node.cli("vm", "ls").returncode == 0  # the configuration's view, as after any command
    env = {**os.environ, "VIRSHLE_CONFIG": str(node.config), "_VIRSHLE_COMPLETE": f"{shell}_complete",
           "COMP_WORDS": words, "COMP_CWORD": cword}
    result = subprocess.run([sys.executable, "-X", "importtime", VIRSHLE], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == expected
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "click" not in imported and "virshle_core.cli.fastcomplete" in imported
    ids = complete(node.config, "virshle vm stop --id ")
    assert sorted(ids) == sorted(str(vm["id"]) for vm in node.cli("vm", "ls", "--json").json())
