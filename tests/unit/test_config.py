"""The configuration file: seed examples load, bad files say exactly what and where."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virshle_core.config import load_config, locate, parse_config
from virshle_core.errors import ConfigError
from virshle_core.hooks import config_sections
from virshle_core.units import parse_size

SEED = Path(__file__).parent.parent / "data" / "seed_configs"


def parse(text: str, **kwargs):
    return parse_config(textwrap.dedent(text).lstrip("\n"), path="config.toml", sections=config_sections(), **kwargs)


@pytest.mark.parametrize("example", sorted(SEED.glob("*.toml")), ids=lambda p: p.stem)
def test_seed_examples_load_unchanged(example: Path):
    config = parse_config(example.read_text(), path=str(example), sections=config_sections())
    assert config is not None


def test_seed_template_example_means_what_it_says():
    config = parse_config((SEED / "template_xs.toml").read_text(), path="c", sections=config_sections())
    (xs,) = config.templates
    assert (xs.name, xs.vcpu, xs.vram) == ("xs", 1, 2 * 1024**3)
    assert xs.disk[0].name == "os" and xs.disk[0].path == "~/Iso/nixos.efi.img"
    assert xs.disk[0].expanded_path == Path.home() / "Iso/nixos.efi.img"
    assert xs.net[0].type == "tap" and xs.net[0].options == {}
    # the disk does not exist here: a warning at load, not an error
    assert any("template.vm[0].disk[0].path" in w and "is not a file" in w for w in config.warnings)


def test_seed_nodes_and_weights():
    config = parse_config((SEED / "nodes_weights.toml").read_text(), path="c", sections=config_sections())
    assert [(n.name, n.weight) for n in config.nodes] == [("remote_1", 10), ("remote_2", 2)]


def test_seed_kea_section_is_the_plugins_table():
    config = parse_config((SEED / "dhcp_kea.toml").read_text(), path="c", sections=config_sections())
    assert config.section("dhcp.kea").url == "tcp://localhost:5547"


def test_defaults_without_a_file(monkeypatch, tmp_path):
    monkeypatch.delenv("VIRSHLE_CONFIG", raising=False)
    monkeypatch.setattr("virshle_core.config.DEFAULT_PATH", str(tmp_path / "absent.toml"))
    config = load_config(None, config_sections())
    assert config.host.root == "/var/lib/virshle"
    assert [(n.name, n.url) for n in config.managed_nodes()] == [
        ("default", "unix:///var/lib/virshle/virshle.sock")]
    assert config.section("ovs").bridge == "br0"


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(str(tmp_path / "nope.toml"), {})


@pytest.mark.parametrize("value,expected", [
    (2, 2 * 1024**3), (0.5, 512 * 1024**2), ("512MiB", 512 * 1024**2), ("1G", 1024**3),
    ("1.5GiB", 1536 * 1024**2), ("2 gib", 2 * 1024**3), ("100MB", 100 * 1000**2),
])
def test_vram_sizes(value, expected):
    assert parse_size(value) == expected


# Each bad configuration and the exact message a person gets.
BAD = [
    ("vcpu_zero", """
        [[template.vm]]
        name = "xs"
        vcpu = 0
     """, "config.toml:3: template.vm[0].vcpu: must be >= 1"),
    ("vcpu_string", """
        [[template.vm]]
        name = "xs"
        vcpu = "2"
     """, "config.toml:3: template.vm[0].vcpu: must be an integer"),
    ("vcpu_float", """
        [[template.vm]]
        name = "xs"
        vcpu = 1.5
     """, "config.toml:3: template.vm[0].vcpu: must be an integer"),
    ("vram_not_a_size", """
        [[template.vm]]
        name = "xs"
        vram = "lots"
     """, 'config.toml:3: template.vm[0].vram: "lots" is not a size; write 2 (GiB) or "512MiB"'),
    ("vram_negative", """
        [[template.vm]]
        name = "xs"
        vram = -1
     """, "config.toml:3: template.vm[0].vram: must be greater than 0"),
    ("unknown_template_key", """
        [[template.vm]]
        name = "xs"
        cpus = 2
     """, "config.toml:3: template.vm[0].cpus: unknown key"),
    ("unknown_top_level_table", """
        [hots]
        root = "/tmp"
     """, "config.toml:1: hots: unknown key"),
    ("unknown_host_key", """
        [host]
        rooot = "/tmp"
     """, "config.toml:2: host.rooot: unknown key"),
    ("duplicate_template", """
        [[template.vm]]
        name = "xs"

        [[template.vm]]
        name = "xs"
     """, 'config.toml:5: template.vm[1].name: "xs" is already the name of template.vm[0]'),
    ("template_without_name", """
        [[template.vm]]
        vcpu = 1
     """, "config.toml:1: template.vm[0].name: is required"),
    ("disk_without_path", """
        [[template.vm]]
        name = "xs"
        [[template.vm.disk]]
        name = "os"
     """, "config.toml:3: template.vm[0].disk[0].path: is required"),
    ("net_two_types", """
        [[template.vm]]
        name = "xs"
        [[template.vm.net]]
        name = "main"
        [template.vm.net.type.tap]
        [template.vm.net.type.mac_v_tap]
     """, "config.toml:5: template.vm[0].net[0].type: must name exactly one net type, e.g. [template.vm.net.type.tap]"),
    ("net_type_not_a_table", """
        [[template.vm]]
        name = "xs"
        [[template.vm.net]]
        name = "main"
        type.tap = 3
     """, "config.toml:5: template.vm[0].net[0].type.tap: must be a table"),
    ("net_without_type", """
        [[template.vm]]
        name = "xs"
        [[template.vm.net]]
        name = "main"
     """, "config.toml:3: template.vm[0].net[0].type: is required"),
    ("template_vm_not_array", """
        [template.vm]
        name = "xs"
     """, "config.toml:1: template.vm: must be a list (write [[...]] tables)"),
    ("node_bad_url", """
        [[node]]
        name = "a"
        url = "http://example/x"
     """, 'config.toml:3: node[0].url: "http://example/x" has an unknown scheme; use unix:// or ssh://'),
    ("node_negative_weight", """
        [[node]]
        name = "a"
        url = "unix:///x.sock"
        weight = -1
     """, "config.toml:4: node[0].weight: must be >= 0"),
    ("duplicate_node", """
        [[node]]
        name = "a"
        url = "unix:///x.sock"
        [[node]]
        name = "a"
        url = "unix:///y.sock"
     """, 'config.toml:5: node[1].name: "a" is already the name of node[0]'),
    ("limits_zero", """
        [host.limits]
        cpu = 0
     """, "config.toml:2: host.limits.cpu: must be >= 1"),
    ("stop_timeout_negative", """
        [host]
        stop_timeout = -3
     """, "config.toml:2: host.stop_timeout: must be > 0"),
    ("plugin_table_unknown_key", """
        [ovs]
        bridge = "br0"
        brdige = "br1"
     """, "config.toml:3: ovs.brdige: unknown key"),
    ("plugin_table_bad_value", """
        [dhcp.kea]
        url = "ftp://kea"
     """, 'config.toml:2: dhcp.kea.url: "ftp://kea" must start with unix://, http://, https:// or tcp://'),
    ("plugin_table_wrong_type", """
        [ovs]
        datapath = "fast"
     """, "config.toml:2: ovs.datapath: must be one of auto, system, netdev"),
    ("initramfs_without_kernel", """
        [[template.vm]]
        name = "xs"
        initramfs = "/boot/initrd"
     """, "config.toml:3: template.vm[0].initramfs: needs kernel (direct kernel boot)"),
    ("bad_template_name", """
        [[template.vm]]
        name = "x s"
     """, 'config.toml:2: template.vm[0].name: "x s" is not a valid name (letters, digits, "-", "_", "." ; at most 63)'),
    ("root_too_long", f"""
        [host]
        root = "/{'r' * 60}"
     """, f'config.toml:2: host.root: "/{"r" * 60}" is 61 bytes long; at most 54 fit (VM sockets live under it, and a unix socket path holds 107 bytes)'),
    ("not_toml", """
        [[template.vm]
        name = "xs"
     """, "config.toml:1: not valid TOML"),
]


@pytest.mark.parametrize("name,text,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_configuration_message(name, text, expected):
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert info.value.problems[0].startswith(expected) if name == "not_toml" else \
        info.value.problems == [expected]
    assert info.value.exit_code == 2


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        parse("""
            [host]
            rooot = "/tmp"
            [[template.vm]]
            name = "xs"
            vcpu = 0
        """)
    assert info.value.problems == [
        "config.toml:2: host.rooot: unknown key",
        "config.toml:5: template.vm[0].vcpu: must be >= 1",
    ]
    assert info.value.message.startswith("2 problems in config.toml:")


def test_cli_exits_2_with_the_line(cli, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[[template.vm]]\nname = "xs"\nvcpu = 0\n')
    result = cli("node", "ls", config=path)
    assert result.returncode == 2
    assert f"{path}:3: template.vm[0].vcpu: must be >= 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_locate_nested_arrays():
    text = textwrap.dedent("""\
        [[template.vm]]
        name = "a"
        [[template.vm.disk]]
        name = "os"
        [[template.vm]]
        name = "b"
        [[template.vm.disk]]
        name = "os"
        [[template.vm.disk]]
        name = "data"
        path = "/x"
        """)
    assert locate(text, "template.vm[1].disk[1].path") == 11
    assert locate(text, "template.vm[1].disk[0].name") == 8
    assert locate(text, "template.vm[0].vcpu") == 1  # not written: its table's line
    assert locate(text, "host.root") is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["host", "template", "vm", "name", "vcpu", "vram", "disk",
                                       "path", "net", "type", "tap", "node", "url", "weight",
                                       "root", "limits", "cpu", "ovs", "dhcp", "kea", "x"]),
                      children, max_size=4),
    max_leaves=12,
))
def test_any_toml_gives_a_config_or_a_config_error(document):
    import tomllib

    text = _to_toml(document)
    try:
        tomllib.loads(text)
    except Exception:
        return
    try:
        parse_config(text, path="fuzz.toml", sections=config_sections())
    except ConfigError as exc:
        assert exc.problems and all(re.match(r"^fuzz\.toml(:\d+)?: ", p) for p in exc.problems)


def _to_toml(document) -> str:
    """Render any structure as TOML using inline values (top level must be a table)."""
    if not isinstance(document, dict):
        document = {"x": document}

    def value(v):
        if v is None:
            return '""'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v) if not isinstance(v, float) or v == v and abs(v) != float("inf") else "0"
        if isinstance(v, str):
            return '"' + v.encode("unicode_escape").decode().replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(i) for i in v) + "]"
        return "{" + ", ".join(f'"{k}" = {value(i)}' for k, i in v.items()) + "}"

    return "\n".join(f'"{k}" = {value(v)}' for k, v in document.items()) + "\n"


def test_the_validated_config_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("VIRSHLE_NO_CACHE", raising=False)
    path = tmp_path / "config.toml"
    path.write_text('[[template.vm]]\nname = "xs"\nvcpu = 2\n[[template.vm.disk]]\nname = "os"\npath = "/nope"\n')
    first = load_config(str(path), config_sections())
    (cached,) = (tmp_path / "cache" / "virshle").glob("config-*")
    second = load_config(str(path), config_sections())
    assert second == first  # read back from the cache, warnings recomputed
    assert second.warnings and "template.vm[0].disk[0].path" in second.warnings[0]
    path.write_text('[[template.vm]]\nname = "xs"\nvcpu = 0\n')
    with pytest.raises(ConfigError):  # a changed file is validated again
        load_config(str(path), config_sections())
    assert cached.exists()  # errors are not cached


def test_a_cache_others_can_write_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "config.toml"
    path.write_text('[[template.vm]]\nname = "xs"\n')
    load_config(str(path), config_sections())
    (cached,) = (tmp_path / "cache" / "virshle").glob("config-*")
    cached.write_text(cached.read_text().replace('"xs"', '"tampered"'))
    (tmp_path / "cache" / "virshle").chmod(0o777)
    assert [t.name for t in load_config(str(path), config_sections()).templates] == ["xs"]


class _Payload:
    """Unpickling this runs code: it creates the file named by ``marker``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_cache_entry_never_runs_code(tmp_path, monkeypatch):
    # Issue 8, item 10: a mode-0666 cache entry owned by another user was unpickled as root.
    import os
    import pickle

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("VIRSHLE_NO_CACHE", raising=False)
    path = tmp_path / "config.toml"
    path.write_text('[[template.vm]]\nname = "xs"\n')
    load_config(str(path), config_sections())
    (cached,) = (tmp_path / "cache" / "virshle").glob("config-*")
    marker = tmp_path / "code-ran"
    cached.write_bytes(pickle.dumps(_Payload(str(marker))))
    os.chown(cached, 65534, 65534)  # another user's file ...
    cached.chmod(0o666)  # ... that anyone may write
    config = load_config(str(path), config_sections())
    assert not marker.exists()
    assert [t.name for t in config.templates] == ["xs"]
    # a well-formed entry planted by another user is not trusted either
    cached.write_text(json.dumps({"templates": []}))
    assert [t.name for t in load_config(str(path), config_sections()).templates] == ["xs"]
