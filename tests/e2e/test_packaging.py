"""Virshle as an operator installs it: the wheels built from this checkout, installed with
the system's Python into a fresh venv under /opt, used from outside the checkout, and the
node reached by a user who is not root but is in group `virshle`."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support import BUILT_IN_PLUGINS as BUILT_IN
from tests.support import Daemon

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="installs under /opt, adds a user"),
              pytest.mark.skipif(not shutil.which("useradd"), reason="no useradd")]


@pytest.fixture(scope="module")
def installed(installed_wheels):
    return installed_wheels


@pytest.fixture(scope="module")
def member():
    """A user who is not root, in group `virshle` (as `usermod -aG virshle` makes one)."""
    user = f"vshtest{os.getpid() % 100000}"
    subprocess.run(["groupadd", "-f", "virshle"], check=True)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "--groups", "virshle", user], check=True)
    try:
        assert pwd.getpwnam(user).pw_uid != 0
        yield user
    finally:
        subprocess.run(["userdel", user], capture_output=True)


def run(argv: list[str], user: str | None = None) -> subprocess.CompletedProcess:
    """A command from outside the checkout, with none of its environment (and no cache of
    validated configurations: HOME is nowhere)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent",
           "VIRSHLE_NO_CACHE": "1"}
    prefix = ["runuser", "-u", user, "--"] if user else []
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, cwd="/", env=env,
                          timeout=60)


def test_the_installed_command_line_knows_its_version_and_plugins(installed, member):
    virshle = str(installed / "venv" / "bin" / "virshle")
    version = run([virshle, "--version"], user=member)
    assert version.returncode == 0, version.stderr
    assert version.stdout.split()[-1] == (REPO / "VERSION").read_text().strip()
    listed = run([virshle, "plugins", "ls", "--json"], user=member)
    assert listed.returncode == 0, listed.stderr
    assert BUILT_IN <= {plugin["name"] for plugin in __import__("json").loads(listed.stdout)}
    where = run([str(installed / "venv" / "bin" / "python"), "-c",
                 "import virshle_core; print(virshle_core.__file__)"])
    assert where.stdout.startswith(str(installed))  # not this checkout


def test_a_member_of_group_virshle_reaches_the_node(installed, member):
    virshle = str(installed / "venv" / "bin" / "virshle")
    root = installed / "node"
    config = installed / "config.toml"
    config.write_text(textwrap.dedent(f"""\
        [host]
        root = "{root}"
        """))
    os.chmod(config, 0o644)
    node = Daemon(installed, config, command=[virshle, "node", "serve"], init_parts=())
    try:
        initialised = run([virshle, "--config", str(config), "node", "init", "--dir", "--db"])
        assert initialised.returncode == 0, initialised.stderr
        node.start()
        pinged = run([virshle, "--config", str(config), "node", "ping"], user=member)
        assert pinged.returncode == 0, pinged.stderr
        assert "pong" in pinged.stdout
        outsider = run([virshle, "--config", str(config), "node", "ping"], user="nobody")
        assert outsider.returncode == 1 and "permission denied" in outsider.stderr
    finally:
        node.stop()
