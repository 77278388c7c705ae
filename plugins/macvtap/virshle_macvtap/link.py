"""Creating, opening and removing macvtap devices (iproute2's `ip`, and sysfs)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from virshle_core import UsageError, VirshleError, logger, netdev
from virshle_core.marks import mark, owned, settle
from virshle_core.models import NetAttachment

def _open_tap_device(index: int, name: str) -> int:
    path = Path(f"/dev/tap{index}")
    deadline = time.monotonic() + 5
    while not path.exists():
        # without udev (containers), make the node from what sysfs says
        dev = Path(f"/sys/class/net/{name}/macvtap/tap{index}/dev")
        if dev.exists():
            major, minor = (int(x) for x in dev.read_text().split(":"))
            try:
                os.mknod(path, 0o600 | 0o020000, os.makedev(major, minor))
            except FileExistsError:
                pass
            break
        if time.monotonic() > deadline:
            raise VirshleError(f"/dev/tap{index} for macvtap {name} did not appear")
        time.sleep(0.02)
    return os.open(path, os.O_RDWR | os.O_CLOEXEC)


def attach(vm, net, link: str | None, node) -> NetAttachment:
    name = net.ifname
    if link is None:
        link = netdev.default_route_link()
        if link is None:
            raise UsageError(
                f"VM {vm.name!r}: net {net.name!r} needs a parent link and there is no default route",
                'Set link = "eth0" under [template.vm.net.type.mac_v_tap], or [macvtap] link.',
                code="macvtap_no_link")
    if not netdev.exists(link):
        raise UsageError(
            f"VM {vm.name!r}: the macvtap link {link!r} of net {net.name!r} does not exist",
            "Fix link under [template.vm.net.type.mac_v_tap] (see `ip link`).",
            code="macvtap_link_missing")
    netdev.claim(vm, net, name, node)
    netdev.ip("link", "add", "link", link, "name", name, "address", net.mac,
              "type", "macvtap", "mode", "bridge")
    try:
        netdev.ip("link", "set", name, "alias", mark(vm, net, node), "up")
        settle(vm, name)
        fd = _open_tap_device(netdev.index(name), name)
        os.set_inheritable(fd, True)
    except BaseException:
        netdev.delete(name)
        raise
    return NetAttachment(net=net.name, type="mac_v_tap", ifname=name, mac=net.mac, fds=[fd])


def detach(vm, net, node) -> None:
    if not net.ifname:
        return
    if netdev.exists(net.ifname) and owned(netdev.alias(net.ifname), vm, net, net.ifname, node):
        netdev.delete(net.ifname)
    settle(vm, net.ifname)


def reap_orphans(node) -> list[str]:
    reaped = netdev.reap_unknown(node, "macvtap")
    if reaped:
        logger.info("reaped orphan macvtaps: {}", ", ".join(reaped))
    return reaped


def gc(node, dry_run: bool) -> list[str]:
    strays = netdev.sort_out(node, "macvtap")[1]
    if not dry_run:
        for name in strays:
            netdev.delete(name)
    return [f"macvtap {name} (no node's mark)" for name in strays]
