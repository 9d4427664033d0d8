"""The store's own audit trail: authentication failures, refused actions, admin actions.

Each event is an entry of the store's signed chain (so a removed or altered row is
caught by ``tillsyn verify --store``) and a row of ``audit_log`` derived from it, for
queries. Written in a transaction of its own, so a refused request (whose transaction
is rolled back) still leaves its trace; never inside another write transaction, which
on SQLite would wait for itself.

What a client sent is recorded bounded: every text value at most
:data:`MAX_VALUE_BYTES` bytes, so a 4 MB header costs a row of a few hundred bytes.
Floods of unauthenticated failures are aggregated per address and minute by
:mod:`tillsyn.store.throttle` before they get here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from tillsyn.agent.storetrust import AUDIT
from tillsyn.store import chain
from tillsyn.store.database import write_transaction
from tillsyn.store.schema import audit_log
from tillsyn.store.storekey import StoreKey

MAX_VALUE_BYTES = 256


def bounded(value: Any) -> Any:
    """``value`` with every string cut to :data:`MAX_VALUE_BYTES` bytes of UTF-8."""
    if isinstance(value, str):
        raw = value.encode("utf-8", "replace")
        if len(raw) <= MAX_VALUE_BYTES:
            return value
        return raw[: MAX_VALUE_BYTES - 3].decode("utf-8", "ignore") + "..."
    if isinstance(value, dict):
        return {bounded(str(k)): bounded(v) for k, v in list(value.items())[:32]}
    if isinstance(value, list | tuple):
        return [bounded(v) for v in value[:32]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return bounded(str(value))


def record(
    engine: Engine,
    key: StoreKey,
    actor: str,
    action: str,
    now: datetime | None = None,
    **detail: Any,
) -> None:
    with write_transaction(engine) as connection:
        append(connection, key, actor, action, now=now, **detail)


def append(
    connection: Any,
    key: StoreKey,
    actor: str,
    action: str,
    now: datetime | None = None,
    **detail: Any,
) -> None:
    """Audit inside the caller's write transaction (for actions that commit with it)."""
    data = {"actor": bounded(actor), "action": bounded(action)[:64], "detail": bounded(detail)}
    entry = chain.append(connection, key, AUDIT, data, now=now)
    connection.execute(
        audit_log.insert().values(
            at=entry["at"],
            actor=data["actor"],
            action=data["action"],
            detail=json.dumps(data["detail"], sort_keys=True),
            chain_seq=entry["seq"],
        )
    )
