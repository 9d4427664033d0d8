"""Appending to and reading the store's signed chain (the format: :mod:`tillsyn.agent.storetrust`).

Appending locks the one-row ``store_chain_head`` inside the caller's write transaction,
so the entry commits or rolls back with what it vouches for (the stored batch, the
enrolled agent, the removed records), and entries from concurrent transactions and
worker processes are numbered one after another. Take the lock last in a transaction:
it serialises everyone who writes, so it should be held for the commit only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from tillsyn.agent.evidence import b64, canonical, record_hash, timestamp
from tillsyn.agent.storetrust import (
    ENROLMENT,
    RECEIPT,
    RETENTION,
    SCHEMA,
    signed_message,
)
from tillsyn.store.schema import agents, audit_log, retention_log, store_chain, store_chain_head
from tillsyn.store.storekey import StoreKey


def lock(connection: Connection) -> Any:
    """Lock the chain's head row for this transaction; returns it (seq, hash)."""
    return connection.execute(
        select(store_chain_head.c.seq, store_chain_head.c.hash)
        .where(store_chain_head.c.id == 1)
        .with_for_update()
    ).one()


def append(
    connection: Connection,
    key: StoreKey,
    kind: str,
    data: Mapping[str, Any],
    *,
    agent_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Sign ``data`` as the next entry of the chain; returns the entry as stored."""
    return append_many(connection, key, kind, [(agent_id, data, now)])[0]


def append_many(
    connection: Connection,
    key: StoreKey,
    kind: str,
    items: Sequence[tuple[str | None, Mapping[str, Any], datetime | None]],
    head: Any = None,
) -> list[dict[str, Any]]:
    """Sign each (agent id, data, time) of ``items`` as the next entries of the chain, in
    order, under one lock of its head: one INSERT and one head UPDATE for them all.
    ``head`` is what :func:`lock` returned, when the caller took the lock already."""
    if not items:
        return []
    head = head or lock(connection)
    seq, prev = int(head.seq), str(head.hash)
    made: list[dict[str, Any]] = []
    for agent_id, data, now in items:
        seq += 1
        entry: dict[str, Any] = {
            "schema": SCHEMA,
            "seq": seq,
            "prev_hash": prev,
            "kind": kind,
            "at": timestamp(now or datetime.now(UTC)),
            "agent_id": agent_id,
            "data": dict(data),
            "key_id": key.key_id,
        }
        entry["signature"] = b64(key.sign(signed_message(entry)))
        entry["hash"] = prev = record_hash(entry)
        made.append(entry)
    connection.execute(
        store_chain.insert(),
        [
            {
                "seq": entry["seq"],
                "kind": kind,
                "agent_id": entry["agent_id"],
                "at": entry["at"],
                "hash": entry["hash"],
                "body": canonical(entry).decode("utf-8"),
            }
            for entry in made
        ],
    )
    connection.execute(
        store_chain_head.update().where(store_chain_head.c.id == 1).values(seq=seq, hash=prev)
    )
    return made


def newest_of(
    connection: Connection, kind: str, agent_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The newest entry of ``kind`` about each of ``agent_ids`` that has one, by agent."""
    newest = (
        select(store_chain.c.agent_id, func.max(store_chain.c.seq).label("seq"))
        .where((store_chain.c.kind == kind) & store_chain.c.agent_id.in_(agent_ids))
        .group_by(store_chain.c.agent_id)
        .subquery()
    )
    rows = connection.execute(
        select(store_chain.c.agent_id, store_chain.c.body).join(
            newest, newest.c.seq == store_chain.c.seq
        )
    ).all()
    return {row.agent_id: json.loads(row.body) for row in rows}


def signing_key_id(connection: Connection) -> str | None:
    """The key the chain's newest entry was signed with (None: the chain is empty)."""
    body = connection.execute(
        select(store_chain.c.body).order_by(store_chain.c.seq.desc()).limit(1)
    ).scalar()
    return str(json.loads(body)["key_id"]) if body else None


def entries(
    connection: Connection, *, after: int = 0, limit: int = 1000, agent_id: str | None = None
) -> list[dict[str, Any]]:
    """Entries after ``after`` in order, at most ``limit``; only one agent's when given."""
    query = select(store_chain.c.body).where(store_chain.c.seq > after)
    if agent_id is not None:
        query = query.where(store_chain.c.agent_id == agent_id)
    rows = connection.execute(query.order_by(store_chain.c.seq).limit(limit)).scalars()
    return [json.loads(body) for body in rows]


def latest(connection: Connection, kind: str, agent_id: str) -> dict[str, Any] | None:
    """The newest entry of ``kind`` about ``agent_id`` (its newest receipt, its enrolment)."""
    body = connection.execute(
        select(store_chain.c.body)
        .where((store_chain.c.agent_id == agent_id) & (store_chain.c.kind == kind))
        .order_by(store_chain.c.seq.desc())
        .limit(1)
    ).scalar()
    return json.loads(body) if body else None


def enrolment_data(row: Any, adopted: bool = False) -> dict[str, Any]:
    """What an enrolment entry vouches for: the agent's id, key and name."""
    data = {
        "public_key": row.public_key,
        "key_id": row.key_id,
        "hostname": row.hostname,
        "enrolled_at": row.enrolled_at,
    }
    return {**data, "adopted": True} if adopted else data


def receipt_data(
    head_seq: int, head_hash: str, agent_version: str | None, stored: int
) -> dict[str, Any]:
    """What a receipt vouches for: the store holds this agent's chain up to this head."""
    return {
        "head_seq": head_seq,
        "head_hash": head_hash,
        "agent_version": agent_version,
        "stored": stored,
    }


def adopt_unsigned(connection: Connection, key: StoreKey) -> int:
    """Vouch, once, for what a store made before it had a key holds (schema < 3).

    Agents enrolled then get an enrolment entry marked ``adopted`` (and a receipt for the
    head they had reached), retention rows and audit rows an entry naming their row id.
    What they vouch for is the database as it stood when the key arrived; after that,
    the store signs everything when it happens. Returns how many entries were made.
    """
    made = 0
    for row in connection.execute(select(agents).order_by(agents.c.agent_id)).all():
        if latest(connection, ENROLMENT, row.agent_id) is None:
            append(connection, key, ENROLMENT, enrolment_data(row, True), agent_id=row.agent_id)
            made += 1
        if row.head_seq and latest(connection, RECEIPT, row.agent_id) is None:
            data = receipt_data(row.head_seq, row.head_hash, row.agent_version, 0)
            append(connection, key, RECEIPT, {**data, "adopted": True}, agent_id=row.agent_id)
            made += 1
    adopted_rows = _adopted_row_ids(connection)
    for row in connection.execute(
        select(retention_log).where(retention_log.c.chain_seq.is_(None))
    ).all():
        if ("retention", row.id) not in adopted_rows:
            data = {**retention_data(row), "row_id": row.id, "adopted": True}
            append(connection, key, RETENTION, data, agent_id=row.agent_id)
            made += 1
    for row in connection.execute(select(audit_log).where(audit_log.c.chain_seq.is_(None))).all():
        if ("audit", row.id) not in adopted_rows:
            data = {**audit_data(row), "row_id": row.id, "adopted": True}
            append(connection, key, "audit", data)
            made += 1
    return made


def _adopted_row_ids(connection: Connection) -> set[tuple[str, int]]:
    found = set()
    for body in connection.execute(
        select(store_chain.c.body).where(store_chain.c.kind.in_(("retention", "audit")))
    ).scalars():
        entry = json.loads(body)
        if "row_id" in entry["data"]:
            found.add((entry["kind"], int(entry["data"]["row_id"])))
    return found


def retention_data(row: Any) -> dict[str, Any]:
    """What a retention entry vouches for: which of an agent's records were removed."""
    return {
        "cutoff": row.cutoff,
        "from_seq": int(row.from_seq),
        "to_seq": int(row.to_seq),
        "first_hash": row.first_hash,
        "last_hash": row.last_hash,
        "removed": int(row.removed),
        "record_ids": json.loads(row.record_ids),
        "actor": row.actor,
    }


def audit_data(row: Any) -> dict[str, Any]:
    """What an audit entry vouches for: who did what, with the (bounded) detail."""
    return {"actor": row.actor, "action": row.action, "detail": json.loads(row.detail)}
