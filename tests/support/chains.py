"""Building real evidence chains in a temporary state directory, and tampering with them.

Tampering goes around tillsyn the way an attacker would: straight into the SQLite
file, after dropping the append-only triggers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tillsyn.agent import identity as identity_module
from tillsyn.agent.evidence import canonical, record_hash
from tillsyn.agent.ids import uuid7
from tillsyn.agent.localstore import DB_FILE, LocalEvidence


def result_body(agent_id: str, run_id: str, n: int) -> dict[str, Any]:
    return {
        "schema": "tillsyn.evidence/v1",
        "kind": "result",
        "record_id": uuid7(),
        "run_id": run_id,
        "agent_id": agent_id,
        "agent_version": "test",
        "target": {"kind": "host", "id": "m", "name": "h"},
        "check": {
            "id": "host.backup.recency",
            "version": "1",
            "family": "backup",
            "title": "t",
            "interval_seconds": 0,  # never stale: these records carry a fixed time
        },
        "controls": ["iso27001:2022/A.8.13"],
        "status": "pass",
        "severity": "high",
        "resource": {"type": "backup_source", "id": f"src{n}"},
        "message": f"result {n}",
        "observed": {"n": n},
        "expected": None,
        "observed_at": "2026-11-23T12:00:00.000000Z",
        "duration_seconds": 0.1,
    }


def build_chain(
    state_dir: Path, runs: int = 2, per_run: int = 3, sealed_at: datetime | None = None
) -> None:
    """``runs`` runs of ``per_run`` result records, each run sealed (now, or at ``sealed_at``)."""
    identity = identity_module.load_or_create(state_dir)
    store = LocalEvidence(state_dir)
    try:
        for _ in range(runs):
            run_id = uuid7()
            store.append([result_body(identity.agent_id, run_id, n) for n in range(per_run)])
            store.seal(identity, run_id, "test", uuid7(), now=sealed_at)
    finally:
        store.close()


def tamper(state_dir: Path, *statements: str) -> None:
    db = sqlite3.connect(state_dir / DB_FILE, isolation_level=None)
    try:
        db.execute("DROP TRIGGER records_no_update")
        db.execute("DROP TRIGGER records_no_delete")
        for statement in statements:
            db.execute(statement)
    finally:
        db.close()


def rewrite(state_dir: Path, seq: int, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Replace record ``seq`` by a mutated copy with a recomputed hash (a careful forger)."""
    db = sqlite3.connect(state_dir / DB_FILE)
    try:
        record = json.loads(
            db.execute("SELECT body FROM records WHERE seq = ?", (seq,)).fetchone()[0]
        )
    finally:
        db.close()
    mutate(record)
    record["hash"] = record_hash(record)
    forged = canonical(record).decode().replace("'", "''")
    tamper(state_dir, f"UPDATE records SET body = '{forged}' WHERE seq = {seq}")
