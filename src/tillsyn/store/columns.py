"""The searchable columns of a stored record, derived from its signed text, in one place.

The store files each record under columns that queries, ``/metrics`` and KPIs read
(status, kind, check, target, resource, time, controls). They are derived here at
ingest, and ``tillsyn verify --store`` derives them again from the stored text with
this same function and compares: a ``status`` edited from fail to pass in the
database, with the signed text left alone, is caught. No I/O and no database import,
so the verifier can use it too.
"""

from __future__ import annotations

from typing import Any

from tillsyn.agent.catalog import Catalog, UnknownControlError
from tillsyn.agent.evidence import RESULT

#: The derived columns of the ``evidence`` table, in its order (``body`` aside).
DERIVED = (
    "agent_id",
    "seq",
    "record_id",
    "kind",
    "run_id",
    "check_id",
    "status",
    "target_id",
    "resource",
    "observed_at",
    "hash",
)


def _text(value: str) -> str:
    """``value`` as a column can hold it: PostgreSQL text cannot hold NUL, which a signed
    free-text id may (the record's own text keeps it, escaped, as it was signed)."""
    return value.replace("\x00", "\ufffd")


def derive(record: dict[str, Any]) -> dict[str, Any]:
    """The values of :data:`DERIVED` for ``record`` (a schema-valid record), by name."""
    return dict(zip(DERIVED, values(record), strict=True))


def values(record: dict[str, Any]) -> tuple[Any, ...]:
    """The values of :data:`DERIVED` for ``record``, in that order (what ingest writes)."""
    check_id = status = target_id = resource = None
    if record["kind"] == RESULT:
        found = record["resource"]
        check_id = _text(str(record["check"].get("id")))
        status = record.get("status")
        target_id = _text(str(record["target"].get("id")))
        resource = _text(f"{found.get('type')}:{found.get('id')}")
    return (
        record["agent_id"],
        record["seq"],
        record["record_id"],
        record["kind"],
        record["run_id"],
        check_id,
        status,
        target_id,
        resource,
        str(record.get("observed_at") or record.get("sealed_at")),
        record["hash"],
    )


def controls(record: dict[str, Any], catalog: Catalog) -> list[str]:
    """The ``evidence_controls`` rows of ``record``: its control ids in canonical form,
    sorted (an id the catalog does not know is kept as written; it matches no query)."""
    if record["kind"] != RESULT:
        return []
    found: set[str] = set()
    for control in record["controls"]:
        text = str(control)
        try:
            found.add(catalog.parse(text))
        except UnknownControlError:
            found.add(text[:64])
    return sorted(found)
