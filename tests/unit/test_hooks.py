"""Each hook of the contract, called by the core the way the daemon calls it.

Throwaway plugins are registered in-process (as llm and datasette test
theirs) and always unregistered, even when the test fails.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


import attrs
import click
import pytest

from virshle_core import VirshleError, hookimpl

from virshle_core.vm import lifecycle
from virshle_core.config import parse_config
from virshle_core.daemon import nodeinfo
from virshle_core.daemon.init import init_node
from virshle_core.vm.lifecycle import CreateRequest
from virshle_core.models import ConsoleEndpoint, Lease, NetAttachment, NodeCandidate, VmmHandle
from virshle_core.client.cluster import choose_node
from virshle_core.hooks import config_sections, get_plugin_manager


def leftovers(node) -> list:
    return sorted(p.name for p in (node.root / "vm").iterdir())


# --- start-up hooks -------------------------------------------------------------------------


def test_hook_virshle_config_sections(register):

    @attrs.define
    class Things:
        size: int = 3

    class Plugin:
        @hookimpl
        def virshle_config_sections(self, register):
            register("things.deep", Things)

    register(Plugin())
    sections = config_sections()
    assert sections["things.deep"] is Things
    config = parse_config("[things.deep]\nsize = 7\n", path="c.toml", sections=sections)
    assert config.section("things.deep").size == 7
    with pytest.raises(VirshleError) as info:
        parse_config("[things.deep]\nsize = 'x'\n", path="c.toml", sections=sections)
    assert info.value.problems == ["c.toml:2: things.deep.size: must be an integer"]


def test_hook_virshle_register_commands(register, capsys):
    class Plugin:
        @hookimpl
        def virshle_register_commands(self, cli):
            @cli.command("greet")
            def greet():
                click.echo("hi")

            @cli.command("node")
            def impostor():
                click.echo("impostor")

    register(Plugin())
    from virshle_core.cli import make_cli

    cli = make_cli()
    assert "greet" in cli.commands
    assert cli.get_command(None, "node").help.startswith("Prepare, run and list nodes")
    assert "tried to replace the command 'node'" in capsys.readouterr().err


# --- node hooks -----------------------------------------------------------------------------


@pytest.fixture
def core_only():
    """Only the core's plugin and the test's own: the built-ins would touch the host network."""
    pm = get_plugin_manager()
    removed = [(name, plugin) for name, plugin in pm.list_name_plugin() if name != "core"]
    for name, _ in removed:
        pm.unregister(name=name)
    try:
        yield
    finally:
        for name, plugin in removed:
            pm.register(plugin, name=name)


def test_hook_virshle_node_init(register, node, core_only):
    seen = []

    class Plugin:
        @hookimpl
        def virshle_node_init(self, node, parts):
            seen.append((node.name, parts))

    register(Plugin())
    init_node(node.config, {"dir"})
    assert seen == []  # only --net (and --all) prepare the network
    init_node(node.config, {"dir", "db", "net"})
    assert seen == [("default", frozenset({"dir", "db", "net"}))]


def test_hook_virshle_node_gc(register, node, core_only):
    from virshle_core.daemon.init import gc_node

    seen = []

    class Plugin:
        @hookimpl
        def virshle_node_gc(self, node, dry_run):
            seen.append((node.name, dry_run, node.id))
            return [] if not dry_run else ["tap vm1n0 (no node's mark)"]

    class Quiet:
        @hookimpl
        def virshle_node_gc(self, node):
            return None

    register(Plugin())
    register(Quiet())
    assert gc_node(node.config, True) == ["tap vm1n0 (no node's mark)"]
    assert gc_node(node.config, False) == []
    identity = (node.root / "node-id").read_text().strip()
    assert seen == [("default", True, identity), ("default", False, identity)]


def test_hook_virshle_node_info(register, node):
    class First:
        @hookimpl
        def virshle_node_info(self, node):
            return {"bridge": "br0", "shared": "first"}

    class Second:
        @hookimpl
        def virshle_node_info(self, node):
            return {"shared": "second"}

    register(First(), "first")
    register(Second(), "second")
    info = nodeinfo.collect(node, node.store).to_json()
    assert info["plugins"]["bridge"] == "br0"
    # pluggy calls the plugin registered last first, and the first answer of a key wins
    assert info["plugins"]["shared"] == "second"
    assert info["templates"]["xs"]["fits"] is True
    assert {"cpu", "ram", "disk", "vms", "saturation", "saturated"} <= set(info)


def test_hook_virshle_choose_node(register):
    candidates = [NodeCandidate("a", weight=1), NodeCandidate("b", weight=1),
                  NodeCandidate("c", weight=5, status="offline")]
    assert choose_node(candidates) in ("a", "b")  # the lb plugin

    class AlwaysB:
        @hookimpl(tryfirst=True)
        def virshle_choose_node(self, candidates, template_name):
            return "b"

    register(AlwaysB())
    assert {choose_node(candidates) for _ in range(20)} == {"b"}


def test_a_renamed_hook_parameter_still_reaches_plugins_written_against_it(register):
    """Round two renamed choose_node's `template` to `template_name`, and a plugin written
    against the old name stopped loading; the old name is kept, with a warning."""
    seen = []

    class OldStyle:
        @hookimpl(tryfirst=True)
        def virshle_choose_node(self, candidates, template):
            seen.append(template)
            return "a"

    with pytest.warns(DeprecationWarning, match="template_name"):
        register(OldStyle())
    assert choose_node([NodeCandidate("a"), NodeCandidate("b")], template_name="xs") == "a"
    assert seen == ["xs"]


def test_choose_node_explains_when_nothing_fits():
    candidates = [NodeCandidate("a", status="offline"), NodeCandidate("b", weight=0),
                  NodeCandidate("c", info={"saturated": True})]
    with pytest.raises(VirshleError) as info:
        choose_node(candidates)
    assert info.value.message == "no node can take this VM (a: offline; b: weight 0; c: saturated)"
    candidates[2].info.update(cpu={"reserved_pct": 400.0, "limit_pct": 300})
    with pytest.raises(VirshleError, match=r"c: saturated: cpu 400% reserved \(limit 300%\)"):
        choose_node(candidates)


# --- creation hooks -------------------------------------------------------------------------


def test_hook_virshle_pre_create(register, node):
    class Refuse:
        @hookimpl
        def virshle_pre_create(self, vm, template, node):
            assert vm.id is None and template.name == "xs"
            raise VirshleError("quota reached for this user")

    register(Refuse())
    with pytest.raises(VirshleError, match="failed at pre-create checks: quota reached"):
        lifecycle.create(node, CreateRequest(template="xs"))
    assert node.store.all() == [] and leftovers(node) == []


def test_hook_virshle_provision(register, node):
    from virshle_core.models import Disk

    class Seed:
        @hookimpl
        def virshle_provision(self, vm, template, node):
            assert vm.path.is_dir() and vm.nets[0].mac and template.name == "xs"
            seed = vm.path / "seed.img"
            seed.write_bytes(b"seed for " + vm.name.encode())
            vm.provision = {"seed": "test"}
            return [Disk(name="seed", path=str(seed), size=seed.stat().st_size)]

    register(Seed())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="seeded"))
    stored = node.store.get("seeded")
    seed = next(d for d in stored.disks if d.name == "seed")
    assert seed.readonly and Path(seed.path).read_bytes() == b"seed for seeded"
    assert stored.disks[0].name == "os"  # the VM's own disks come first
    assert stored.provision["seed"] in ("test", "nocloud")  # every plugin runs (cloudinit too)

    class Broken:
        @hookimpl
        def virshle_provision(self, vm):
            (vm.path / "half").write_text("x")
            raise VirshleError("the seed service is down")

    register(Broken())
    with pytest.raises(VirshleError, match="failed at provisioning: the seed service is down"):
        lifecycle.create(node, CreateRequest(template="xs", name="broken"))
    assert [v.name for v in node.store.all()] == ["seeded"]
    assert sorted(p.name for p in (node.root / "vm").iterdir()) == [vm.uuid]


def test_hook_virshle_disk_clone(register, node):
    template_disk = Path(node.config.template("xs").disk[0].path)
    before = hashlib.sha256(template_disk.read_bytes()).hexdigest()
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="plain"))
    # the core's clone: one verified copy in the cache, a qcow2 overlay on it per VM
    (cached,) = [p for p in (node.root / "cache").iterdir() if p.name.startswith("template.img-")
                 and not p.name.endswith((".sha256", ".overlay"))]
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == before
    assert (vm.disks[0].format, vm.disks[0].size) == ("qcow2", 256 * 1024)
    assert Path(vm.disks[0].path).read_bytes()[:4] == b"QFI\xfb"

    calls = []

    class Overlay:
        @hookimpl
        def virshle_disk_clone(self, source, dest, disk):
            calls.append((source, dest, disk.name))
            Path(dest).write_text("overlay")
            return {"format": "qcow2", "size": 7}

    register(Overlay())
    (vm2,) = lifecycle.create(node, CreateRequest(template="xs", name="cow"))
    assert calls == [(str(template_disk), vm2.disks[0].path, "os")]
    assert (vm2.disks[0].format, vm2.disks[0].size) == ("qcow2", 7)
    assert hashlib.sha256(template_disk.read_bytes()).hexdigest() == before


def test_failed_disk_clone_leaves_nothing(register, node):
    class Broken:
        @hookimpl
        def virshle_disk_clone(self, source, dest):
            Path(dest).write_text("half")
            raise OSError("disk full")

    register(Broken())
    with pytest.raises(VirshleError, match="failed at disk 'os': disk full"):
        lifecycle.create(node, CreateRequest(template="xs", count=3))
    assert node.store.all() == [] and leftovers(node) == []


# --- net, hypervisor and DHCP hooks ----------------------------------------------------------


class FakeVmm:
    """A test plugin standing for a hypervisor and a net type, recording calls."""

    def __init__(self):
        self.calls = []
        self.running = set()

    @hookimpl
    def virshle_net_attach(self, vm, net, node):
        if net.type != "test_net":
            return None
        self.calls.append(("attach", vm.name, net.name))
        return NetAttachment(net=net.name, type=net.type, ifname=f"t{vm.id}")

    @hookimpl
    def virshle_net_detach(self, vm, net, attachment, node):
        if net.type != "test_net":
            return None
        self.calls.append(("detach", vm.name, net.name))
        return True

    @hookimpl
    def virshle_start(self, vm, attachments, node):
        self.calls.append(("start", vm.name, [a.ifname for a in attachments]))
        self.running.add(vm.uuid)
        return VmmHandle(pid=4242, hypervisor="fake")

    @hookimpl
    def virshle_stop(self, vm, force, node):
        self.calls.append(("stop", vm.name, force))
        self.running.discard(vm.uuid)
        return True

    @hookimpl
    def virshle_vm_state(self, vm, node):
        return "running" if vm.uuid in self.running else "shutdown"

    @hookimpl
    def virshle_console(self, vm, node):
        return ConsoleEndpoint(socket=str(vm.path / "console.sock"), log=str(vm.path / "console.log"))


def test_hook_virshle_net_attach(register, node):
    fake = register(FakeVmm())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="n1"))
    lifecycle.start(node, vm)
    assert fake.calls == [("attach", "n1", "main"), ("start", "n1", [f"t{vm.id}"])]


def test_unknown_net_type_names_the_plugins(register, node):
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="n2"))
    with pytest.raises(VirshleError) as info:
        lifecycle.start(node, vm)
    assert info.value.message == "VM 'n2': no plugin handles net type 'test_net' (net 'main')"
    assert info.value.exit_code == 2


def test_hook_virshle_net_detach(register, node):
    fake = register(FakeVmm())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="n3"))
    lifecycle.start(node, vm)
    lifecycle.stop(node, vm)
    assert fake.calls[-1] == ("detach", "n3", "main")


def test_hook_virshle_start(register, node):
    fake = register(FakeVmm())

    class Failing:
        @hookimpl(tryfirst=True)
        def virshle_start(self, vm, attachments, node):
            raise VirshleError("the VMM exited at once")

    register(Failing())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="s1"))
    with pytest.raises(VirshleError, match="exited at once"):
        lifecycle.start(node, vm)
    # the NIC attached before the failure is detached again
    assert fake.calls == [("attach", "s1", "main"), ("detach", "s1", "main")]


def test_hook_virshle_stop(register, node):
    fake = register(FakeVmm())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="st"))
    lifecycle.start(node, vm)
    _, was_running = lifecycle.stop(node, vm, force=True)
    assert was_running and ("stop", "st", True) in fake.calls
    _, was_running = lifecycle.stop(node, vm)
    assert not was_running  # stopping a stopped VM is a no-op


def test_hook_virshle_vm_state(register, node):
    register(FakeVmm())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="vs"))
    assert lifecycle.live_state(node, vm) == "shutdown"
    lifecycle.start(node, vm)
    assert lifecycle.live_state(node, vm) == "running"
    with pytest.raises(VirshleError, match="is running"):
        lifecycle.delete(node, vm)


def test_hook_virshle_vm_watch(register, node):
    import asyncio

    import blinker

    from virshle_core.daemon.tracker import Tracker
    from virshle_core.models import VmWatch

    fake = register(FakeVmm())

    class Watch(VmWatch):
        def __init__(self):
            self.stopped = None

        async def follow(self, report):
            self.stopped = asyncio.Event()
            report("paused")  # the guest was paused behind the daemon's back ...
            await asyncio.sleep(0.05)
            report("running")  # ... and resumed
            await self.stopped.wait()
            return "crashed"  # then its VMM died

        async def stop(self, force, timeout):
            self.stopped.set()

    class Watcher:
        @hookimpl
        def virshle_vm_watch(self, vm, node):
            return Watch() if vm.hypervisor == "fake" else None

    register(Watcher())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="watched"))
    lifecycle.start(node, vm)
    changes = []

    def heard(sender, **data):
        changes.append((data["old"], data["new"]))

    blinker.signal("vm-state-changed").connect(heard)

    from virshle_core.daemon.node import Node

    daemon_node = Node(node.config, node.name)
    daemon_node.store = node.store

    async def scenario():
        tracker = Tracker(daemon_node)
        assert await tracker.follow(vm)
        await asyncio.sleep(0.3)
        assert node.store.get("watched").state == "running"
        assert await tracker.stop(vm, force=True, timeout=1)
        await asyncio.sleep(0.1)

    try:
        asyncio.run(scenario())
    finally:
        blinker.signal("vm-state-changed").disconnect(heard)
    assert changes == [("running", "paused"), ("paused", "running"), ("running", "crashed")]
    assert node.store.get("watched").state == "crashed"
    assert fake.calls[-1] == ("detach", "watched", "main")  # its VMM is gone: so is its NIC


def test_hook_virshle_console(register, node):
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="co"))
    with pytest.raises(VirshleError, match="has no console"):
        lifecycle.console(node, vm)
    register(FakeVmm())
    assert lifecycle.console(node, vm).log == str(vm.path / "console.log")


def test_hook_virshle_lease_query(register, node):
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="lq"))
    vm.nets[0].mac = "02:00:00:00:00:01"
    queries = []

    class Dhcp:
        @hookimpl
        def virshle_lease_query(self, vms, node):
            queries.append([v.name for v in vms])
            return [Lease(mac="02:00:00:00:00:01", ip="10.0.0.5")]

    class Down:
        @hookimpl
        def virshle_lease_query(self, vms, node):
            return None  # an unreachable DHCP server answers None, never raises

    register(Dhcp())
    register(Down())
    (listed,) = lifecycle.with_ips(node, [vm])
    assert listed.ips == ["10.0.0.5"]
    assert queries == [["lq"]]  # one batched query


def test_hook_virshle_post_delete(register, node):
    released = []

    class Dhcp:
        @hookimpl
        def virshle_post_delete(self, vm, node):
            released.append(vm.name)

    register(Dhcp())
    fake = register(FakeVmm())
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="pd"))
    lifecycle.start(node, vm)
    lifecycle.delete(node, vm, force=True)
    assert released == ["pd"]
    assert ("stop", "pd", True) in fake.calls
    assert node.store.all() == [] and leftovers(node) == []


def test_hook_virshle_hypervisor(register, node):
    """`[host] hypervisor = "auto"` is resolved by virshle_hypervisor when the VM is made and
    recorded, so the start hooks read a plain name and a later change of the host keeps it."""
    import shutil

    assert node.config.host.hypervisor == "auto"
    (vm,) = lifecycle.create(node, CreateRequest(template="xs", name="auto"))
    expected = "ch" if shutil.which("cloud-hypervisor") else "qemu"
    assert vm.hypervisor == expected
    assert node.store.get(f"uuid:{vm.uuid}").hypervisor == expected

    class Mine:
        @hookimpl(tryfirst=True)
        def virshle_hypervisor(self, wanted):
            return "mine" if wanted == "auto" else None

    register(Mine())
    (other,) = lifecycle.create(node, CreateRequest(template="xs", name="mine"))
    assert other.hypervisor == "mine"
    assert node.store.get(f"uuid:{vm.uuid}").hypervisor == expected  # the first one keeps its own


# --- discovery ----------------------------------------------------------------------------


def test_hook_virshle_discover_nodes(register, tmp_path, monkeypatch):
    """Catalogues' nodes join the [[node]] entries: one per node id across catalogues, a
    [[node]] entry of the same name or URL wins, and with a catalogue configured there is
    no implicit local node; not configured (None): the configuration alone."""
    from virshle_core.cli.app import Settings
    from virshle_core.config import DiscoveredNode

    monkeypatch.setenv("VIRSHLE_NO_CACHE", "1")  # the plugins change within this process

    def found(name: str, node_id: str, url: str | None = None) -> DiscoveredNode:
        return DiscoveredNode(name=name, url=url or f"ssh://root@{name}/v.sock", source="test",
                              id=node_id)

    class One:
        @hookimpl
        def virshle_discover_nodes(self, config, probe):
            return [] if probe else [found("a", "id-a"), found("b", "id-b")]

    class Other:
        @hookimpl
        def virshle_discover_nodes(self, config, probe):
            return [] if probe else [found("a-again", "id-a"), found("c", "id-c"),
                                     found("local-dup", "id-x", "unix:///here.sock")]

    config = tmp_path / "config.toml"
    config.write_text('[[node]]\nname = "c"\nurl = "unix:///c.sock"\n\n'
                      '[[node]]\nname = "here"\nurl = "unix:///here.sock"\n')
    assert [e.name for e in Settings(config_path=str(config)).entries()] == ["c", "here"]
    register(One())
    register(Other())
    entries = Settings(config_path=str(config)).entries()
    assert [e.name for e in entries[:2]] == ["c", "here"]  # static first; c and here won
    assert sorted(e.id for e in entries[2:]) == ["id-a", "id-b"]  # id-a once
    assert {e.source for e in entries[2:]} == {"test"}
    bare = tmp_path / "bare.toml"
    bare.write_text("")
    assert sorted(e.id for e in Settings(config_path=str(bare)).entries()) == [
        "id-a", "id-b", "id-c", "id-x"]  # no implicit "default" node
