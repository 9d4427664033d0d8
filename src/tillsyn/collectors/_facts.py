"""Per-instance memoisation of facts, failures included.

One collector object lives for one run against one target. Each fact is read once
per key (fact name and arguments) even when checks running in parallel ask for it at
the same moment: a per-key lock makes the second caller wait for the first. A failure
is cached like a value, so ten checks needing an unreadable fact cause one attempt and
ten ``error`` results with the same reason. Never a module-level cache: a daemon would
serve stale facts forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class _Entry:
    lock: threading.Lock
    done: bool = False
    value: Any = None
    error: BaseException | None = None
    collected_at: float = 0.0


class FactCache:
    """The store behind :func:`fact`; also answers when each fact was collected."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}
        self._guard = threading.Lock()
        self.reads = 0  # how many times a fact was actually read (for tests and benches)

    def get(self, key: Hashable, read: Callable[[], T]) -> T:
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(threading.Lock())
        with entry.lock:
            if not entry.done:
                self.reads += 1
                try:
                    entry.value = read()
                except Exception as exc:  # noqa: BLE001 - cached and re-raised to every caller
                    entry.error = exc
                entry.collected_at = time.time()
                entry.done = True
        if entry.error is not None:
            raise entry.error
        return entry.value  # type: ignore[no-any-return]


class HasFactCache:
    """Base for collectors: owns the cache :func:`fact` methods use."""

    def __init__(self) -> None:
        self.fact_cache = FactCache()


H = TypeVar("H", bound=HasFactCache)


def fact(name: str) -> Callable[[Callable[Concatenate[H, P], T]], Callable[Concatenate[H, P], T]]:
    """Memoise a collector method on its instance under ``name`` and its arguments."""

    def decorate(method: Callable[Concatenate[H, P], T]) -> Callable[Concatenate[H, P], T]:
        @wraps(method)
        def cached(self: H, *args: P.args, **kwargs: P.kwargs) -> T:
            key = (name, args, tuple(sorted(kwargs.items())))
            return self.fact_cache.get(key, lambda: method(self, *args, **kwargs))

        return cached  # type: ignore[return-value]  # wraps() keeps the signature

    return decorate
