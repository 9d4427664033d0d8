"""Bounding what unauthenticated failures cost: a limit per client address, and audit
rows aggregated per address and minute.

Anyone who can reach the port can send requests with a bad token. Each used to cost an
audit row as large as what they sent, without limit, so the disk could be filled from
outside. Here, per worker process and per client address: the first
``record_first`` failures of a minute are audited one by one, the rest of that minute
are counted and audited as one ``auth_failed_repeated`` row when the minute is over;
past ``limit`` failures in a minute the address gets 429 with ``Retry-After`` until
the minute ends. A request with a valid token is never limited, so an agent behind the
same NAT as an attacker keeps working.

The table of addresses is bounded too (``max_clients``); beyond it, failures of new
addresses share one bucket, ``other``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

WINDOW_SECONDS = 60


@dataclass
class _Window:
    start: float
    failures: int = 0
    unrecorded: int = 0
    paths: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Decision:
    """What to do with one failure: audit it on its own, and whether to answer 429."""

    record: bool
    limited: bool
    retry_after: int


@dataclass(frozen=True)
class Aggregate:
    """Failures of one address in one minute that were counted, not audited one by one."""

    client: str
    window_start: float
    failures: int
    paths: tuple[str, ...]


class FailureThrottle:
    def __init__(self, limit: int = 30, record_first: int = 5, max_clients: int = 10_000) -> None:
        self.limit, self.record_first, self.max_clients = limit, record_first, max_clients
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._next_due = float("inf")  # when the oldest open minute ends: due() is O(1) before

    def is_limited(self, client: str, now: float) -> int:
        """Seconds until ``client`` may fail again (0: not limited)."""
        with self._lock:
            window = self._windows.get(self._bucket(client))
            if window is None or now - window.start >= WINDOW_SECONDS:
                return 0
            if window.failures < self.limit:
                return 0
            return max(1, int(window.start + WINDOW_SECONDS - now) + 1)

    def failure(self, client: str, path: str, now: float) -> Decision:
        """Note one failed authentication from ``client``."""
        with self._lock:
            bucket = self._bucket(client)
            window = self._windows.get(bucket)
            if window is None or now - window.start >= WINDOW_SECONDS:
                window = self._windows[bucket] = _Window(start=now)
                self._next_due = min(self._next_due, now + WINDOW_SECONDS)
            window.failures += 1
            record = window.failures <= self.record_first
            if not record:
                window.unrecorded += 1
                if len(window.paths) < 8:
                    window.paths.add(path[:64])
            limited = window.failures > self.limit
            retry = max(1, int(window.start + WINDOW_SECONDS - now) + 1) if limited else 0
            return Decision(record, limited, retry)

    def due(self, now: float) -> list[Aggregate]:
        """Aggregates of minutes that are over, removed from the table (audit them)."""
        done: list[Aggregate] = []
        if now < self._next_due:
            return done
        with self._lock:
            self._next_due = float("inf")
            for bucket, window in list(self._windows.items()):
                if now - window.start < WINDOW_SECONDS:
                    self._next_due = min(self._next_due, window.start + WINDOW_SECONDS)
                    continue
                del self._windows[bucket]
                if window.unrecorded:
                    done.append(
                        Aggregate(
                            bucket, window.start, window.unrecorded, tuple(sorted(window.paths))
                        )
                    )
        return done

    def _bucket(self, client: str) -> str:
        if client in self._windows or len(self._windows) < self.max_clients:
            return client
        return "other"
