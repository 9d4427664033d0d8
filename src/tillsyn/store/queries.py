"""Reading the store: evidence with filters and cursors, control status, agents.

Control status is the latest result per subject (agent, target, check, resource). A
subject whose newest evidence is older than twice its check's interval is ``stale``;
stale, error and fail all count against compliance: only a fresh pass counts for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, func, select, tuple_

from tillsyn.store.columns import DERIVED
from tillsyn.store.schema import agents, evidence, evidence_controls

STALE_FACTOR = 2


@dataclass(frozen=True)
class EvidenceFilter:
    #: a control and all its sub-points (canonical ids): a record on any of them matches
    controls: tuple[str, ...] = ()
    check: str | None = None
    agent: str | None = None
    target: str | None = None
    status: str | None = None
    since: str | None = None  # RFC 3339, on observed_at
    until: str | None = None


def _cursor(agent_id: str, seq: int) -> str:
    return f"{agent_id}.{seq}"


def _parse_cursor(cursor: str) -> tuple[str, int]:
    """(agent id, seq) from a cursor this module made; anything else is the caller's error
    (a seq past 2**53 would overflow the database's integer, not just miss)."""
    agent_id, _, seq = cursor.rpartition(".")
    if not agent_id or len(agent_id) > 64 or not (seq.isascii() and seq.isdigit()):
        raise ValueError(f"malformed cursor {cursor[:80]!r}: pass next_cursor as it was given")
    if len(seq) > 16 or int(seq) > 2**53:
        raise ValueError(f"cursor position out of range in {cursor[:80]!r}")
    return agent_id, int(seq)


def list_evidence(
    connection: Connection,
    flt: EvidenceFilter,
    *,
    limit: int,
    cursor: str | None,
    with_columns: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """Records matching ``flt`` in (agent, seq) order, at most ``limit``, and the next cursor.

    Each comes with the position it is stored at, which equals its own ``seq`` unless
    someone renumbered rows in the database: verification needs both to tell. With
    ``with_columns``, also the searchable columns and control rows as stored, for the
    verifier to compare with what it derives from the text itself.
    """
    query = select(*(evidence.c[name] for name in DERIVED), evidence.c.body)
    conditions = []
    if flt.controls:
        conditions.append(_mapped_to(flt.controls))
    for column, value in (
        (evidence.c.check_id, flt.check),
        (evidence.c.agent_id, flt.agent),
        (evidence.c.target_id, flt.target),
        (evidence.c.status, flt.status),
    ):
        if value:
            conditions.append(column == value)
    if flt.since:
        conditions.append(evidence.c.observed_at >= flt.since)
    if flt.until:
        conditions.append(evidence.c.observed_at < flt.until)
    if cursor:
        agent_id, seq = _parse_cursor(cursor)
        conditions.append(
            (evidence.c.agent_id > agent_id)
            | ((evidence.c.agent_id == agent_id) & (evidence.c.seq > seq))
        )
    rows = connection.execute(
        query.where(*conditions).order_by(evidence.c.agent_id, evidence.c.seq).limit(limit + 1)
    ).all()
    page = rows[:limit]
    following = _cursor(page[-1].agent_id, page[-1].seq) if len(rows) > limit else None
    found = [{"position": row.seq, "record": json.loads(row.body)} for row in page]
    if with_columns and page:
        stored: dict[tuple[str, int], list[str]] = {}
        for agent_id, seq, control in connection.execute(
            select(
                evidence_controls.c.agent_id, evidence_controls.c.seq, evidence_controls.c.control
            ).where(
                tuple_(evidence_controls.c.agent_id, evidence_controls.c.seq).in_(
                    [(row.agent_id, row.seq) for row in page]
                )
            )
        ):
            stored.setdefault((agent_id, seq), []).append(control)
        for found_controls in stored.values():
            # code-point order, as columns.controls sorts: a database collation may differ
            found_controls.sort()
        for item, row in zip(found, page, strict=True):
            item["columns"] = {name: row._mapping[name] for name in DERIVED}
            item["controls"] = stored.get((row.agent_id, row.seq), [])
    return found, following


def _mapped_to(controls: tuple[str, ...]) -> Any:
    """Records mapped to any of ``controls`` (the store keeps each record's own ids;
    the caller expands a heading into its sub-points, so roll-up costs no rows)."""
    return exists().where(
        evidence_controls.c.agent_id == evidence.c.agent_id,
        evidence_controls.c.seq == evidence.c.seq,
        evidence_controls.c.control.in_(controls),
    )


def latest_per_subject(
    connection: Connection, controls: tuple[str, ...] = (), now: datetime | None = None
) -> list[dict[str, Any]]:
    """Newest result per (agent, target, check, resource), with ``state`` fresh or stale."""
    moment = now or datetime.now(UTC)
    newest = select(
        evidence.c.agent_id,
        evidence.c.check_id,
        evidence.c.target_id,
        evidence.c.resource,
        func.max(evidence.c.seq).label("seq"),
    ).where(evidence.c.kind == "result")
    if controls:
        newest = newest.where(_mapped_to(controls))
    newest_sub = newest.group_by(
        evidence.c.agent_id, evidence.c.check_id, evidence.c.target_id, evidence.c.resource
    ).subquery()
    rows = connection.execute(
        select(evidence.c.body).join(
            newest_sub,
            and_(newest_sub.c.agent_id == evidence.c.agent_id, newest_sub.c.seq == evidence.c.seq),
        )
    ).all()
    subjects = []
    for row in rows:
        record = json.loads(row.body)
        interval = float(record["check"].get("interval_seconds") or 0)
        try:
            observed = datetime.fromisoformat(record["observed_at"].replace("Z", "+00:00"))
            age = moment - observed
        except (ValueError, OverflowError):  # stored before the schema bounded years
            age = timedelta.max
        stale = interval > 0 and age > timedelta(seconds=STALE_FACTOR * interval)
        subjects.append(
            {
                "agent_id": record["agent_id"],
                "target": record["target"],
                "check": record["check"]["id"],
                "resource": record["resource"],
                "controls": record["controls"],
                "status": record["status"],
                "state": "stale" if stale else "fresh",
                "observed_at": record["observed_at"],
                "message": record["message"],
                "excepted": bool(record.get("exception")) and not record["exception"]["expired"],
            }
        )
    return sorted(subjects, key=lambda s: (s["agent_id"], s["check"], str(s["resource"])))


def compliance(subjects: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and the ratio of subjects that are a fresh pass (not_applicable/skip left out)."""
    counted = [s for s in subjects if s["status"] not in ("not_applicable", "skip")]
    compliant = [s for s in counted if s["status"] == "pass" and s["state"] == "fresh"]
    return {
        "subject_count": len(subjects),
        "counted": len(counted),
        "compliant": len(compliant),
        "stale": sum(1 for s in subjects if s["state"] == "stale"),
        "failing": sum(1 for s in counted if s["status"] == "fail"),
        "errors": sum(1 for s in counted if s["status"] == "error"),
        "ratio": (len(compliant) / len(counted)) if counted else None,
    }


def list_agents(connection: Connection) -> list[dict[str, Any]]:
    """Every enrolled agent, its chain head, how many records the store holds, and where its
    stored chain resumes after retention (``resumes_at``: seq and hash, or None)."""
    from tillsyn.store.retention import chain_start

    counts: dict[str, int] = dict(
        connection.execute(
            select(evidence.c.agent_id, func.count()).group_by(evidence.c.agent_id)
        ).all()
    )
    out = []
    for row in connection.execute(select(agents).order_by(agents.c.agent_id)):
        start = chain_start(connection, row.agent_id)
        out.append(
            {
                "agent_id": row.agent_id,
                "hostname": row.hostname,
                "key_id": row.key_id,
                "public_key": row.public_key,
                "enrolled_at": row.enrolled_at,
                "last_seen_at": row.last_seen_at,
                "agent_version": row.agent_version,
                "head_seq": row.head_seq,
                "head_hash": row.head_hash,
                "records": int(counts.get(row.agent_id, 0)),
                "resumes_at": {"seq": start[0], "hash": start[1]} if start else None,
            }
        )
    return out
