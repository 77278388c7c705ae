"""A VM's user-data: what it may be, and reading a template's file.

Kept apart from ``lifecycle`` so that the command line checks a ``-u FILE`` before it
sends it, without loading the node-side code.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import VmTemplate

USER_DATA_MAX = 1024 * 1024
"""The largest user-data a VM may carry, in bytes. cloud-init's NoCloud seed has no limit
of its own, but the clouds' datasources do (EC2 16 KiB, OpenStack 64 KiB, GCE 256 KiB):
1 MiB holds any of those, with room for certificates in ``write_files``, and parses in
about 50 ms with libyaml (8 MiB of YAML took 67 s with the pure-Python parser)."""
USER_DATA_MODE = 0o600  # user-data may hold passwords: the node's user alone reads it


def user_data_problem(text: str) -> str | None:
    """Why ``text`` cannot be a VM's user-data, or None."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > USER_DATA_MAX:
        return f"is {size} bytes; at most {USER_DATA_MAX} bytes ({USER_DATA_MAX // 1024**2} MiB) are allowed"
    if "\x00" in text:
        return "contains NUL bytes: user-data is text (a #cloud-config, a script, or MIME)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid UTF-8 (character {exc.start} is a lone surrogate)"
    return None


def template_user_data(template: "VmTemplate") -> str:
    """The text of the template's ``user_data`` file, read on the node."""
    path = Path(template.user_data or "").expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"template {template.name!r}: user_data {path}: {exc.strerror}",
                         "Fix user_data in [[template.vm]]: the file must exist on the node.",
                         code="bad_user_data") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"template {template.name!r}: user_data {path} is not a text file "
                         f"(byte {exc.start} is not UTF-8)", code="bad_user_data") from None
