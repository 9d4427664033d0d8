"""What the agent remembers between runs about what it observed (not evidence).

Some facts only mean something over time: how long has this security update been
pending (the package manager does not say), what did the access list look like the
first time (the drift baseline when none is approved), when did the last restore test
pass. They live in a small SQLite file beside the evidence, separate from it because
evidence is append-only and this is a working memory the agent updates.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: The file's name in the state directory, beside the evidence (but not evidence).
MEMORY_FILE = "memory.sqlite3"

_DDL = """
CREATE TABLE IF NOT EXISTS first_seen (
    namespace TEXT NOT NULL, key TEXT NOT NULL, seen_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key));
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, stored_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key));
"""


class FactMemoryError(Exception):
    """The memory file cannot be opened or written."""


class FactMemory:
    """First-seen times and small JSON values, per namespace; ``path=None`` keeps them in RAM."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(
                str(path) if path else ":memory:",
                timeout=30.0,
                isolation_level=None,
                check_same_thread=False,
            )
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_DDL)
        except (OSError, sqlite3.Error) as exc:
            raise FactMemoryError(f"cannot open agent memory {path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def first_seen(self, namespace: str, keys: Iterable[str], now: datetime) -> dict[str, datetime]:
        """When each key was first seen; new keys are recorded at ``now``.

        Keys of the namespace that are absent now are forgotten: an update that was
        installed and later shows up pending again starts a new clock.
        """
        wanted = sorted(set(keys))
        stamp = now.astimezone(UTC).isoformat()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                known = dict(
                    self._db.execute(
                        "SELECT key, seen_at FROM first_seen WHERE namespace = ?", (namespace,)
                    )
                )
                for key in set(known) - set(wanted):
                    self._db.execute(
                        "DELETE FROM first_seen WHERE namespace = ? AND key = ?", (namespace, key)
                    )
                for key in wanted:
                    if key not in known:
                        self._db.execute(
                            "INSERT INTO first_seen VALUES (?, ?, ?)", (namespace, key, stamp)
                        )
                        known[key] = stamp
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return {key: datetime.fromisoformat(known[key]) for key in wanted}

    def record_first_seen(self, namespace: str, key: str, when: datetime) -> None:
        """Remember ``key`` as first seen at ``when`` unless it is already known."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO first_seen VALUES (?, ?, ?)",
                (namespace, key, when.astimezone(UTC).isoformat()),
            )

    def get(self, namespace: str, key: str) -> tuple[Any, datetime] | None:
        """The value stored under ``key`` and when, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT value, stored_at FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        return (json.loads(row[0]), datetime.fromisoformat(row[1])) if row else None

    def put(self, namespace: str, key: str, value: Any, now: datetime) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?)",
                (
                    namespace,
                    key,
                    json.dumps(value, sort_keys=True),
                    now.astimezone(UTC).isoformat(),
                ),
            )
