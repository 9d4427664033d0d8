"""The local evidence store: an append-only SQLite file holding the agent's chain.

WAL mode lets readers (``tillsyn verify``, a status command) work while a run writes.
Every append happens inside ``BEGIN IMMEDIATE``, which takes SQLite's write lock
before the chain head is read, so two processes appending at once still build one
linear chain. Triggers refuse UPDATE and DELETE on records: the only way to change
evidence is to go around SQLite, and :mod:`tillsyn.agent.verify` catches that.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tillsyn.agent import identity as identity_module
from tillsyn.agent.evidence import (
    GENESIS_HASH,
    SCHEMA,
    SEAL,
    b64,
    canonical,
    record_hash,
    seal_message,
    timestamp,
)
from tillsyn.agent.identity import AgentIdentity
from tillsyn.agent.verify import Report, verify_chain

DB_FILE = "evidence.sqlite3"
HEAD_FILE = "chain-head"
SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    run_id TEXT NOT NULL,
    check_id TEXT,
    status TEXT,
    observed_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_check ON records (check_id, seq);
-- How far each store has acknowledged the chain (the outbox is everything after it).
CREATE TABLE IF NOT EXISTS delivery (
    store TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL, acked_at TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'evidence is append-only: records cannot be updated'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'evidence is append-only: records cannot be deleted'); END;
"""


class LocalStoreError(Exception):
    """The evidence file cannot be opened or written (path, permissions, full disk)."""


class LocalEvidence:
    """One agent's evidence chain in ``<state_dir>/evidence.sqlite3``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / DB_FILE
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # Idempotent DDL: a second process creating the same file at once is harmless.
            self._db.executescript(_DDL)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except (OSError, sqlite3.Error) as exc:
            raise LocalStoreError(f"cannot open evidence store {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _head(self) -> tuple[int, str]:
        row = self._db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)

    def _insert(self, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO records (seq, record_id, kind, run_id, check_id, status, observed_at,"
            " prev_hash, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record["seq"],
                record["record_id"],
                record["kind"],
                record["run_id"],
                record.get("check", {}).get("id"),
                record.get("status"),
                record.get("observed_at") or record["sealed_at"],
                record["prev_hash"],
                record["hash"],
                canonical(record).decode("utf-8"),
            ),
        )

    def append(self, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Chain and store records (without seq/prev_hash/hash); returns them complete."""
        done: list[dict[str, Any]] = []
        try:
            with self._write():
                seq, prev = self._head()
                for body in bodies:
                    seq += 1
                    record = dict(body, seq=seq, prev_hash=prev)
                    record["hash"] = prev = record_hash(record)
                    self._insert(record)
                    done.append(record)
        except sqlite3.Error as exc:
            raise LocalStoreError(f"cannot append to {self.path}: {exc}") from exc
        return done

    def seal(
        self,
        identity: AgentIdentity,
        run_id: str,
        agent_version: str,
        record_id: str,
        now: datetime | None = None,
    ) -> dict[str, Any] | None:
        """Sign the current chain head; None when the head is already a seal (nothing new)."""
        try:
            with self._write():
                head_seq, head_hash = self._head()
                last_kind = self._db.execute(
                    "SELECT kind FROM records WHERE seq = ?", (head_seq,)
                ).fetchone()
                if last_kind is None or last_kind[0] == SEAL:
                    return None
                seal: dict[str, Any] = {
                    "schema": SCHEMA,
                    "kind": SEAL,
                    "record_id": record_id,
                    "agent_id": identity.agent_id,
                    "agent_version": agent_version,
                    "run_id": run_id,
                    "sealed_at": timestamp(now or datetime.now(UTC)),
                    "head_seq": head_seq,
                    "head_hash": head_hash,
                    "key_id": identity.key_id,
                    "public_key": b64(identity.public_key_raw),
                    "seq": head_seq + 1,
                    "prev_hash": head_hash,
                }
                seal["signature"] = b64(identity.sign(seal_message(seal)))
                seal["hash"] = record_hash(seal)
                self._insert(seal)
        except sqlite3.Error as exc:
            raise LocalStoreError(f"cannot append a seal to {self.path}: {exc}") from exc
        self._write_head_file(seal["seq"], seal["hash"])
        return seal

    def _write_head_file(self, seq: int, hash_: str) -> None:
        """Remember the newest seal outside the database, to notice a truncated chain."""
        path = self.state_dir / HEAD_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"seq": seq, "hash": hash_}) + "\n")
        temporary.replace(path)

    def sealed_head(self) -> tuple[int, str] | None:
        """The newest seal this agent remembers writing, if any."""
        try:
            data = json.loads((self.state_dir / HEAD_FILE).read_text())
            return int(data["seq"]), str(data["hash"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def rows(self) -> Iterator[tuple[int, str]]:
        """Every stored record as (seq column, body text), in chain order."""
        yield from self._db.execute("SELECT seq, body FROM records ORDER BY seq")

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])

    # -- outbox -----------------------------------------------------------------------

    def acked(self, store: str) -> int:
        """The last chain position ``store`` acknowledged (0: nothing yet)."""
        row = self._db.execute(
            "SELECT acked_seq FROM delivery WHERE store = ?", (store,)
        ).fetchone()
        return int(row[0]) if row else 0

    def ack(self, store: str, seq: int, now: datetime | None = None) -> None:
        """Record that ``store`` holds everything up to ``seq`` (never moves backwards)."""
        moment = (now or datetime.now(UTC)).isoformat()
        with self._write():
            self._db.execute(
                "INSERT INTO delivery VALUES (?, ?, ?) ON CONFLICT(store) DO UPDATE SET "
                "acked_seq = max(acked_seq, excluded.acked_seq), acked_at = excluded.acked_at",
                (store, seq, moment),
            )

    def pending(self, store: str, limit: int) -> list[dict[str, Any]]:
        """Undelivered records up to the newest seal, whole sealed runs, about ``limit`` of them.

        A batch always ends at a seal, so the store can verify every record it takes;
        records after the newest seal wait for the next run's seal.
        """
        after = self.acked(store)
        seals = [
            int(row[0])
            for row in self._db.execute(
                "SELECT seq FROM records WHERE kind = 'seal' AND seq > ? ORDER BY seq", (after,)
            )
        ]
        if not seals:
            return []
        end = seals[0]
        for seal in seals[1:]:
            if seal - after > limit:
                break
            end = seal
        return [
            json.loads(body)
            for (body,) in self._db.execute(
                "SELECT body FROM records WHERE seq > ? AND seq <= ? ORDER BY seq", (after, end)
            )
        ]

    def undelivered(self, store: str) -> int:
        """How many records ``store`` has not acknowledged yet (sealed or not)."""
        head, _ = self._head()
        return max(0, head - self.acked(store))


def verify_local(state_dir: Path) -> Report:
    """Verify the chain in ``state_dir`` against this agent's own key and remembered seal."""
    identity = identity_module.load(state_dir)
    store = LocalEvidence(state_dir)
    try:
        return verify_chain(
            store.rows(),
            trusted_keys={identity.key_id: identity.public_key_raw},
            agent_id=identity.agent_id,
            sealed_head=store.sealed_head(),
        )
    finally:
        store.close()
