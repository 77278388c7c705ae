"""An ``ssh://`` URL read with ``~/.ssh/config`` (client/sshconfig.py), as ssh(1) reads it:
the first value obtained wins, a URL's user and port win over the file's, and the held
connection is named by where the alias leads."""

from __future__ import annotations

import getpass

import pytest

from virshle_core.client import sshconfig, sshhold

CONFIG = """\
# the seed's alias, and what real configs hold
Include conf.d/*
Host deku
    HostName 10.0.0.7
    Port 2222
    User anon
    ProxyJump jumper
    UserKnownHostsFile ~/.ssh/deku_known_hosts
    IdentityFile ~/.ssh/deku_key

Host *.lab !bad.lab
    User=labber
    HostName %h.example

Match host 10.0.0.7
    User matched

Host *
    User everyone
    Port 22
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    (tmp_path / ".ssh" / "conf.d").mkdir(parents=True)
    (tmp_path / ".ssh" / "config").write_text(CONFIG)
    (tmp_path / ".ssh" / "conf.d" / "first").write_text("Host deku\n  HostKeyAlias deku-key\n")
    return tmp_path


def test_an_alias_leads_where_the_config_says(home):
    target = sshconfig.endpoint("ssh://deku/var/lib/virshle/virshle.sock")
    assert (target.alias, target.host, target.port, target.user) == ("deku", "10.0.0.7", 2222,
                                                                      "anon")
    assert target.jump == "jumper" and target.key_host == "deku-key"
    assert target.known_hosts == [str(home / ".ssh" / "deku_known_hosts")]
    assert target.path == "/var/lib/virshle/virshle.sock"
    assert str(target) == "deku (anon@10.0.0.7:2222 via jumper)"


def test_the_url_wins_over_the_file(home):
    target = sshconfig.endpoint("ssh://root@deku:22/v.sock")
    assert (target.user, target.port, target.url_user, target.url_port) == ("root", 22, "root", 22)


def test_patterns_negations_and_the_first_value(home):
    lab = sshconfig.endpoint("ssh://node1.lab/v.sock")
    assert (lab.user, lab.host) == ("labber", "node1.lab.example")
    bad = sshconfig.endpoint("ssh://bad.lab/v.sock")
    assert (bad.user, bad.host) == ("everyone", "bad.lab")  # negated: only "Host *"
    assert bad.known_hosts == [str(home / ".ssh" / "known_hosts")]


def test_no_config_is_the_url_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    target = sshconfig.endpoint("ssh://10.1.2.3/v.sock")
    assert (target.user, target.host, target.port, target.jump) == (getpass.getuser(),
                                                                    "10.1.2.3", 22, None)


def test_the_holder_is_named_by_where_the_alias_leads(home):
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTestOnly0000000000000000000"
    target = sshconfig.endpoint("ssh://deku/v.sock")
    assert sshhold.socket_path(target) is None  # its own known-hosts file lists nothing yet
    (home / ".ssh" / "known_hosts").write_text(f"[deku-key]:2222 {key}\n")
    assert sshhold.socket_path(target) is None  # the user's file is not the one it names
    (home / ".ssh" / "deku_known_hosts").write_text(f"[deku-key]:2222 {key}\n")
    held = sshhold.socket_path(target)
    assert held is not None
    direct = sshconfig.endpoint("ssh://deku/v.sock")
    direct.jump = None  # the same host by another route: another holder
    assert sshhold.socket_path(direct) != held
