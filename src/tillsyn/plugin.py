"""The public API for check authors: everything a check module needs, nothing more.

A third-party package ships a module of checks and names it in the ``tillsyn.checks``
entry-point group; the agent finds it there exactly as it finds the built-in ones.
A test guards ``__all__`` so this surface only changes on purpose.
"""

from tillsyn.checks._format import age_text
from tillsyn.checks._result import TARGET, Resource, Result, Status
from tillsyn.checks._spec import CheckSpec, NoParams, Severity, check
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactError,
    FactParseError,
    FactPermissionDenied,
    FactTimeout,
    FactUnavailable,
)

__all__ = [
    "TARGET",
    "CheckSpec",
    "FactCommandFailed",
    "FactError",
    "FactParseError",
    "FactPermissionDenied",
    "FactTimeout",
    "FactUnavailable",
    "NoParams",
    "Resource",
    "Result",
    "Severity",
    "Status",
    "age_text",
    "check",
]
