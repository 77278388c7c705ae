"""How a VM is named on the wire: ``id:7``, ``name:web``, ``uuid:3f0c…``.

An id, a name and a uuid each live in their own namespace. The CLI always
says which one it means (``--id``, ``--name``, ``--uuid`` become ``id:``,
``name:``, ``uuid:``). A bare reference is read by its shape: ASCII digits
are an id, the 8-4-4-4-12 hex shape is a uuid, anything else is a name. That
is unambiguous because a VM name may never be all digits nor uuid-shaped.
"""

from __future__ import annotations

import re

from ..errors import UsageError

KINDS = ("id", "name", "uuid")
ID_PATTERN = re.compile(r"[0-9]+")
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MAX_ID = 2**63 - 1  # SQLite's INTEGER; a larger id cannot exist


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a VM's name, or None."""
    if not NAME_PATTERN.fullmatch(name):
        return "use 1 to 63 lowercase letters, digits and '-', starting with a letter or digit"
    if ID_PATTERN.fullmatch(name):
        return "a name may not be all digits (it would read as an id)"
    if UUID_PATTERN.fullmatch(name):
        return "a name may not be shaped like a uuid"
    return None


def validate_name(name: str) -> str:
    """``name`` when it is a valid VM name; UsageError (exit 2, HTTP 400) otherwise."""
    problem = name_problem(name)
    if problem:
        raise UsageError(f"{name!r} is not a valid VM name: {problem}",
                         "Names look like web-1 or brave-otter.", code="bad_name")
    return name


class VmRef:
    """One VM, named in one namespace. ``str(ref)`` is its wire form, ``id:7``.

    A plain class (not attrs): the CLI builds one on every command, and its
    start-up has no room for attrs.
    """

    __slots__ = ("kind", "value", "bare")

    def __init__(self, kind: str, value: str | int, bare: bool = False):
        self.kind = kind
        self.value = value
        self.bare = bare

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VmRef) and (self.kind, self.value) == (other.kind, other.value)

    def __hash__(self) -> int:
        return hash((self.kind, self.value))

    def __repr__(self) -> str:
        return f"VmRef({self.kind!r}, {self.value!r})"

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @property
    def label(self) -> str:
        """How messages name it: ``id 7``, ``'web'``, ``uuid 3f0c…``."""
        return repr(self.value) if self.kind == "name" else f"{self.kind} {self.value}"

    @classmethod
    def of(cls, kind: str, value: str | int) -> "VmRef":
        """A reference of a known kind; bad values are a UsageError."""
        text = str(value)
        if kind == "id":
            if not ID_PATTERN.fullmatch(text):
                raise UsageError(f"{text!r} is not a VM id: ids are ASCII digits (0-9)",
                                 "List the VMs and their ids with `virshle vm ls`.", code="bad_ref")
            return cls("id", int(text))
        if kind == "uuid":
            if not UUID_PATTERN.fullmatch(text):
                raise UsageError(f"{text!r} is not a uuid",
                                 "A uuid looks like 3f0c6a1e-8d2b-4c55-9a61-0e4b5f7d2c10.",
                                 code="bad_ref")
            return cls("uuid", text.lower())
        if kind == "name":
            if not text or len(text) > 255:
                raise UsageError("a VM name must be 1 to 63 characters", code="bad_ref")
            return cls("name", text)
        raise UsageError(f"unknown kind of VM reference {kind!r}",
                         "Write id:N, name:NAME or uuid:UUID.", code="bad_ref")

    @classmethod
    def parse(cls, text: str) -> "VmRef":
        """``id:7``, ``name:web``, ``uuid:…``, or a bare reference read by its shape."""
        kind, colon, value = text.partition(":")
        if colon and kind in KINDS:
            return cls.of(kind, value)
        if ID_PATTERN.fullmatch(text):
            ref = cls.of("id", text)
        elif UUID_PATTERN.fullmatch(text):
            ref = cls.of("uuid", text)
        else:
            ref = cls.of("name", text)
        ref.bare = True
        return ref
