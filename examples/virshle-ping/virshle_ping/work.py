"""The work of the ping plugin, in the daemon only."""

from __future__ import annotations

import asyncio
import os
import time

from virshle_core import logger

ANSWERED = {"count": 0}


def ping_guest(node, vm, request):
    """``vm ping-guest``: the VM's console log is there (the guest printed something)."""
    from virshle_ping import PingReply

    started = time.perf_counter()
    log = os.path.join(vm.dir, "console.log")
    answered = os.path.exists(log) and os.path.getsize(log) > 0
    ANSWERED["count"] += 1
    if not request.quiet:
        logger.info("pinged VM {}: {}", vm.name, answered)
    return PingReply(vm=vm.name, answered=answered,
                     ms=round((time.perf_counter() - started) * 1000, 3))


async def pings(request, node):
    return {"node": node.name, "pings": ANSWERED["count"]}


async def counter(node):
    path = os.path.join(node.config.host.root_path, "ping-count")
    try:
        while True:
            with open(path, "w") as handle:
                handle.write(f"{ANSWERED['count']}\n")
            await asyncio.sleep(1)
    finally:
        logger.info("the ping counter stops")
