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


class _Download:
    """One image being fetched, and the creates waiting for it: it goes on while one of them
    still waits, and stops when the last has left (each has its cancel flag)."""

    def __init__(self) -> None:
        self.waiters: list[tuple] = []  # (cancel flag, progress reporter) of each create
        self.done = threading.Event()
        self.error: BaseException | None = None

    def abandoned(self) -> bool:
        return all(flag is not None and flag.is_set() for flag, _ in self.waiters)

    def report(self, what: str, done: int, total: int) -> None:
        for flag, reporter in list(self.waiters):
            if reporter is not None and not (flag is not None and flag.is_set()):
                reporter(what, done, total)


_downloads: dict[str, _Download] = {}
_downloads_guard = threading.Lock()


def fetch(url: str, sha256: str, cache_dir: Path, settings=None) -> Path:
    """The image at ``url`` in ``cache_dir``: downloaded once, checked, then reused.

    The download is streamed into a hidden partial file (decompressed on the
    way when the URL ends in ``.xz``; the digest is the one of the bytes the
    URL serves), checked against ``sha256``, and renamed into place only when
    complete. Any failure leaves nothing in the cache and raises a one-line error
    naming the URL. Creates that ask for the same image at once share one
    download; it reports progress to each, and stops when the last has left (its
    client went away, or the daemon stops). ``settings`` is ``[host.downloads]``:
    a server that sends nothing for ``timeout`` seconds, or less than ``min_rate``
    bytes a second, fails the download; redirects go to http(s) only, at most
    ``max_redirects`` of them.
    """
    from .. import progress
    from ..config import HostDownloads

    settings = settings or HostDownloads()
    target = cache_dir / cache_name(url, sha256)
    if target.exists():
        return target
    me = progress.current()
    with _downloads_guard:
        job = _downloads.get(target.name)
        starter = job is None
        if starter:
            job = _downloads[target.name] = _Download()
        job.waiters.append(me)
    if not starter:
        try:
            while not job.done.wait(0.2):
                progress.check_cancelled()  # this create may leave; the others keep it going
        finally:
            with _downloads_guard:
                job.waiters.remove(me)
        if job.error is not None:
            raise job.error
        return target
    try:
        if not target.exists():
            cache_dir.mkdir(parents=True, exist_ok=True)
            partial = cache_dir / f".{target.name}.partial"
            try:
                _download(url, sha256.lower(), partial, target.name, settings, job)
                os.chmod(partial, 0o440)
                os.replace(partial, target)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
    except BaseException as exc:
        job.error = exc
        raise
    finally:
        with _downloads_guard:
            del _downloads[target.name]
        job.done.set()
    return target


def _download(url: str, sha256: str, partial: Path, name: str, settings, job: _Download) -> None:
    import hashlib
    import http.client
    import lzma
    import socket
    import urllib.error
    import urllib.request

    from .. import __version__
    from ..errors import Cancelled, UsageError, VirshleError
    from ..log import logger

    def failed(why: str, code: str = "download_failed") -> UsageError:
        return UsageError(f"downloading {url} failed: {why}",
                          "Check the URL and that its server answers from the node; nothing "
                          "was kept, the next create tries again.", code=code)

    class Redirects(urllib.request.HTTPRedirectHandler):
        max_redirections = settings.max_redirects

        def redirect_request(self, req, fp, code, msg, headers, newurl):
            scheme = urlsplit(newurl).scheme.lower()
            if scheme not in ("http", "https"):
                raise failed(f"the server refused a redirect to {scheme}:// (only http and "
                             f"https are followed): {newurl}")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    logger.info("downloading {} into {}", url, partial.parent)
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": f"virshle/{__version__}"})
    opener = urllib.request.build_opener(Redirects)
    try:
        response = opener.open(request, timeout=settings.timeout)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise failed(f"too many redirects (more than {settings.max_redirects}, or a loop)") from None
        raise failed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise failed(str(getattr(exc.reason, "strerror", None) or exc.reason)) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise failed(str(exc) or type(exc).__name__) from None
    source = response.geturl()
    label = f"downloading {name}" + (f" from {source}" if source != url else "")
    if source != url:
        logger.info("{}: redirected, downloading from {}", url, source)
    total = int(response.headers.get("Content-Length") or 0)
    unpack = lzma.LZMADecompressor() if urlsplit(url).path.endswith(".xz") else None
    digest = hashlib.sha256()
    done = 0
    # The socket is read and hashed in a thread of its own while this one writes: both
    # release the GIL, so the download runs at the network's pace, not at read+hash+write.
    # It reads what has come (read1), so this thread hears of every byte, checks the rate
    # and whether anybody still waits, at least twice a second.
    chunks: queue.Queue = queue.Queue(maxsize=8)

    def receive() -> None:
        try:
            while chunk := response.read1(CHUNK):
                digest.update(chunk)
                chunks.put(chunk)
            chunks.put(b"")
        except BaseException as exc:  # handed over to the writer, which raises it
            chunks.put(exc)

    def cut() -> None:
        """End the transfer now: the reader's blocked read returns at once."""
        sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        response.close()

    reader = threading.Thread(target=receive, name="virshle-download", daemon=True)
    window: list[tuple[float, int]] = [(started, 0)]  # (when, bytes so far), the last timeout
    with open(partial, "wb") as out:
        reader.start()
        try:
            while True:
                try:
                    chunk = chunks.get(timeout=0.5)
                except queue.Empty:
                    chunk = None
                if job.abandoned():
                    raise Cancelled("every create that waited for the image has left",
                                    f"Nothing of {name} was kept.")
                now = time.monotonic()
                if chunk is None or not isinstance(chunk, bytes) or not chunk:
                    pass
                else:
                    done += len(chunk)
                    try:
                        out.write(unpack.decompress(chunk) if unpack else chunk)
                    except lzma.LZMAError as exc:
                        raise failed(f"it is not a valid .xz file ({exc})") from None
                    job.report(label, done, max(total, done))
                    window.append((now, done))
                while len(window) > 1 and now - window[1][0] >= settings.timeout:
                    window.pop(0)
                since, then = window[0]
                if now - since >= settings.timeout and (
                        done == then or (done - then) / (now - since) < settings.min_rate):
                    rate = (done - then) / (now - since)
                    raise failed(f"the server is too slow: {rate:.0f} bytes/s over the last "
                                 f"{settings.timeout:g}s ([host.downloads] min_rate is "
                                 f"{settings.min_rate})", code="download_too_slow")
                if isinstance(chunk, BaseException):
                    if isinstance(chunk, socket.timeout):
                        raise failed(f"the server is too slow: nothing for {settings.timeout:g}s",
                                     code="download_too_slow") from None
                    if isinstance(chunk, (OSError, http.client.HTTPException)):
                        raise failed(f"the transfer broke after {done} bytes "
                                     f"({type(chunk).__name__}: {chunk})") from None
                    raise chunk
                if chunk == b"":
                    break
        except OSError as exc:
            import errno

            if exc.errno == errno.ENOSPC:
                raise VirshleError(f"the disk under {partial.parent} is full: downloading {url} "
                                   f"stopped after {done} bytes", "Free some room under the "
                                   "node's root; nothing was kept.", code="no_space") from None
            raise
        finally:
            cut()
            reader.join(timeout=5)
        if total and done < total:
            raise failed(f"the transfer ended after {done} of {total} bytes")
        if unpack is not None and not unpack.eof:
            raise failed("the .xz stream ended early")
        received = time.monotonic()
        try:
            out.flush()
            os.fsync(out.fileno())  # on disk before it is trusted under its name
        except OSError as exc:
            raise VirshleError(f"the disk under {partial.parent} is full: {exc.strerror}",
                               "Free some room under the node's root; nothing was kept.",
                               code="no_space") from None
        logger.debug("downloaded {} bytes of {} in {:.2f}s, synced in {:.2f}s", done, source,
                     received - started, time.monotonic() - received)
    if digest.hexdigest() != sha256:
        raise UsageError(f"{url} has sha256 {digest.hexdigest()}, not the {sha256} the template "
                         "gives", "Fix sha256 in [[template.vm.disk]], or the URL; nothing was kept.",
                         code="digest_mismatch")


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
