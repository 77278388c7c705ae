"""`virshle web` refuses what would expose every VM of every node: an address other than
loopback without --listen-public and TLS (issue 24, item 2)."""

from __future__ import annotations

import pytest

from tests.support import run_cli, write_config


@pytest.mark.parametrize("args,words", [
    (["--listen", "0.0.0.0:8080"], "0.0.0.0 is not a loopback address"),
    (["--listen", "192.0.2.1:8080", "--listen-public"], "not a loopback address"),
    (["--listen", "localhost"], "--listen must be HOST:PORT"),
    (["--listen", "127.0.0.1:99999"], "--listen must be HOST:PORT"),
])
def test_a_public_address_needs_listen_public_and_tls(tmp_path, args, words):
    result = run_cli("web", *args, config=write_config(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert words in result.stderr and "Hint:" in result.stderr
    assert "token=" not in result.stdout  # it never started


def test_the_help_says_how(tmp_path):
    helped = run_cli("web", "--help", config=write_config(tmp_path))
    assert helped.returncode == 0 and "--listen-public" in helped.stdout and "token" in helped.stdout
