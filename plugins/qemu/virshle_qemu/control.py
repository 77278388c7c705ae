"""Pause, resume, reboot and snapshots of a running QEMU, over QMP.

A graceful reboot is libvirt's: the ACPI power button, and when the guest has powered
off (QEMU runs with ``-no-shutdown``, so it stays) a reset and ``cont`` instead of an
exit. The VM's watch is told (``REBOOTING``), so that it does not end QEMU on the
``SHUTDOWN`` it hears meanwhile.

Snapshots of a running VM are qcow2 internal snapshots too, as a stopped VM's are
(``qemu-img snapshot``), so either kind restores either way: the disks alone in one QMP
``transaction`` (consistent across disks), or with the memory and devices through
``savevm``/``loadvm``, which keep the VM state in the first disk.
"""

from __future__ import annotations

import time

from virshle_core import VirshleError

from .vmm import qmp as _qmp

REBOOTING: set[str] = set()
"""The uuids of VMs in a graceful reboot: their watch leaves QEMU up when they power off."""


def qmp(vm, command: str, arguments: dict | None = None, timeout: float = 5.0):
    """One QMP command; its failure is the VM's error, naming the command."""
    try:
        return _qmp(vm, command, arguments, timeout)
    except VirshleError:
        raise
    except Exception as exc:
        raise VirshleError(f"VM {vm.name!r}: QEMU refused {command}: {exc}",
                           code="vmm_failed") from None


def control(vm, action: str, force: bool, timeout: float) -> None:
    if action == "pause":
        qmp(vm, "stop")
    elif action == "resume":
        qmp(vm, "cont")
    elif force:
        qmp(vm, "system_reset")
    else:
        _acpi_reboot(vm, timeout)


def _acpi_reboot(vm, timeout: float) -> None:
    REBOOTING.add(vm.uuid)
    try:
        qmp(vm, "system_powerdown")
        deadline = time.monotonic() + timeout
        while qmp(vm, "query-status")["status"] != "shutdown":
            if time.monotonic() > deadline:
                raise VirshleError(
                    f"VM {vm.name!r} did not power off within {timeout:g}s of the ACPI power "
                    "button, so it was not reset",
                    f"Its guest may ignore the button: `virshle vm reboot --force {vm.name}` resets "
                    "it at once.", code="vmm_failed")
            time.sleep(0.1)
        qmp(vm, "system_reset")
        qmp(vm, "cont")
    finally:
        REBOOTING.discard(vm.uuid)


def snapshot(vm, action: str, snap) -> None:
    name = snap.name
    if action == "create" and not snap.memory:
        devices = _devices(vm)
        qmp(vm, "transaction", {"actions": [
            {"type": "blockdev-snapshot-internal-sync", "data": {"device": device, "name": name}}
            for device in devices]}, timeout=120)
        return
    if action == "restore" and name.isdigit():  # loadvm would take QEMU's snapshot number NAME
        raise VirshleError(
            f"VM {vm.name!r}: snapshot {name!r} has a name QEMU reads as a snapshot's number, so "
            "a running VM cannot be brought back to it", f"Stop the VM (`virshle vm stop "
            f"{vm.name}`) and restore it then: its disks come back, its memory does not.",
            code="not_supported")
    command = {"create": "savevm", "restore": "loadvm", "delete": "delvm"}[action]
    output = qmp(vm, "human-monitor-command", {"command-line": f"{command} {name}"}, timeout=600)
    if output and "rror" in output:
        if action == "delete" and "not found" in output.lower():
            return
        raise VirshleError(f"VM {vm.name!r}: {command} {name!r} failed: {output.strip()}",
                           code="vmm_failed")


def _devices(vm) -> list[str]:
    """The QEMU block devices of the VM's writable disks, matched by file."""
    writable = {disk.path for disk in vm.disks if not disk.readonly}
    found = [block["device"] for block in qmp(vm, "query-block")
             if (block.get("inserted") or {}).get("file") in writable
             and not block["inserted"].get("ro")]
    if len(found) != len(writable):
        raise VirshleError(f"VM {vm.name!r}: QEMU has {len(found)} of its {len(writable)} writable "
                           "disks", "Restart the VM, then take the snapshot again.",
                           code="vmm_failed")
    return found


def stats(vm):
    """The QEMU's cpu time and RSS (its process) and each disk's I/O (``query-blockstats``,
    matched to the disks by file through ``query-block``); None when it is not running."""
    import psutil

    from virshle_core.models import VmStats

    from .vmm import alive, read_pid

    pid = read_pid(vm)
    if pid is None or not alive(pid, vm):
        return None
    process = psutil.Process(pid)
    times, rss = process.cpu_times(), process.memory_info().rss
    by_file = {disk.path: disk.name for disk in vm.disks}
    devices = {block["device"]: by_file.get(block["inserted"]["file"])
               for block in qmp(vm, "query-block", timeout=2) if block.get("inserted")}
    disks = []
    for entry in qmp(vm, "query-blockstats", timeout=2):
        name, counted = devices.get(entry.get("device")), entry.get("stats") or {}
        if name:
            disks.append({"name": name, "read_bytes": counted.get("rd_bytes", 0),
                          "written_bytes": counted.get("wr_bytes", 0),
                          "reads": counted.get("rd_operations", 0),
                          "writes": counted.get("wr_operations", 0)})
    return VmStats(cpu_seconds=times.user + times.system, rss_bytes=rss, disks=disks)
