"""What the command line says of a verb's result when a format string cannot say it (a
verb's ``said`` names one of these as ``module:function``)."""

from __future__ import annotations


def stopped(vm, node: str, result) -> str:
    if result.was_running:
        return f"Stopped VM {vm.name} on node {node}."
    return f"VM {vm.name} is not running (it is {result.vm.state}); nothing to do."


def took_snapshot(vm, node: str, taken) -> str:
    return (f"Took snapshot {taken.name} of VM {vm.name} "
            f"({'disks and memory' if taken.memory else 'disks'}).")
