"""The files of a VM moving between nodes (``migration.py`` does the rest): what the
source sends (its directory, and the base image of each overlay by sha256), where the
target puts each file, and the base images it already holds."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import NotFound, VirshleError
from ..host.images import disk_info, image_format, qemu_img
from ..host.transfer import file_digest
from ..models import NodeContext, Vm
from ..wire import api
from .lifecycle import VM_DIR_MODE

RUNTIME = ("vmm.pid", ".check-disks")
"""Files of a VM's directory that belong to one run of its VMM, never moved (nor sockets)."""
CONSOLE = "console.log"


def vm_files(vm: Vm) -> tuple[list[api.MoveFile], dict[str, tuple[api.MoveBase, Path]]]:
    """The VM's files, and the base image of each overlay (by sha256) with its path here."""
    files, bases = [], {}
    disks = {disk.path: disk for disk in vm.disks}
    for path in sorted(p for p in vm.path.rglob("*") if p.is_file() and not _runtime(p)):
        base = None
        disk = disks.get(str(path))
        if disk is not None and disk.format == "qcow2":
            backing = disk_info(str(path)).get("full-backing-filename")
            if backing:
                image = Path(backing)
                base = file_digest(image)
                bases[base] = (api.MoveBase(digest=base, size=image.stat().st_size,
                                            format=image_format(image), name=image.name), image)
        files.append(api.MoveFile(path=str(path.relative_to(vm.path)), size=path.stat().st_size,
                                  base=base))
    return files, bases


def source_files(vm: Vm, what: str, bases: list[str], since: int = 0) -> list[dict]:
    """What the source sends on a files stream: ``all`` its files (a stopped VM), ``static``
    the files a running VM does not write, ``console`` its console log from ``since``;
    with the base images in ``bases`` (sha256) first."""
    if what == "console":
        path = vm.path / CONSOLE
        return [{"source": str(path), "path": CONSOLE, "kind": "vm", "offset": since}] \
            if path.exists() else []
    files, images = vm_files(vm)
    sent = [{"source": str(path), "path": base.name, "kind": "base", "digest": digest}
            for digest, (base, path) in images.items() if digest in bases]
    writable = {disk.path for disk in vm.disks if not disk.readonly}
    for file in files:
        full = str(vm.path / file.path)
        if what == "static" and full in writable:
            continue  # copied by the hypervisor while the guest runs
        sent.append({"source": full, "path": file.path, "kind": "vm"})
    return sent


def cached_base(node: NodeContext, digest: str) -> Path | None:
    """The image in this node's cache whose content has this sha256, if it holds one."""
    cache = node.root / "cache"
    for sidecar in cache.glob("*.sha256"):
        try:
            if sidecar.read_text().split()[0] == digest:
                image = sidecar.with_name(sidecar.name[:-len(".sha256")])
                if image.is_file():
                    return image
        except (OSError, IndexError):
            continue
    return None


def place_file(node: NodeContext, vm: Vm, header: dict) -> Path:
    """Where a received file goes: under the VM's directory, or (a base image) the cache."""
    relative = Path(header["path"])
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise VirshleError(f"refused a file outside the VM's directory: {header['path']!r}")
    if header.get("kind") == "base":
        cache = node.root / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        return cache / f".{relative.name}.{vm.uuid[:8]}.partial"  # two moves may bring it
    path = vm.path / relative
    path.parent.mkdir(mode=VM_DIR_MODE, parents=True, exist_ok=True)
    return path


def file_received(node: NodeContext, header: dict, path: Path) -> None:
    """A received base image: checked against its sha256, then put in the cache."""
    if header.get("kind") != "base":
        return
    digest = file_digest(path)
    path.with_name(f"{path.name}.sha256").unlink(missing_ok=True)
    if digest != header["digest"]:
        path.unlink(missing_ok=True)
        raise VirshleError(f"base image {header['path']} arrived with another sha256")
    if cached_base(node, digest) is not None:  # another move brought it meanwhile
        path.unlink(missing_ok=True)
        return
    final = path.with_name(header["path"])
    if final.exists():
        final = path.with_name(f"{header['path']}-{digest[:12]}")
    os.chmod(path, 0o440)
    os.replace(path, final)
    final.with_name(f"{final.name}.sha256").write_text(f"{digest}  {final}\n")


def _runtime(path: Path) -> bool:
    return path.name in RUNTIME or path.suffix == ".sock"


def base_of(node: NodeContext, offer: api.MoveOffer, disk) -> Path | None:
    """This node's copy of the base image a disk's overlay stands on (None: a whole disk)."""
    name = str(Path(disk.path).relative_to(Path(node.root / "vm" / offer.vm["uuid"])))
    digest = next((f.base for f in offer.files if f.path == name), None)
    if digest is None:
        return None
    image = cached_base(node, digest)
    if image is None:
        raise NotFound(f"base image {digest[:12]} of disk {disk.name!r} is not on node "
                       f"{node.name!r}", code="base_missing")
    return image


def blank_disk(node: NodeContext, disk, base: Path | None) -> None:
    """An empty disk of the same size and format, or an overlay on ``base``, for a mirror."""
    path = Path(disk.path)
    path.parent.mkdir(mode=VM_DIR_MODE, parents=True, exist_ok=True)
    if base is not None:
        qemu_img("create", "-q", "-f", "qcow2", "-F", image_format(base), "-b", str(base),
                 str(path), str(disk.size), what=f"making disk {disk.name!r}")
    elif disk.format == "qcow2":
        qemu_img("create", "-q", "-f", "qcow2", str(path), str(disk.size),
                 what=f"making disk {disk.name!r}")
    else:
        with open(path, "wb") as handle:
            handle.truncate(disk.size)
    os.chmod(path, 0o600)
