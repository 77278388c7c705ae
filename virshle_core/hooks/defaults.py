"""The core's own hook implementations, registered as the plugin ``core``.

They are fallbacks (``trylast``): any installed plugin that answers the
same hook wins.

Disk cloning: a template image is copied once into ``<root>/cache/``
(verified against the checksum of what was read), and each VM gets a
reflink of that copy where the filesystem supports it, else a qcow2
overlay on it (``qemu-img``), else a full copy. Creating the hundredth VM
from a 20 GiB image then costs what the first overlay cost.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from pathlib import Path

from .. import hookimpl
from ..errors import VirshleError
from ..host.images import check_snapshot_disks, image_format, qemu_img, snapshot_id, virtual_size
from ..log import logger
from ..models import ClonedDisk, NodeContext
from ..progress import check_cancelled, report

CHUNK = 4 * 1024 * 1024
FICLONE = 0x40049409
CACHE_MODE = 0o440  # cached images: read by the node only (the cache directory is 0750)
DISK_MODE = 0o600   # a VM's disks hold its data: the node's user alone


def cached_copy(source: Path, cache_dir: Path) -> Path:
    """The verified copy of ``source`` in ``cache_dir``, made once per version of the file.

    A source already in the cache (a downloaded image) is its own copy.
    """
    if source.parent == cache_dir:
        return source
    info = source.stat()
    identity = hashlib.sha256(f"{source.resolve()}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    name = f"{source.name[:40]}-{identity.hexdigest()[:16]}"
    target = cache_dir / name
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Concurrent creates from one template copy it once: they take turns on the template
    # itself (read-only, an advisory lock), so the cache holds no lock files.
    with open(source, "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        partial = cache_dir / f".{name}.partial"
        try:
            _copy_verified(source, partial, info.st_size)
            os.chmod(partial, CACHE_MODE)  # VMs only ever read the cached image
            os.replace(partial, target)
        except BaseException:
            # out of space, cancelled, a read error: a half copy must never stay behind
            partial.unlink(missing_ok=True)
            raise
    return target


def _copy_verified(source: Path, partial: Path, size: int) -> None:
    logger.info("caching {} ({} bytes) in {}", source, size, partial.parent)
    digest = hashlib.sha256()
    done = 0
    with open(source, "rb") as src, open(partial, "wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            done += len(chunk)
            report(f"caching {source.name}", done, size)
        dst.flush()
        os.fsync(dst.fileno())
    check = hashlib.sha256()
    done = 0
    with open(partial, "rb") as copy:
        while chunk := copy.read(CHUNK):
            check.update(chunk)
            done += len(chunk)
            report(f"checking {source.name}", done, size)
    if check.hexdigest() != digest.hexdigest():
        raise VirshleError(f"the cached copy of {source} does not match its checksum",
                           "Check the disk holding the node's root, then retry.")
    (partial.parent / f"{partial.name[1:-len('.partial')]}.sha256").write_text(
        f"{digest.hexdigest()}  {source}\n")


def empty_overlay(cached: Path, fmt: str) -> Path:
    """A fresh qcow2 overlay on ``cached`` (backing format ``fmt``), made once and kept beside it."""
    blank = cached.with_name(f"{cached.name}.overlay")
    if blank.exists():
        return blank
    with open(cached, "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # made once, whatever the number of creates at once
        if blank.exists():
            return blank
        partial = cached.with_name(f".{cached.name}.overlay.partial")
        try:
            qemu_img("create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(cached), str(partial),
                     what=f"qemu-img could not make an overlay on {cached}")
            os.chmod(partial, CACHE_MODE)
            os.replace(partial, blank)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return blank


def reflink(source: Path, dest: Path) -> bool:
    try:
        with open(source, "rb") as src, open(dest, "wb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        return True
    except OSError:
        dest.unlink(missing_ok=True)
        return False


def _copy_disk(source: Path, dst: Path) -> None:
    """``dst``, the VM's own copy of ``source``: whole, with the disk mode, or not at all."""
    try:
        shutil.copyfile(source, dst)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    os.chmod(dst, DISK_MODE)


@hookimpl(trylast=True)
def virshle_disk_clone(source: str, dest: str, node: NodeContext) -> ClonedDisk:
    src, dst = Path(source), Path(dest)
    fmt = image_format(src)
    size = virtual_size(src, fmt)
    cached = cached_copy(src, node.root / "cache")
    if reflink(cached, dst):
        os.chmod(dst, DISK_MODE)
        return ClonedDisk(format=fmt, size=size)
    if shutil.which("qemu-img"):
        # Every VM's overlay on this image starts as the same small file: qemu-img makes it once,
        # and each VM gets a copy (a process per VM cost ten times what the copy does).
        _copy_disk(empty_overlay(cached, fmt), dst)
        return ClonedDisk(format="qcow2", size=size)
    _copy_disk(cached, dst)
    return ClonedDisk(format=fmt, size=size)


# --- a VM's disks once it exists: snapshots, growing, copying -----------------------------


@hookimpl(trylast=True)
def virshle_snapshot(vm, action: str, snapshot, node: NodeContext) -> bool | None:
    """A VM that is not running: a qcow2 internal snapshot in each writable disk."""
    if vm.state in ("running", "paused"):
        return None  # its hypervisor's (the files are in use)
    disks = check_snapshot_disks(vm)
    flag = {"create": "-c", "restore": "-a", "delete": "-d"}[action]
    done = []
    try:
        for disk in disks:
            what = f"VM {vm.name!r}: snapshot {action} of {snapshot.name!r} on disk {disk.name!r}"
            target = snapshot.name  # create and delete (-d) look the name up, and only it
            if action != "create":
                held = snapshot_id(disk.path, snapshot.name)
                if held is None:
                    if action == "delete":
                        continue  # a create cut short never made it on this disk
                    raise VirshleError(f"{what}: the disk holds no snapshot of that name",
                                       code="snapshot_not_found")
                if action == "restore":  # -a looks an id up before a name: give it the id
                    target = held
            qemu_img("snapshot", flag, target, disk.path, what=what)
            done.append(disk)
    except BaseException:
        if action == "create":  # all the disks, or none
            for disk in done:
                try:
                    qemu_img("snapshot", "-d", snapshot.name, disk.path, what="undoing")
                except VirshleError as exc:
                    logger.warning("VM {}: {}", vm.name, exc.message)
        raise
    return True


@hookimpl(trylast=True)
def virshle_disk_resize(vm, disk, size: int, node: NodeContext) -> int:
    qemu_img("resize", "-q", "-f", disk.format, disk.path, str(size),
             what=f"VM {vm.name!r}: growing disk {disk.name!r}")
    return size


@hookimpl(trylast=True)
def virshle_disk_copy(vm, disk, dest: str, node: NodeContext) -> ClonedDisk:
    """A qcow2 overlay is copied as it is (a new overlay on the same cached image, holding
    what the VM wrote), then loses the snapshots it holds; a backing file of the VM's own
    (a raw disk kept under an overlay at its first snapshot) is copied too; anything else
    is copied whole, sparse where the source is."""
    source, target = Path(disk.path), Path(dest)
    base = Path(f"{dest}.base")
    try:
        _copy_sparse(source, target, f"copying disk {disk.name}")
        os.chmod(target, DISK_MODE)
        if disk.format == "qcow2":
            import json

            info = json.loads(qemu_img("info", "--output=json", "-U", str(target),
                                       what=f"reading the copy of disk {disk.name!r}"))
            for held in info.get("snapshots") or []:  # -d looks up names alone
                qemu_img("snapshot", "-d", held["name"], str(target),
                         what=f"dropping snapshot {held['name']!r} from the copy of disk {disk.name!r}")
            backing = info.get("full-backing-filename") or info.get("backing-filename")
            if backing and Path(backing).parent == source.parent:  # the source VM's own
                _copy_sparse(Path(backing), base, f"copying disk {disk.name}'s base")
                qemu_img("rebase", "-u", "-F", info.get("backing-filename-format") or "raw",
                         "-b", str(base), str(target),
                         what=f"pointing the copy of disk {disk.name!r} at its own base")
    except BaseException:
        target.unlink(missing_ok=True)
        base.unlink(missing_ok=True)
        raise
    return ClonedDisk(format=disk.format, size=disk.size)


def _copy_sparse(source: Path, target: Path, what: str) -> None:
    """Copy ``source`` to a new file ``target`` by chunks, leaving holes where it reads
    zeros, with progress."""
    size = source.stat().st_size
    done = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DISK_MODE)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
        while chunk := src.read(CHUNK):
            if chunk.count(0) == len(chunk):
                dst.seek(len(chunk), os.SEEK_CUR)
            else:
                dst.write(chunk)
            done += len(chunk)
            report(what, done, size)
            check_cancelled()
        dst.truncate(size)
        dst.flush()
        os.fsync(dst.fileno())
