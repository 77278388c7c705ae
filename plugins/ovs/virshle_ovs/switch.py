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

    def attach(self, vm, net) -> NetAttachment:
        self.check_running()
        if not self.bridge_exists():
            raise VirshleError(
                f"VM {vm.name!r}: the bridge {self.config.bridge} does not exist",
                "Run `virshle node init --net` to create it.", code="bridge_missing")
        tap = net.ifname
        netdev.claim(vm, net, tap)
        netdev.ip("tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr")
        try:
            netdev.ip("link", "set", tap, "alias", mark(vm, net), "up")
            settle(vm, tap)
            self.vsctl("--may-exist", "add-port", self.config.bridge, tap, "--",
                       "set", "interface", tap,
                       f"external_ids:virshle-vm={vm.uuid}",
                       f"external_ids:virshle-net={net.name}",
                       f"external_ids:virshle-created={int(time.time())}")
        except BaseException:
            self.vsctl("--if-exists", "del-port", self.config.bridge, tap, check=False)
            netdev.delete(tap)
            raise
        return NetAttachment(net=net.name, type="tap", ifname=tap, mac=net.mac,
                             offload=self.bridge_datapath() != "netdev")

    def detach(self, vm, net) -> None:
        tap = net.ifname
        if not tap:
            return
        try:
            self.vsctl("--if-exists", "del-port", self.config.bridge, tap)
        except VirshleError as exc:
            logger.warning("VM {}: could not remove port {}: {}", vm.name, tap, exc.message)
        if netdev.exists(tap) and owned(netdev.alias(tap), vm, net, tap):
            netdev.delete(tap)
        settle(vm, tap)

    # --- orphans -----------------------------------------------------------------------

    def reap_orphans(self, known: set[str]) -> list[str]:
        """Remove ports and taps of VMs the database does not know (past the grace period)."""
        reaped = []
        result = self.vsctl("--format=json", "--columns=name,external_ids", "find", "Interface",
                            "external_ids:virshle-vm!=\"\"", log=False, check=False)
        rows = []
        if result.returncode == 0 and result.stdout.strip():
            import json

            rows = json.loads(result.stdout).get("data", [])
        now = time.time()
        for name, ids in rows:
            ids = dict(ids[1]) if isinstance(ids, list) and ids and ids[0] == "map" else {}
            uuid = ids.get("virshle-vm")
            created = float(ids.get("virshle-created") or 0)
            if uuid and uuid not in known and now - created > self.config.grace:
                self.vsctl("--if-exists", "del-port", name)
                reaped.append(name)
        reaped += netdev.reap_unknown(known, "tun")
        if reaped:
            logger.info("reaped orphan ports and taps: {}", ", ".join(sorted(set(reaped))))
        return reaped


