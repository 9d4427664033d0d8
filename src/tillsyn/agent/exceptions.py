"""Approved exceptions (accepted risk): a failing result stays ``fail`` but is marked.

NIS2 (EU) 2024/2690 points 6.6.2 and 6.10.3 ask for a documented, substantiated
decision when a patch or vulnerability is left unaddressed; ISO/IEC 27001 asks the
same of risk treatment. An exception names the check, a pattern over the resource
(``type:id``, shell-style wildcards), who approved it, why, and when it expires. It
never turns a ``fail`` into a ``pass``: KPIs count accepted risk apart. After its
expiry date it stops applying by itself, and the evidence says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from fnmatch import fnmatchcase
from typing import Any


@dataclass(frozen=True)
class RiskException:
    id: str
    check: str
    resource: str  # pattern over "type:id", e.g. "filesystem:/srv/scratch" or "package:*"
    justification: str
    approved_by: str
    expires: date

    def __post_init__(self) -> None:
        if not self.justification.strip() or not self.approved_by.strip():
            raise ValueError(f"exception {self.id}: justification and approved_by are required")

    def matches(self, check_id: str, resource: dict[str, Any]) -> bool:
        return check_id == self.check and fnmatchcase(
            f"{resource['type']}:{resource['id']}", self.resource
        )

    def evidence(self, today: date) -> dict[str, Any]:
        return {
            "id": self.id,
            "approved_by": self.approved_by,
            "justification": self.justification,
            "expires": self.expires.isoformat(),
            "expired": today > self.expires,
        }


def apply(exceptions: tuple[RiskException, ...], record: dict[str, Any], now: datetime) -> None:
    """Mark a failing result record with the first exception that matches it."""
    if record.get("status") != "fail":
        return
    for exception in exceptions:
        if exception.matches(record["check"]["id"], record["resource"]):
            marker = exception.evidence(now.date())
            record["exception"] = marker
            if marker["expired"]:
                record["message"] += (
                    f" [exception {exception.id} expired on "
                    f"{marker['expires']} and no longer applies]"
                )
            else:
                record["message"] += (
                    f" [accepted risk: exception {exception.id}, approved by "
                    f"{exception.approved_by}, until {marker['expires']}]"
                )
            return


def is_excepted(record: dict[str, Any]) -> bool:
    """A fail covered by an exception that is still in force."""
    marker = record.get("exception")
    if not marker:
        return False
    return not marker["expired"]
