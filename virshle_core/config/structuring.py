"""Strict structuring with cattrs: the core's converter, and the problems it finds,
each with its key path (``template.vm[0].vcpu: must be <= 1024``)."""

from __future__ import annotations

import re
from typing import Any, Callable

import attrs

from ..errors import ConfigError
from ..units import parse_size
from .schema import (
    MAX_COUNT, MAX_SECONDS, MAX_VCPU, MAX_VRAM, NODE_NAME_PATTERN, RENAMED, TEMPLATE_NAME_PATTERN,
    Bytes, NodeName, NonNegativeInt, NonNegativeSeconds, Percent, PositiveInt, RESERVE_MODES,
    Reserve, Seconds,
    TemplateName, TemplateNet, TemplateNetInFile, VcpuCount,
)



def _strict(kind: type, noun: str) -> Callable[[Any, type], Any]:
    def structure(value: Any, _type: type) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"must be {noun}")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"must be {noun}")
        if kind is str and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        if kind is float and not (value == value and abs(value) != float("inf")):
            raise ValueError("must be a finite number")
        return value

    return structure


def _checked(base: type, noun: str, check: Callable[[Any], str | None]) -> Callable:
    strict = _strict(base, noun)

    def structure(value: Any, _type: type) -> Any:
        value = strict(value, _type)
        problem = check(value)
        if problem:
            raise ValueError(problem)
        return value

    return structure


def _name_check(pattern: re.Pattern, what: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not pattern.fullmatch(value):
            return f'"{value}" is not a valid {what} (letters, digits, "-", "_", "." ; at most 63)'
        return None

    return check


def _strict_list(type_: Any, conv: Any) -> Callable[[Any, type], list]:
    from cattrs.cols import list_structure_factory

    structure_items = list_structure_factory(type_, conv)

    def structure(value: Any, _type: type) -> list:
        if not isinstance(value, list):
            raise TypeError("must be a list (write [[...]] tables)")
        return structure_items(value, _type)

    return structure


def _bytes(value: Any, _type: type) -> int:
    size = parse_size(value)
    if size > MAX_VRAM:
        raise ValueError(f"must be at most {MAX_VRAM // 1024**4} TiB")
    return size


_CONVERTER = None


def converter():
    """The strict cattrs converter: no unknown keys, no silent type coercion."""
    global _CONVERTER
    if _CONVERTER is None:
        import cattrs

        conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
        conv.register_structure_hook(str, _strict(str, "a string"))
        conv.register_structure_hook(int, _strict(int, "an integer"))
        conv.register_structure_hook(float, _strict(float, "a number"))
        conv.register_structure_hook(bool, _strict(bool, "true or false"))
        conv.register_structure_hook(
            PositiveInt, _checked(int, "an integer", lambda v: None if v >= 1 else "must be >= 1")
        )
        conv.register_structure_hook(
            NonNegativeInt, _checked(int, "an integer", lambda v: None if 0 <= v <= MAX_COUNT
                                     else ("must be >= 0" if v < 0 else f"must be <= {MAX_COUNT}"))
        )
        conv.register_structure_hook(
            VcpuCount, _checked(int, "an integer", lambda v: None if 1 <= v <= MAX_VCPU
                                else ("must be >= 1" if v < 1 else f"must be <= {MAX_VCPU}"))
        )
        conv.register_structure_hook(
            Percent, _checked(int, "an integer", lambda v: None if 1 <= v <= MAX_COUNT
                              else ("must be >= 1" if v < 1 else f"must be <= {MAX_COUNT}"))
        )
        conv.register_structure_hook(
            Seconds, _checked(float, "a number of seconds", lambda v: None if 0 < v <= MAX_SECONDS
                              else ("must be > 0" if v <= 0 else f"must be <= {MAX_SECONDS:g}"))
        )
        conv.register_structure_hook(
            NonNegativeSeconds, _checked(float, "a number of seconds", lambda v: None
                                         if 0 <= v <= MAX_SECONDS else
                                         ("must be >= 0" if v < 0 else f"must be <= {MAX_SECONDS:g}"))
        )
        conv.register_structure_hook(
            Reserve, _checked(str, "a string", lambda v: None if v in RESERVE_MODES else
                              "must be " + " or ".join(f'"{m}"' for m in RESERVE_MODES))
        )
        conv.register_structure_hook(Bytes, _bytes)
        conv.register_structure_hook_factory(
            lambda t: getattr(t, "__origin__", None) is list, lambda t: _strict_list(t, conv))
        conv.register_structure_hook(
            TemplateName, _checked(str, "a string", _name_check(TEMPLATE_NAME_PATTERN, "name"))
        )
        conv.register_structure_hook(
            NodeName, _checked(str, "a string", _name_check(NODE_NAME_PATTERN, "node name"))
        )
        conv.register_structure_hook(TemplateNet, lambda data, _: template_net(conv, data))
        _CONVERTER = conv
    return _CONVERTER


def template_net(conv: Any, data: Any) -> TemplateNet:
    """A net's one-key ``type`` table (``[template.vm.net.type.tap]``) as ``type`` and
    ``options``, so that a template's net and a VM's are spelled alike."""
    written = conv.structure(data, TemplateNetInFile)
    if len(written.type) != 1:
        raise ValueError("\x01type\x01must name exactly one net type, e.g. "
                         "[template.vm.net.type.tap]")
    [(type_, options)] = written.type.items()
    return TemplateNet(name=written.name, type=type_, options=options)


def structure(data: Any, cls: type, *, where: str = "") -> Any:
    """Structure ``data`` into ``cls`` strictly; raise ConfigError listing every problem.

    Used for the config file and for API request bodies alike. ``where``
    prefixes each key path (``"template.vm[0]"``).
    """
    try:
        return converter().structure(data, cls)
    except Exception as exc:  # cattrs raises ExceptionGroups of many kinds
        problems = _problems(exc, where)
        raise ConfigError("; ".join(f"{path}: {msg}" for path, msg in problems),
                          problems=[f"{p}: {m}" for p, m in problems]) from None


def _problems(exc: BaseException, where: str) -> list[tuple[str, str]]:
    import cattrs
    from cattrs.errors import ForbiddenExtraKeysError

    def describe(error: BaseException, type_: Any) -> str:
        if isinstance(error, ForbiddenExtraKeysError):
            return "\x00" + "\x00".join(sorted(error.extra_fields))
        if isinstance(error, KeyError):
            return "is required"
        message = str(error.args[0]) if getattr(error, "args", None) else ""
        if isinstance(error, (TypeError, ValueError)) and (
            message.startswith(("must", '"', "\x01"))
        ):
            return message
        return f"must be {_noun(type_)}"

    lines = cattrs.transform_error(exc, path="", format_exception=describe)
    problems: list[tuple[str, str]] = []
    for line in lines:
        message, _, path = line.rpartition(" @ ")
        path = re.sub(r"\['([^']*)'\]", r".\1", where + path).lstrip(".")  # type['tap'] → type.tap
        if message.startswith("\x01"):
            _, field, message = message.split("\x01", 2)
            path = f"{path}.{field}".lstrip(".")
        if message.startswith("\x00"):
            for key in message.strip("\x00").split("\x00"):
                full = f"{path}.{key}".lstrip(".")
                problems.append((full, f"unknown key; {RENAMED[full]}" if full in RENAMED
                                 else "unknown key"))
        else:
            problems.append((path or "(top level)", message))
    return problems


def _noun(type_: Any) -> str:
    origin = getattr(type_, "__origin__", None)
    if origin is list or type_ is list:
        return "a list (write [[...]] tables)"
    if origin is dict or type_ is dict or attrs.has(type_):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        type_, f"a {getattr(type_, '__name__', type_)}"
    )
