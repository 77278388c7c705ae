"""The base of the wire documents (``api.py``): fields from annotations, JSON in and out.

A record's fields are its annotations, written as text (``from __future__ import
annotations``), so that no ``typing`` is imported: the CLI reads records on every
listing. The types known are ``str``, ``int``, ``float``, ``bool``, ``Any``,
``X | None``, ``list[X]``, ``dict[str, X]``, records, and choices: a class in ``TYPES``
that lists its strings in ``VALUES`` (or an enum, read only when an error is). A choice
is read as the plain string. No ``enum`` here: outside a venv that imports it anyway, it
costs a listing 6 ms (functools, collections).
Why not attrs and cattrs: docs/architecture.md, "Libraries, and why".
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class WireError(ValueError):
    """A document does not have the shape its class declares; ``problems`` says where."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class Field:
    """One field of a record: its name, its type as written, and its default."""

    __slots__ = ("name", "type", "default", "required")

    def __init__(self, name: str, type: str, default: Any):
        self.name, self.type, self.default = name, type, default
        self.required = default is _REQUIRED


_REQUIRED = object()


class Record:
    """The base of every wire document: its fields are its annotations, in order.

    A field's default is the class attribute of the same name; a list or dict default
    is copied for each instance. ``to_json()`` gives the document, ``from_json()``
    reads one (``strict`` for requests: unknown fields and wrong types are refused).
    """

    __fields__: tuple[Field, ...] = ()
    __wire__ = True
    """False on a record that extends a wire document with what only its node holds (the
    daemon's ``models.Vm`` over ``api.Vm``): it is never sent, so it does not take the
    document's name, and it is written as the document it extends."""

    def __init_subclass__(cls) -> None:
        if cls.__dict__.get("__wire__", True):
            TYPES[cls.__name__] = cls
        fields = {f.name: f for f in cls.__fields__}
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if name.startswith("_"):
                continue
            fields[name] = Field(name, annotation, cls.__dict__.get(name, _REQUIRED))
        for name, value in cls.__dict__.items():
            if isinstance(value, property):  # a subclass computes that field
                fields.pop(name, None)
        cls.__fields__ = tuple(fields.values())

    def __init__(self, **values: Any):
        for field in self.__fields__:
            if field.name in values:
                value = values.pop(field.name)
            elif field.required:
                raise TypeError(f"{type(self).__name__}: missing field {field.name!r}")
            else:
                value = field.default
                if isinstance(value, (list, dict)):
                    value = value.copy()
            setattr(self, field.name, value)
        if values:
            raise TypeError(f"{type(self).__name__}: unknown field(s) {', '.join(values)}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__fields__)
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, f.name) == getattr(other, f.name) for f in self.__fields__)

    def to_json(self) -> dict:
        return dump(type(self), self)

    def evolve(self, **changes: Any):
        """A copy with ``changes`` (as ``attrs.evolve``)."""
        values = {f.name: getattr(self, f.name) for f in self.__fields__}
        values.update(changes)
        return type(self)(**values)

    @classmethod
    def from_json(cls, data: Any, strict: bool = False):
        """The record ``data`` holds. A reply (``strict`` False) is read by a reader made
        once per type, the listing's hot path; a request, or a reply that does not fit, is
        read again field by field to say where it does not fit."""
        if not strict:
            try:
                return _fast_reader(cls.__name__)(data)
            except _Misfit:
                pass
        problems: list[str] = []
        value = _read(cls.__name__, data, "", strict, problems)
        if problems:
            raise WireError(problems)
        return value

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in cls.__fields__]


def dump(cls: type[Record], source: Any) -> dict:
    """The document of ``cls`` read off ``source``: a record, or any object with the same
    attribute names (the node's own ``models.Vm``), so no copy is made in between."""
    return _writer(cls.__name__)(source)  # a record always has a writer


def dump_list(cls: type[Record], sources: Any) -> list[dict]:
    write = _writer(cls.__name__)
    return [write(source) for source in sources]


_WRITERS: dict[str, Any] = {}


def _writer(kind: str) -> Any:
    """A function that writes a value of ``kind`` as JSON data; made once per type (a
    listing of a thousand VMs writes each field's type a thousand times)."""
    if kind not in _WRITERS:
        _WRITERS[kind] = _make_writer(kind)
    return _WRITERS[kind]


def _make_writer(kind: str) -> Any:
    """None for a value written as it is (scalars, choices: JSON writes a str enum as its
    string), else the function that writes it."""
    if kind.endswith(" | None"):
        inner = _writer(kind[:-7])
        return None if inner is None else (lambda value: None if value is None else inner(value))
    if kind.startswith("list["):
        item = _writer(kind[5:-1])
        return list if item is None else (lambda value: [item(one) for one in value])
    if kind.startswith("dict[str, "):
        item = _writer(kind[10:-1])
        return dict if item is None else (
            lambda value: {key: item(one) for key, one in value.items()})
    target = _named(kind)
    if kind in _SCALARS or not (isinstance(target, type) and issubclass(target, Record)):
        return None
    # a dict display, as a hand-written to_json would be (what attrs and dataclasses do too)
    namespace: dict[str, Any] = {}
    items = []
    for index, field in enumerate(target.__fields__):
        write = _writer(field.type)
        if write is None:
            items.append(f"{field.name!r}: source.{field.name}")
        else:
            namespace[f"write_{index}"] = write
            items.append(f"{field.name!r}: write_{index}(source.{field.name})")
    exec(f"def record(source):\n    return {{{', '.join(items)}}}\n", namespace)
    return namespace["record"]


_SCALARS = {"str": str, "int": int, "float": float, "bool": bool, "Any": object}


def choices(target: type) -> tuple[str, ...]:
    """The strings a choice type allows: its ``VALUES``, or an enum's values."""
    values = getattr(target, "VALUES", None)
    return tuple(values) if values is not None else tuple(member.value for member in target)


TYPES: dict[str, type] = {}
"""Every record by its name (they add themselves), and the choices their fields name."""

LAZY: dict[str, Any] = {}
"""Types loaded on first use: name -> a function that returns the type."""


def _named(kind: str) -> Any:
    found = TYPES.get(kind)
    if found is None and kind in LAZY:
        found = TYPES[kind] = LAZY[kind]()
    return found


def _read(kind: str, value: Any, where: str, strict: bool, problems: list[str]) -> Any:
    """``value`` as ``kind``; what does not fit is added to ``problems`` (as ``where: ...``)."""
    if kind.endswith(" | None"):
        return None if value is None else _read(kind[:-7], value, where, strict, problems)
    if kind == "Any":
        return value
    expected = _SCALARS.get(kind)
    if expected is not None:
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            return value  # a JSON number, kept as written
        if not ok:
            problems.append(f"{where or 'the document'}: must be {_NAMES[kind]}, not {_shown(value)}")
        elif strict and expected is str and "\x00" in value:
            problems.append(f"{where}: must not contain a NUL character")
        return value
    if kind.startswith("list["):
        if not isinstance(value, list):
            problems.append(f"{where or 'the document'}: must be a list, not {_shown(value)}")
            return []
        return [_read(kind[5:-1], item, f"{where}[{i}]", strict, problems)
                for i, item in enumerate(value)]
    if kind.startswith("dict[str, "):
        if not isinstance(value, dict):
            problems.append(f"{where or 'the document'}: must be an object, not {_shown(value)}")
            return {}
        return {key: _read(kind[10:-1], item, f"{where}.{key}", strict, problems)
                for key, item in value.items()}
    target = _named(kind)
    if isinstance(target, type) and not issubclass(target, Record):
        values = choices(target)
        if strict and value not in values:
            problems.append(f"{where}: must be one of " + ", ".join(values))
        return value  # a reply's value this client does not know (a newer daemon) is kept
    if not (isinstance(target, type) and issubclass(target, Record)):
        raise TypeError(f"wire: unknown field type {kind!r}")
    if not isinstance(value, dict):
        problems.append(f"{where or 'the document'}: must be an object, not {_shown(value)}")
        return None
    known = {f.name for f in target.__fields__}
    unknown = [key for key in value if key not in known]
    if strict:
        problems.extend(f"{where + '.' if where else ''}{key}: unknown key" for key in unknown)
    values = {}
    for field in target.__fields__:
        here = f"{where}.{field.name}" if where else field.name
        if field.name in value:
            values[field.name] = _read(field.type, value[field.name], here, strict, problems)
        elif field.required:
            problems.append(f"{here}: is required")
    if problems:
        return None
    return target(**values)


_NAMES = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Misfit(Exception):
    """A reply does not fit its type: read it again, slowly, to say where."""


_FAST: dict[str, Any] = {}


def _fast_reader(kind: str) -> Any:
    """A function that reads a value of ``kind`` leniently (unknown fields ignored) or
    raises _Misfit; made once per type."""
    reader = _FAST.get(kind)
    if reader is None:
        reader = _FAST[kind] = _make_fast_reader(kind)
    return reader


def _make_fast_reader(kind: str) -> Any:
    if kind.endswith(" | None"):
        inner = kind[:-7]
        return lambda value: None if value is None else _fast_reader(inner)(value)
    if kind == "Any":
        return lambda value: value
    expected = _SCALARS.get(kind)
    if expected is not None:
        accepted = (int, float) if expected is float else expected

        def scalar(value: Any) -> Any:
            if not isinstance(value, accepted) or (expected is not bool and isinstance(value, bool)):
                raise _Misfit
            return value

        return scalar
    if kind.startswith("list["):
        item = kind[5:-1]

        def many(value: Any) -> list:
            if not isinstance(value, list):
                raise _Misfit
            read = _fast_reader(item)
            return [read(one) for one in value]

        return many
    if kind.startswith("dict[str, "):
        item = kind[10:-1]

        def table(value: Any) -> dict:
            if not isinstance(value, dict):
                raise _Misfit
            read = _fast_reader(item)
            return {key: read(one) for key, one in value.items()}

        return table
    target = _named(kind)
    if isinstance(target, type) and not issubclass(target, Record):
        return _fast_reader("str")  # a choice: a reply's value is kept, known or not
    if not (isinstance(target, type) and issubclass(target, Record)):
        raise TypeError(f"wire: unknown field type {kind!r}")
    return _record_reader(target)


_CHECKS = {"str": "type(v) is not str", "int": "type(v) is not int",
           "bool": "type(v) is not bool", "float": "type(v) not in (int, float)", "Any": ""}


def _check(kind: str) -> str | None:
    """Python code that is true when ``v`` is not a ``kind``, for the scalar kinds; else None."""
    if kind.endswith(" | None"):
        inner = _check(kind[:-7])
        return None if inner is None else (f"v is not None and ({inner})" if inner else "")
    return _CHECKS.get(kind)


def _record_reader(target: type) -> Any:
    """A generated function that reads one record: scalars checked inline, the rest by
    their own readers (what attrs and dataclasses do to write ``__init__``)."""
    namespace: dict[str, Any] = {"Misfit": _Misfit, "new": object.__new__, "target": target}
    lines = ["def record(value):",
             "    if type(value) is not dict:",
             "        raise Misfit",
             "    made = new(target)"]
    for index, field in enumerate(target.__fields__):
        name, check = field.name, _check(field.type)
        lines += [f"    if {name!r} in value:", f"        v = value[{name!r}]"]
        if check is None:
            namespace[f"read_{index}"] = _fast_reader(field.type)
            lines.append(f"        made.{name} = read_{index}(v)")
        else:
            if check:
                lines.append(f"        if {check}:\n            raise Misfit")
            lines.append(f"        made.{name} = v")
        lines.append("    else:")
        if field.required:
            lines.append("        raise Misfit")
        else:
            namespace[f"default_{index}"] = field.default
            copy = ".copy()" if isinstance(field.default, (list, dict)) else ""
            lines.append(f"        made.{name} = default_{index}{copy}")
    lines.append("    return made")
    exec("\n".join(lines) + "\n", namespace)
    return namespace["record"]
