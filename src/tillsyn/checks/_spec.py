"""The metadata a check declares, and the decorator that attaches it.

The decorator only attaches a frozen :class:`CheckSpec` to the function: no global
registration and no I/O, so importing a check module has no side effects. The agent's
registry finds the specs, validates them once and reports every problem by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from tillsyn.checks._result import Result


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


#: Target kinds a check may declare; each has one collector in ``tillsyn.collectors``.
TARGET_KINDS = ("host", "aws", "kubernetes")

SPEC_ATTRIBUTE = "__tillsyn_check__"

CheckFunction = Callable[[Any, Any], Iterable[Result]]
F = TypeVar("F", bound=Callable[..., Iterable[Result]])


@dataclass(frozen=True)
class NoParams:
    """Parameters of a check that takes none."""


@dataclass(frozen=True)
class CheckSpec:
    """Everything a check says about itself besides its code.

    ``interval`` is written the way config writes it (``"1h"``); ``params`` is a frozen
    dataclass whose fields all have defaults: types and defaults live in one place and
    the config loader validates overrides against it before any check runs.
    """

    id: str
    title: str
    family: str
    target: str
    controls: tuple[str, ...]
    severity: str  # one of Severity; validated by the registry, which names a bad value
    interval: str
    remediation: str
    params: type = NoParams
    facts: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    version: str = "1"
    function: CheckFunction | None = None

    @property
    def function_name(self) -> str:
        return getattr(self.function, "__name__", "?")

    @property
    def module(self) -> str:
        return getattr(self.function, "__module__", "?")


def check(
    *,
    id: str,  # "id" shadows the builtin on purpose: it is the field's name everywhere
    title: str,
    target: str,
    controls: Iterable[str],
    severity: str,
    interval: str,
    remediation: str,
    params: type = NoParams,
    facts: Iterable[str] = (),
    needs: Iterable[str] = (),
    version: str = "1",
) -> Callable[[F], F]:
    """Attach a :class:`CheckSpec` to a check function; the family is the id's middle part."""

    parts = id.split(".")
    family = parts[1] if len(parts) == 3 else ""

    def attach(function: F) -> F:
        spec = CheckSpec(
            id=id,
            title=title,
            family=family,
            target=target,
            controls=tuple(controls),
            severity=severity,
            interval=interval,
            remediation=remediation,
            params=params,
            facts=tuple(facts),
            needs=tuple(needs),
            version=version,
            function=function,
        )
        setattr(function, SPEC_ATTRIBUTE, spec)
        return function

    return attach


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | int | float) -> float:
    """Seconds from "90s", "15m", "1h", "7d", "2w", or a bare number of seconds."""
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like 30s, 15m, 1h or 7d, got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not match:
            raise ValueError(f"expected a duration like 30s, 15m, 1h or 7d, got {text!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return seconds
