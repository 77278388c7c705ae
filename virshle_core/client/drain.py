"""Empty a node (``node drain``): cordon it, choose a node for each of its VMs with the
placement plugin (counting what this drain already sends to each), and move them, a few
at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from ..errors import VirshleError
from ..wire import api
from .cluster import candidate_status, choose_node, uuid_ref


def drain(node, everyone: list, live: bool, parallel: int,
          on_result: Callable[[str], None] | None = None) -> list[dict]:
    """Move every VM of ``node`` to the others among ``everyone``; a result for each VM."""
    from . import fan_out
    from .migrate import migrate

    node.cordon(reason="drained")
    here = node.ping().id
    vms = [vm for vm in node.vms() if not _settled(node, vm, everyone, on_result)]
    results = fan_out([c for c in everyone if c.name != node.name], lambda c: c.info())
    candidates, by_name, reserved = [], {}, {}
    from ..models import NodeCandidate

    for client, info, error in results:
        if error is None and info is not None and client.node_id == here:
            continue  # another name for the node being drained
        candidates.append(NodeCandidate(name=client.name, weight=max(client.entry.weight, 1),
                                        status=candidate_status(info, error),
                                        info=info.to_json() if info else {}))
        by_name[client.name] = (client, info)
        reserved[client.name] = [info.cpu.reserved, info.ram.reserved] if info else [0, 0]
    plan: list[tuple] = []
    for vm in vms:
        key = f"vm {vm.name}"
        for candidate in candidates:  # the VM's own size, on what each node has left
            _, info = by_name[candidate.name]
            if info is not None:
                candidate.info.setdefault("templates", {})[key] = _fit(info, reserved[candidate.name], vm)
        try:
            chosen = choose_node(candidates, key)
        except VirshleError as exc:
            plan.append((vm, None, exc))
            continue
        reserved[chosen][0] += vm.vcpu
        reserved[chosen][1] += vm.vram
        next(c for c in candidates if c.name == chosen).in_flight += 1
        plan.append((vm, by_name[chosen][0], None))

    def move(item: tuple) -> dict:
        vm, target, error = item
        result = None
        if error is None:
            try:
                result = _move(node, vm, target, live, migrate)
            except VirshleError as exc:
                error = exc
        line = (f"{vm.name}: moved to {target.name} ({_how(result)})" if error is None
                else f"{vm.name}: stayed on {node.name}: {error.message}")
        if on_result is not None:
            on_result(line)
        return {"vm": vm.name, "to": target.name if target else None,
                "result": result.to_json() if result else None,
                "error": error.to_json() if error else None}

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(move, plan))


def _settled(node, vm: api.Vm, everyone: list, on_result) -> bool:
    """Settle a move of ``vm`` that an earlier command left cut short (``moving_to``);
    True when that move had got the VM to its target."""
    from .migrate import settle

    peer = next((c for c in everyone if c.name == vm.moving_to), None)
    if not vm.moving_to or peer is None:
        return False
    how = settle(node, vm, peer)
    if on_result is not None:
        on_result(f"{vm.name}: its unfinished move to {peer.name} was {how}")
    return how == "finished"


def _move(node, vm: api.Vm, target, live: bool, migrate) -> api.MigrateResult:
    """One VM: live when it runs and ``live``; else stopped, moved, and started again there."""
    running = vm.state in ("running", "paused")
    if running and not live:
        stopped = node.stop(uuid_ref(vm)).vm
        result = migrate(node, stopped, target, live=False)
        if vm.state == "running":
            result.vm = target.start(uuid_ref(result.vm))
            result.vm.node = target.name
        return result
    return migrate(node, vm, target, live=running)


def _fit(info: api.NodeInfo, reserved: list, vm: api.Vm) -> dict:
    """Whether ``vm`` fits on a node with ``reserved`` vcpu and vram taken."""
    cpu, ram = info.cpu, info.ram
    if reserved[0] + vm.vcpu > cpu.total * cpu.limit_pct / 100:
        return {"fits": False, "reason": f"cpu: {reserved[0]:g}+{vm.vcpu} vcpu over its limit"}
    if reserved[1] + vm.vram > ram.total * ram.limit_pct / 100:
        return {"fits": False, "reason": "ram: over its limit"}
    return {"fits": True, "reason": ""}


def _how(result) -> str:
    from .migrate import describe

    return describe(result) if result is not None else ""
