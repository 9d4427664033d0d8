"""Retention: removing evidence older than a configured age, and saying so.

The only deletion of evidence there is. Per agent it removes the oldest records whose
``observed_at`` is before the cutoff, always up to and including a seal, so what
remains starts right after a signed point; it writes a ``retention_log`` row with the
removed record ids and hash range, from which verification of the remaining chain
starts. The append-only trigger is lifted only inside this transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, and_, delete, select, text

from tillsyn.agent.storetrust import RETENTION
from tillsyn.store import chain
from tillsyn.store.schema import agents, evidence, evidence_controls, retention_log
from tillsyn.store.storekey import StoreKey


@dataclass(frozen=True)
class Removed:
    agent_id: str
    from_seq: int
    to_seq: int
    count: int


def apply(
    connection: Connection,
    key: StoreKey,
    cutoff: datetime,
    actor: str,
    now: datetime | None = None,
) -> list[Removed]:
    """Remove sealed evidence observed before ``cutoff``; the caller holds the transaction.

    Each removal is an entry of the store's signed chain, and the ``retention_log`` row
    (where the remaining chain resumes) is derived from it: a row forged in the
    database, without the store's key, is caught by ``tillsyn verify --store``.
    """
    moment = now or datetime.now(UTC)
    limit = cutoff.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    done: list[Removed] = []
    # Ingest locks an agent's row, then the store chain; so does this, for every agent
    # first and in one order, so that the two never wait for each other in a circle. A
    # batch stored beside retention sees the chain before the removal or after it.
    agent_ids = list(
        connection.execute(
            select(agents.c.agent_id).order_by(agents.c.agent_id).with_for_update()
        ).scalars()
    )
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL tillsyn.retention = 'on'"))
    else:
        connection.execute(text("INSERT OR REPLACE INTO store_flags VALUES ('retention', 1)"))
    try:
        for agent_id in agent_ids:
            last_seal = connection.execute(
                select(evidence.c.seq)
                .where(
                    (evidence.c.agent_id == agent_id)
                    & (evidence.c.kind == "seal")
                    & (evidence.c.observed_at < limit)
                )
                .order_by(evidence.c.seq.desc())
                .limit(1)
            ).scalar()
            if last_seal is None:
                continue
            rows = connection.execute(
                select(evidence.c.seq, evidence.c.record_id, evidence.c.hash)
                .where((evidence.c.agent_id == agent_id) & (evidence.c.seq <= last_seal))
                .order_by(evidence.c.seq)
            ).all()
            if not rows:
                continue
            data = {
                "cutoff": limit,
                "from_seq": rows[0].seq,
                "to_seq": rows[-1].seq,
                "first_hash": rows[0].hash,
                "last_hash": rows[-1].hash,
                "removed": len(rows),
                "record_ids": [r.record_id for r in rows],
                "actor": actor,
            }
            entry = chain.append(connection, key, RETENTION, data, agent_id=agent_id, now=moment)
            connection.execute(
                retention_log.insert().values(
                    at=entry["at"],
                    agent_id=agent_id,
                    chain_seq=entry["seq"],
                    **{**data, "record_ids": json.dumps(data["record_ids"])},
                )
            )
            connection.execute(
                delete(evidence_controls).where(
                    and_(
                        evidence_controls.c.agent_id == agent_id,
                        evidence_controls.c.seq <= last_seal,
                    )
                )
            )
            connection.execute(
                delete(evidence).where(
                    and_(evidence.c.agent_id == agent_id, evidence.c.seq <= last_seal)
                )
            )
            done.append(Removed(agent_id, rows[0].seq, rows[-1].seq, len(rows)))
    finally:
        if connection.dialect.name != "postgresql":
            connection.execute(text("DELETE FROM store_flags WHERE name = 'retention'"))
    return done


def chain_start(connection: Connection, agent_id: str) -> tuple[int, str] | None:
    """Where the stored chain of ``agent_id`` resumes after retention, if anything was removed."""
    row = connection.execute(
        select(retention_log.c.to_seq, retention_log.c.last_hash)
        .where(retention_log.c.agent_id == agent_id)
        .order_by(retention_log.c.to_seq.desc())
        .limit(1)
    ).first()
    return (int(row.to_seq), str(row.last_hash)) if row else None
