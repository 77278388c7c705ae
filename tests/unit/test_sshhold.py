"""Where a held SSH connection listens (client/sshhold.py): named by the host keys the
user trusts, and short enough for a unix socket however deep the home is."""

from __future__ import annotations

import base64
import hashlib
import hmac

from virshle_core.client import sshhold

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTestOnly0000000000000000000"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnotherFakeKeyForTheTest000000000000000"


def hashed(name: str) -> str:
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def held(user: str, host: str, port: int):
    return sshhold.socket_path(sshhold.endpoint(f"ssh://{user}@{host}:{port}/v.sock"))


def test_the_name_follows_the_trusted_keys(monkeypatch):
    import shutil
    import tempfile
    from pathlib import Path

    tmp_path = Path(tempfile.mkdtemp(prefix="h", dir="/tmp"))  # short: its own .cache is used
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    (tmp_path / ".ssh").mkdir()
    known = tmp_path / ".ssh" / "known_hosts"
    assert held("anon", "deku", 22) is None  # nothing trusted: never held
    known.write_text(f"# a comment\n{hashed('deku')} {KEY}\n[deku]:2222 {OTHER}\n"
                     f"@revoked bakugo {OTHER}\n")
    assert sshhold.trusted_keys("deku", 22) == [KEY]
    assert sshhold.trusted_keys("deku", 2222) == [OTHER]
    assert sshhold.trusted_keys("bakugo", 22) == []  # a revocation: never held
    first = held("anon", "deku", 22)
    assert first.parent == tmp_path / ".cache" / "virshle"
    assert (first.parent.stat().st_mode & 0o777) == 0o700
    known.write_text(f"deku {OTHER}\n")  # the host's key changed: another holder
    assert held("anon", "deku", 22) != first
    assert held("root", "deku", 22) != held("anon", "deku", 22)
    shutil.rmtree(tmp_path)


def test_a_deep_home_gets_a_short_path(tmp_path, monkeypatch):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    (deep / ".ssh").mkdir(parents=True)
    (deep / ".ssh" / "known_hosts").write_text(f"deku {KEY}\n")
    monkeypatch.setenv("HOME", str(deep))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path = held("anon", "deku", 22)
    assert len(str(path)) <= sshhold.MAX_SOCKET_PATH and path.parent.name.startswith("virshle-")
    assert (path.parent.stat().st_mode & 0o777) == 0o700
