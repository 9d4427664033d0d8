"""Time-sortable unique ids (UUID version 7, RFC 9562) for records and runs.

Ids sort by creation time as strings, so the store can page by id; within one process
they also strictly increase, even for many ids in the same millisecond.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0


def uuid7() -> str:
    """A new UUIDv7 string, strictly greater than the previous one from this process."""
    global _last
    with _lock:
        millis = time.time_ns() // 1_000_000
        rand_a = int.from_bytes(os.urandom(2), "big") & 0x0FFF
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
        if value <= _last:  # same millisecond (or a clock step back): count up from the last
            value = _last + 1
        _last = value
    return str(uuid.UUID(int=value))
