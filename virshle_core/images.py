"""What the core reads of a disk image: its format and its virtual size."""

from __future__ import annotations

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
