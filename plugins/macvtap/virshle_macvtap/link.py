"""Creating, opening and removing macvtap devices with pyroute2."""

from __future__ import annotations

import os
import time
from pathlib import Path

from virshle_core import UsageError, VirshleError, log_command, logger
from virshle_core.marks import intend, mark, owned, settle, vm_of
from virshle_core.models import NetAttachment

def default_route_link(ipr) -> str | None:
    for route in ipr.get_default_routes(family=2) or []:
        index = route.get_attr("RTA_OIF")
        if index:
            links = ipr.get_links(index)
            if links:
                return links[0].get_attr("IFLA_IFNAME")
    return None


def _alias(ipr, index: int) -> str | None:
    links = ipr.get_links(index)
    return links[0].get_attr("IFLA_IFALIAS") if links else None


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


def attach(vm, net, link: str | None) -> NetAttachment:
    from pyroute2 import IPRoute

    name = net.ifname
    with IPRoute() as ipr:
        if link is None:
            link = default_route_link(ipr)
            if link is None:
                raise UsageError(
                    f"VM {vm.name!r}: net {net.name!r} needs a parent link and there is no default route",
                    'Set link = "eth0" under [template.vm.net.type.mac_v_tap], or [macvtap] link.',
                    code="macvtap_no_link")
        parent = ipr.link_lookup(ifname=link)
        if not parent:
            raise UsageError(
                f"VM {vm.name!r}: the macvtap link {link!r} of net {net.name!r} does not exist",
                "Fix link under [template.vm.net.type.mac_v_tap] (see `ip link`).",
                code="macvtap_link_missing")
        existing = ipr.link_lookup(ifname=name)
        if existing:
            alias = _alias(ipr, existing[0])
            if not owned(alias, vm, net, name):
                raise UsageError(
                    f"VM {vm.name!r}: the interface {name} exists and is not Virshle's"
                    f" (alias {alias or 'none'}); it is left alone",
                    f"Remove or rename {name} yourself, then start the VM again.",
                    code="ifname_taken")
            log_command(["ip", "link", "del", name])
            ipr.link("del", index=existing[0])
        intend(vm, name)
        log_command(["ip", "link", "add", "link", link, "name", name, "address", net.mac,
                     "type", "macvtap", "mode", "bridge"])
        ipr.link("add", ifname=name, kind="macvtap", link=parent[0], macvtap_mode="bridge",
                 address=net.mac)
        try:
            index = ipr.link_lookup(ifname=name)[0]
            log_command(["ip", "link", "set", name, "alias", mark(vm, net)])
            ipr.link("set", index=index, ifalias=mark(vm, net))
            settle(vm, name)
            log_command(["ip", "link", "set", name, "up"])
            ipr.link("set", index=index, state="up")
            fd = _open_tap_device(index, name)
            os.set_inheritable(fd, True)
        except BaseException:
            ipr.link("del", ifname=name)
            raise
    return NetAttachment(net=net.name, type="mac_v_tap", ifname=name, mac=net.mac, fds=[fd],
                         data={"link": link})


def detach(vm, net) -> None:
    from pyroute2 import IPRoute

    if not net.ifname:
        return
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=net.ifname)
        if index and owned(_alias(ipr, index[0]), vm, net, net.ifname):
            log_command(["ip", "link", "del", net.ifname])
            ipr.link("del", index=index[0])
    settle(vm, net.ifname)


def reap_orphans(known: set[str]) -> list[str]:
    from pyroute2 import IPRoute

    reaped = []
    with IPRoute() as ipr:
        for link in ipr.get_links():
            alias = link.get_attr("IFLA_IFALIAS") or ""
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            owner = vm_of(alias)
            if kind != "macvtap" or owner is None:
                continue
            if owner not in known:
                name = link.get_attr("IFLA_IFNAME")
                log_command(["ip", "link", "del", name])
                ipr.link("del", index=link["index"])
                reaped.append(name)
    if reaped:
        logger.info("reaped orphan macvtaps: {}", ", ".join(reaped))
    return reaped
