"""What a check returns: one :class:`Result` per evaluated resource.

The statuses are deliberately five, so that "could not look" (``error``) is never
confused with "looked and it is fine" (``pass``), and "does not apply here"
(``not_applicable``) is said with a reason instead of being implied by silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    NOT_APPLICABLE = "not_applicable"


#: Statuses that count against a control. ``error`` is never read as compliant.
FAILING_STATUSES = frozenset({Status.FAIL, Status.ERROR})


@dataclass(frozen=True)
class Resource:
    """The thing a result is about: a filesystem, a backup source, a user, a bucket."""

    type: str
    id: str
    region: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "id": self.id}
        if self.region is not None:
            out["region"] = self.region
        return out


#: The resource a result is about when it concerns the target as a whole.
TARGET = Resource("target", "self")


@dataclass(frozen=True)
class Result:
    """One verdict on one resource, with the evidence that supports it.

    ``observed`` and ``expected`` are JSON-compatible values (datetimes are allowed
    and written as RFC 3339 UTC); they are the evidence itself and must never hold
    secrets (key material, password hashes, tokens).
    """

    status: Status
    resource: Resource
    message: str
    observed: Any = None
    expected: Any = None

    @classmethod
    def passed(
        cls, resource: Resource, message: str, *, observed: Any = None, expected: Any = None
    ) -> Result:
        return cls(Status.PASS, resource, message, observed, expected)

    @classmethod
    def failed(
        cls, resource: Resource, message: str, *, observed: Any = None, expected: Any = None
    ) -> Result:
        return cls(Status.FAIL, resource, message, observed, expected)

    @classmethod
    def errored(
        cls, resource: Resource, message: str, *, observed: Any = None, expected: Any = None
    ) -> Result:
        return cls(Status.ERROR, resource, message, observed, expected)

    @classmethod
    def not_applicable(
        cls, resource: Resource, message: str, *, observed: Any = None, expected: Any = None
    ) -> Result:
        return cls(Status.NOT_APPLICABLE, resource, message, observed, expected)

    @classmethod
    def skipped(cls, resource: Resource, message: str) -> Result:
        return cls(Status.SKIP, resource, message)

    @classmethod
    def judge(
        cls,
        ok: bool,
        resource: Resource,
        message: str,
        *,
        observed: Any = None,
        expected: Any = None,
    ) -> Result:
        """``pass`` when ``ok`` else ``fail``: for checks whose verdict is one comparison."""
        return cls(Status.PASS if ok else Status.FAIL, resource, message, observed, expected)
