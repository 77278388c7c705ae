"""The bridge, its ports and the taps behind them."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

from virshle_core import VirshleError, log_command, logger, netdev
from virshle_core.marks import mark, owned, settle
from virshle_core.models import NetAttachment

class Switch:
    def __init__(self, config):
        self.config = config

    # --- ovs-vsctl ------------------------------------------------------------------

    def _db_path(self) -> str | None:
        db = self.config.db
        return db[len("unix:"):] if db.startswith("unix:") else None

    def vsctl(self, *args: str, check: bool = True, log: bool = True) -> subprocess.CompletedProcess:
        argv = ["ovs-vsctl", f"--db={self.config.db}", "--timeout=5", *args]
        if log:
            log_command(argv)
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=15)
        except FileNotFoundError:
            raise VirshleError("ovs-vsctl is not installed",
                               "Install the Debian package openvswitch-switch.",
                               code="ovs_missing") from None
        except subprocess.TimeoutExpired:
            raise self._not_running("ovs-vsctl timed out") from None
        if check and result.returncode != 0:
            detail = result.stderr.strip()
            if "database connection failed" in detail or "No such file" in detail:
                raise self._not_running(detail)
            raise VirshleError(f"ovs-vsctl {shlex.join(args)} failed: {detail}", code="ovs_failed")
        return result

    def _not_running(self, detail: str) -> VirshleError:
        return VirshleError(
            f"Open vSwitch is not running: no database answers at {self.config.db} ({detail})",
            "Start it (service openvswitch-switch start), or set [ovs] db.",
            code="ovs_not_running")

    def check_running(self) -> None:
        path = self._db_path()
        if path is not None and not Path(path).exists():
            raise self._not_running("no such socket")
        self.vsctl("--no-wait", "show", log=False)

    def bridge_exists(self) -> bool:
        result = self.vsctl("br-exists", self.config.bridge, check=False, log=False)
        if result.returncode not in (0, 2):
            self.vsctl("br-exists", self.config.bridge, log=False)  # raises the reason
        return result.returncode == 0

    def bridge_datapath(self) -> str:
        """The datapath the existing bridge really uses ("netdev" is OVS's userspace one)."""
        result = self.vsctl("get", "bridge", self.config.bridge, "datapath_type", check=False, log=False)
        value = result.stdout.strip().strip('"')
        return value or "system"

    def datapath(self) -> str:
        if self.config.datapath != "auto":
            return self.config.datapath
        return "system" if Path("/sys/module/openvswitch").exists() else "netdev"

    def ensure_bridge(self) -> None:
        self.check_running()
        bridge = self.config.bridge
        if not self.bridge_exists():
            self.vsctl("add-br", bridge, "--", "set", "bridge", bridge,
                       f"datapath_type={self.datapath()}")
            logger.info("created bridge {} ({} datapath)", bridge, self.datapath())
        deadline = time.monotonic() + 10
        while not netdev.exists(bridge):
            if time.monotonic() > deadline:
                raise VirshleError(f"bridge {bridge} did not appear as an interface")
            time.sleep(0.05)
        netdev.ip("link", "set", bridge, "up")

    # --- attach / detach ---------------------------------------------------------------

    def attach(self, vm, net, node) -> NetAttachment:
        self.check_running()
        if not self.bridge_exists():
            raise VirshleError(
                f"VM {vm.name!r}: the bridge {self.config.bridge} does not exist",
                "Run `virshle node init --net` to create it.", code="bridge_missing")
        tap = net.ifname
        netdev.claim(vm, net, tap, node)
        netdev.ip("tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr")
        try:
            netdev.ip("link", "set", tap, "alias", mark(vm, net, node), "up")
            settle(vm, tap)
            self.vsctl("--may-exist", "add-port", self.config.bridge, tap, "--",
                       "set", "interface", tap,
                       f"external_ids:virshle-node={node.id}",
                       f"external_ids:virshle-vm={vm.uuid}",
                       f"external_ids:virshle-net={net.name}",
                       f"external_ids:virshle-created={int(time.time())}")
        except BaseException:
            if self._port_owner(tap) in ((node.id, vm.uuid), None):
                self.vsctl("--if-exists", "del-port", self.config.bridge, tap, check=False)
            netdev.delete(tap)
            raise
        return NetAttachment(net=net.name, type="tap", ifname=tap, mac=net.mac,
                             offload=self.bridge_datapath() != "netdev")

    def detach(self, vm, net, node) -> None:
        tap = net.ifname
        if not tap:
            return
        owner = self._port_owner(tap)
        if owner == (node.id, vm.uuid) or owner == (None, vm.uuid) or (
                owner is None and netdev.exists(tap) and owned(netdev.alias(tap), vm, net, tap, node)):
            try:
                self.vsctl("--if-exists", "del-port", self.config.bridge, tap)
            except VirshleError as exc:
                logger.warning("VM {}: could not remove port {}: {}", vm.name, tap, exc.message)
        elif owner is not None:
            logger.warning("VM {}: port {} is another VM's or node's ({}): left alone",
                           vm.name, tap, "/".join(part or "?" for part in owner))
        if netdev.exists(tap) and owned(netdev.alias(tap), vm, net, tap, node):
            netdev.delete(tap)
        settle(vm, tap)

    def _port_owner(self, name: str) -> tuple[str | None, str] | None:
        """(node id, VM uuid) of the port ``name`` from its external_ids (the node is None on
        a port made before ports named their node); None when no such port names a VM."""
        result = self.vsctl("--if-exists", "get", "interface", name, "external_ids",
                            check=False, log=False)
        if result.returncode != 0 or not result.stdout.strip():
            return None
        ids = dict(_external_ids(result.stdout))
        return (ids.get("virshle-node"), ids["virshle-vm"]) if ids.get("virshle-vm") else None

    # --- orphans and strays ------------------------------------------------------------

    def ports(self) -> list[tuple[str, dict[str, str]]]:
        """Every port with a Virshle VM in its external_ids: (name, external_ids)."""
        result = self.vsctl("--format=json", "--columns=name,external_ids", "find", "Interface",
                            "external_ids:virshle-vm!=\"\"", log=False, check=False)
        if result.returncode != 0 or not result.stdout.strip():
            return []
        import json

        found = []
        for name, ids in json.loads(result.stdout).get("data", []):
            ids = dict(ids[1]) if isinstance(ids, list) and ids and ids[0] == "map" else {}
            found.append((name, ids))
        return found

    def sort_out(self, node) -> tuple[list[str], list[str], set[str]]:
        """This node's orphan ports, the strays (a VM's port with no node's mark, the VM not
        this node's), and the ports still in their grace period."""
        known = node.uuids()
        orphans, strays, young = [], [], set()
        now = time.time()
        for name, ids in self.ports():
            owner, uuid = ids.get("virshle-node"), ids.get("virshle-vm")
            if uuid in known or (owner and owner != node.id):
                continue  # ours and alive, or another node's: theirs to reap
            if now - float(ids.get("virshle-created") or 0) <= self.config.grace:
                young.add(name)  # OVS may be re-adding it; an unknown VM may be under way
            elif owner:
                orphans.append(name)
            else:
                strays.append(name)
        return orphans, strays, young

    def reap_orphans(self, node) -> list[str]:
        """Remove this node's ports and taps of VMs its store does not know (past the grace
        period); report what looks like Virshle's but carries no node's mark."""
        orphans, strays, young = self.sort_out(node)
        for name in orphans:
            self.vsctl("--if-exists", "del-port", name)
        reaped = orphans + netdev.reap_unknown(node, "tun", spare=frozenset(young))
        if strays:
            from virshle_core import notice

            notice(f"left alone: OVS ports {', '.join(sorted(strays))} name Virshle VMs but no "
                   "node; `virshle node gc --dry-run` lists what it would remove")
        if reaped:
            logger.info("reaped orphan ports and taps: {}", ", ".join(sorted(set(reaped))))
        return reaped

    def gc(self, node, dry_run: bool) -> list[str]:
        """Remove the strays: ports and taps that look like Virshle's with no node's mark."""
        _, strays, _ = self.sort_out(node)
        tap_strays = netdev.sort_out(node, "tun")[1]
        lines = [f"OVS port {name} (names a VM, but no node)" for name in strays]
        lines += [f"tap {name} (no node's mark)" for name in tap_strays]
        if not dry_run:
            for name in strays:
                self.vsctl("--if-exists", "del-port", name)
            for name in tap_strays:
                netdev.delete(name)
        return lines


def _external_ids(text: str) -> list[tuple[str, str]]:
    """The pairs of an OVSDB map as ``ovs-vsctl get`` prints it: ``{a="1", b=x}``."""
    import shlex

    body = text.strip().strip("{}")
    lexer = shlex.shlex(body, posix=True)
    lexer.whitespace, lexer.wordchars = ", ", lexer.wordchars + "-:.=/@"
    pairs = []
    for item in lexer:
        key, _, value = item.partition("=")
        pairs.append((key, value))
    return pairs
