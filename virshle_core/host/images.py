"""Template images and a VM's disks: their format and virtual size, qemu-img, internal
snapshots, leaked clusters (downloads into the cache: ``downloads.py``)."""

from __future__ import annotations

import os
from pathlib import Path

QCOW2_MAGIC = b"QFI\xfb"


def image_format(path: Path | str) -> str:
    """``qcow2`` when the file starts with qcow2's magic, else ``raw``."""
    with open(path, "rb") as handle:
        return "qcow2" if handle.read(4) == QCOW2_MAGIC else "raw"


def virtual_size(path: Path | str, fmt: str | None = None) -> int:
    """The size the guest sees: qcow2's header field, or a raw file's length."""
    fmt = fmt or image_format(path)
    if fmt == "qcow2":
        with open(path, "rb") as handle:
            header = handle.read(32)
        return int.from_bytes(header[24:32], "big")
    return Path(path).stat().st_size


def qemu_img(*args: str, what: str) -> str:
    """Run ``qemu-img``; its output, or a VirshleError saying ``what`` failed and why."""
    import shutil
    import subprocess

    from ..errors import VirshleError
    from ..log import log_command

    binary = shutil.which("qemu-img")
    if binary is None:
        raise VirshleError(f"{what}: qemu-img is not installed",
                           "Install the Debian package qemu-utils.", code="qemu_img_failed")
    argv = [binary, *args]
    log_command(argv)
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise VirshleError(f"{what}: {detail.removeprefix('qemu-img: ')}", code="qemu_img_failed")
    return proc.stdout


def disk_info(path: str) -> dict:
    """``qemu-img info`` of a disk, read even while a VMM has it open (``-U``)."""
    import json

    return json.loads(qemu_img("info", "--output=json", "-U", str(path),
                               what=f"reading disk {path}"))


def internal_snapshots(path: str) -> dict[str, str]:
    """The internal snapshots a qcow2 disk holds: QEMU's id of each, by name."""
    return {held["name"]: held["id"] for held in disk_info(path).get("snapshots") or []}


def snapshot_id(path: str, name: str) -> str | None:
    """QEMU's id of snapshot ``name`` in a qcow2 disk, None when it holds none of that name.

    ``qemu-img snapshot -a`` and ``loadvm`` look a snapshot up by its id before its name,
    so snapshot "1" named by its name could be another snapshot (QEMU's number 1):
    ``-a`` is given the id, which matches first and exactly (``-d`` and ``delvm`` look up
    names alone)."""
    return internal_snapshots(path).get(name)


def repair_leaks(vm) -> list[str]:
    """``qemu-img check -r leaks`` on each qcow2 disk of a VM whose VMM is gone: a QEMU
    killed while it wrote (a forced stop, a crash, a cut-short savevm) leaks clusters that
    only take room, and nobody would say so. Returns the disks checked."""
    from ..errors import VirshleError
    from ..log import logger

    checked = []
    for disk in snapshot_disks(vm):
        if disk.format != "qcow2" or not os.path.exists(disk.path):
            continue
        try:
            qemu_img("check", "-q", "-r", "leaks", disk.path,
                     what=f"VM {vm.name!r}: checking disk {disk.name!r}")
        except VirshleError as exc:
            logger.warning("{}", exc.message)
            continue
        checked.append(disk.name)
    return checked


CHECK = ".check-disks"
"""A file in a VM's directory: a disk verb failed on it, its qcow2 disks are checked (leaks
repaired) before it next starts, and by the next daemon's reconcile."""


def mark_for_check(vm) -> None:
    import os

    try:
        with open(os.path.join(vm.dir, CHECK), "w"):
            pass
    except OSError:  # a full disk may refuse even this; the journal entry then stays
        pass


def check_if_marked(vm) -> bool:
    """Repair a VM's disks when a failed disk verb marked them; True when it did."""
    import os

    path = os.path.join(vm.dir, CHECK)
    if not os.path.exists(path):
        return False
    if repair_leaks(vm) or not [d for d in vm.disks if d.format == "qcow2" and not d.readonly]:
        os.unlink(path)
    return True


def snapshot_disks(vm) -> list:
    """The disks a snapshot holds: the writable ones (a seed is read-only, and made again)."""
    return [disk for disk in vm.disks if not disk.readonly]


def check_snapshot_disks(vm) -> list:
    """The writable disks, each qcow2 (raw files hold no snapshots), or a UsageError."""
    from ..errors import UsageError

    disks = snapshot_disks(vm)
    for disk in disks:
        if disk.format != "qcow2":
            raise UsageError(
                f"VM {vm.name!r}: disk {disk.name!r} is a {disk.format} file, which holds no "
                "snapshots (they are qcow2 internal snapshots)",
                f"Stop the VM (`virshle vm stop {vm.name}`): at its first snapshot a raw disk is "
                "kept as it is under a qcow2 overlay, which holds them.",
                code="not_supported")
    return disks


def overlay_on_itself(disk) -> None:
    """Keep a raw disk's file as it is, as the backing file ``<path>.base``, under a new
    qcow2 overlay at its path: the disk can hold snapshots from now on, and nothing was
    copied. The file at ``disk.path`` is whole at every moment (the overlay replaces it
    in one rename); the caller records ``disk.format = "qcow2"`` at once, under the
    journal entry that tells a restart to read the file's real format. A disk that is
    qcow2 already (its overlay made before a crash the store did not hear of) is left
    as it is."""
    import os

    path = disk.path
    base, partial = f"{path}.base", f"{path}.overlay.partial"
    if image_format(path) == "qcow2":  # the overlay is in place already: a crash came before
        disk.format = "qcow2"           # the store said so (its base is the raw data: keep it)
        return
    size = virtual_size(path, disk.format)
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-F", disk.format, "-b", base, partial,
             str(size), what=f"making an overlay for disk {disk.name!r}")
    try:
        if os.path.exists(base):
            os.unlink(base)  # a link a crash left behind: the file at the path is the one
        os.link(path, base)
        os.chmod(partial, 0o600)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    disk.format = "qcow2"
