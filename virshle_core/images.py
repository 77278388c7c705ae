"""Template images: their format and virtual size, and downloads into the node's cache."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

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


_fetching: dict[str, threading.Lock] = {}
_fetching_guard = threading.Lock()
CHUNK = 4 * 1024 * 1024


def cache_name(url: str, sha256: str) -> str:
    """The cache's name for the image at ``url``: its file name (without ``.xz``) and digest."""
    base = urlsplit(url).path.rsplit("/", 1)[-1] or "image"
    if base.endswith(".xz"):
        base = base[:-3]
    return f"{base[:40]}-{sha256.lower()[:16]}"


def fetch(url: str, sha256: str, cache_dir: Path, timeout: float = 30.0) -> Path:
    """The image at ``url`` in ``cache_dir``: downloaded once, checked, then reused.

    The download is streamed into a hidden partial file (decompressed on the
    way when the URL ends in ``.xz``; the digest is the one of the bytes the
    URL serves), checked against ``sha256``, and renamed into place only when
    complete. Any failure leaves nothing in the cache and raises UsageError
    naming the URL (and the digest). Progress goes to ``progress.report``,
    which also stops the download when the create is cancelled.
    """
    target = cache_dir / cache_name(url, sha256)
    if target.exists():
        return target
    with _fetching_guard:
        lock = _fetching.setdefault(target.name, threading.Lock())
    with lock:  # one download per image, however many creates ask for it
        if target.exists():
            return target
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_dir / f".{target.name}.partial"
        try:
            _download(url, sha256.lower(), partial, target.name, timeout)
            os.chmod(partial, 0o440)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return target


def _download(url: str, sha256: str, partial: Path, name: str, timeout: float) -> None:
    import hashlib
    import http.client
    import lzma
    import urllib.error
    import urllib.request

    from . import __version__
    from .errors import UsageError
    from .log import logger
    from .progress import report

    def failed(why: str, code: str = "download_failed") -> UsageError:
        return UsageError(f"downloading {url} failed: {why}",
                          "Check the URL and that its server answers from the node; nothing "
                          "was kept, the next create tries again.", code=code)

    logger.info("downloading {} into {}", url, partial.parent)
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": f"virshle/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise failed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise failed(str(getattr(exc.reason, "strerror", None) or exc.reason)) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise failed(str(exc) or type(exc).__name__) from None
    total = int(response.headers.get("Content-Length") or 0)
    unpack = lzma.LZMADecompressor() if urlsplit(url).path.endswith(".xz") else None
    digest = hashlib.sha256()
    done = 0
    label = f"downloading {name}"
    # The socket is read and hashed in a thread of its own while this one writes: both
    # release the GIL, so the download runs at the network's pace, not at read+hash+write.
    chunks: queue.Queue = queue.Queue(maxsize=8)

    def receive() -> None:
        try:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                chunks.put(chunk)
            chunks.put(b"")
        except BaseException as exc:  # handed over to the writer, which raises it
            chunks.put(exc)

    reader = threading.Thread(target=receive, name="virshle-download", daemon=True)
    with response, open(partial, "wb") as out:
        reader.start()
        try:
            while True:
                chunk = chunks.get()
                if isinstance(chunk, BaseException):
                    if isinstance(chunk, (OSError, http.client.HTTPException)):
                        raise failed(f"the transfer broke after {done} bytes "
                                     f"({type(chunk).__name__}: {chunk})") from None
                    raise chunk
                if not chunk:
                    break
                done += len(chunk)
                try:
                    out.write(unpack.decompress(chunk) if unpack else chunk)
                except lzma.LZMAError as exc:
                    raise failed(f"it is not a valid .xz file ({exc})") from None
                report(label, done, max(total, done))
        except BaseException:
            response.close()  # the reader stops at its next read
            raise
        finally:
            reader.join(timeout=timeout)
        if total and done < total:
            raise failed(f"the transfer ended after {done} of {total} bytes")
        if unpack is not None and not unpack.eof:
            raise failed("the .xz stream ended early")
        received = time.monotonic()
        out.flush()
        os.fsync(out.fileno())  # on disk before it is trusted under its name
        logger.debug("downloaded {} bytes of {} in {:.2f}s, synced in {:.2f}s", done, url,
                     received - started, time.monotonic() - received)
    if digest.hexdigest() != sha256:
        raise UsageError(f"{url} has sha256 {digest.hexdigest()}, not the {sha256} the template "
                         "gives", "Fix sha256 in [[template.vm.disk]], or the URL; nothing was kept.",
                         code="digest_mismatch")


def qemu_img(*args: str, what: str) -> str:
    """Run ``qemu-img``; its output, or a VirshleError saying ``what`` failed and why."""
    import shutil
    import subprocess

    from .errors import VirshleError
    from .log import log_command

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


def snapshot_disks(vm) -> list:
    """The disks a snapshot holds: the writable ones (a seed is read-only, and made again)."""
    return [disk for disk in vm.disks if not disk.readonly]


def check_snapshot_disks(vm) -> list:
    """The writable disks, each qcow2 (raw files hold no snapshots), or a UsageError."""
    from .errors import UsageError

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
    in one rename); the caller records ``disk.format = "qcow2"`` at once."""
    import os

    path = disk.path
    base, partial = f"{path}.base", f"{path}.overlay.partial"
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
