"""A node in-process for the hook tests: its config with one template, its store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import short_dir
from virshle_core.config import parse_config
from virshle_core.daemon.init import init_node
from virshle_core.models import NodeContext
from virshle_core.hooks import config_sections
from virshle_core.store.store import Store


@pytest.fixture
def node(tmp_path: Path):
    disk = tmp_path / "template.img"
    disk.write_bytes(os.urandom(256 * 1024))
    text = f"""
[host]
root = "{short_dir()}"

[[template.vm]]
name = "xs"
vcpu = 2
vram = "512MiB"
[[template.vm.disk]]
name = "os"
path = "{disk}"
[[template.vm.net]]
name = "main"
[template.vm.net.type.test_net]
"""
    config = parse_config(text, path=None, sections=config_sections())
    init_node(config, {"dir", "db"})
    ctx = NodeContext(name="default", config=config, store=Store(config.host.db_path))
    yield ctx
    ctx.store.close()
