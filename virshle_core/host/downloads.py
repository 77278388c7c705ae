"""Template images downloaded into the node's cache: once, checked, shared by the creates
that wait for them, cancelled by the last that leaves (docs/architecture.md, "Real guests")."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

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
