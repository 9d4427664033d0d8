"""Building typed values (dataclasses of simple types) from parsed YAML, strictly.

The check parameter dataclasses are the single place where types and defaults are
written; this module validates config against them before any check runs: unknown
keys, wrong types and failed ``__post_init__`` rules are all reported with their path.
Supported: bool, int, float, str, :class:`Duration`, ``Literal``, ``X | None``,
``tuple[X, ...]``, ``list[X]`` and nested frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import date
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from tillsyn.checks._spec import parse_duration

Path_ = tuple[str | int, ...]


class Duration(float):
    """Seconds, written in config as ``30s``, ``15m``, ``1h`` or ``7d``."""


@dataclasses.dataclass(frozen=True)
class Issue:
    path: Path_
    message: str


class TypedError(Exception):
    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(i.message for i in issues))


def _name(hint: Any) -> str:
    if hint in (int, float, str, bool):
        return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[hint]
    if hint is Duration:
        return "a duration like 30s, 15m, 1h or 7d"
    if hint is date:
        return "a date like 2027-03-31"
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if get_origin(hint) in (tuple, list):
        return "a list"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return str(hint)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def build(hint: Any, value: Any, path: Path_, issues: list[Issue]) -> Any:
    """``value`` as ``hint``; problems are appended to ``issues`` and None is returned."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(get_args(hint)):
            return None
        if len(options) != 1:
            raise TypeError(f"{hint}: only 'X | None' unions can be configured")
        return build(options[0], value, path, issues)
    if hint is Duration:
        try:
            return Duration(parse_duration(value))
        except ValueError as exc:
            issues.append(Issue(path, str(exc)))
            return None
    if hint is date:
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is Literal:
        if value in get_args(hint):
            return value
    elif origin in (tuple, list):
        if isinstance(value, list):
            item_hint = get_args(hint)[0]
            items = [build(item_hint, item, (*path, i), issues) for i, item in enumerate(value)]
            return tuple(items) if origin is tuple else items
    elif dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, dict):
            return build_dataclass(hint, value, path, issues)
    else:
        raise TypeError(f"{hint} is not a type config can hold")
    issues.append(Issue(path, f"expected {_name(hint)}, got {_show(value)}"))
    return None


def build_dataclass(cls: type, values: dict[str, Any], path: Path_, issues: list[Issue]) -> Any:
    """An instance of ``cls`` from a mapping; unknown keys and missing ones are issues."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    before = len(issues)
    for key, value in values.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            issues.append(Issue((*path, key), f"unknown key {key!r} (known: {known})"))
            continue
        kwargs[key] = build(hints[key], value, (*path, key), issues)
    for name, spec in fields.items():
        if (
            name not in kwargs
            and spec.default is dataclasses.MISSING
            and spec.default_factory is dataclasses.MISSING
        ):
            issues.append(Issue((*path, name), f"missing required key {name!r}"))
    if len(issues) > before:
        return None
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        issues.append(Issue(path, str(exc)))
        return None


def as_plain(instance: Any) -> Any:
    """A params instance back as plain data (for ``tillsyn checks`` and evidence)."""
    if dataclasses.is_dataclass(instance) and not isinstance(instance, type):
        return {f.name: as_plain(getattr(instance, f.name)) for f in dataclasses.fields(instance)}
    if isinstance(instance, tuple | list):
        return [as_plain(i) for i in instance]
    return instance


def describe(cls: type) -> dict[str, dict[str, Any]]:
    """Each parameter of a params dataclass: its type (in words) and its default."""
    hints = get_type_hints(cls)
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(cls):
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        out[f.name] = {"type": _type_text(hints[f.name]), "default": as_plain(default)}
    return out


def _type_text(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (tuple, list):
        return f"list of {_type_text(get_args(hint)[0])}"
    if origin is Literal:
        return "|".join(str(a) for a in get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_text(a) for a in get_args(hint))
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


__all__ = ["Duration", "Issue", "TypedError", "as_plain", "build", "build_dataclass", "describe"]
