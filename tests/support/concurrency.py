"""Many HTTP requests at once, from threads with connections of their own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import requests


def at_once(base: str, calls: list[Callable[[requests.Session], Any]]) -> list[Any]:
    """Run every call in its own thread on its own warmed-up connection, released together
    by a barrier, so the requests reach the server within a millisecond or so. Each
    answer is the call's return value, or the ``requests`` exception it raised."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def worker(index: int, call: Callable[[requests.Session], Any]) -> None:
        with requests.Session() as session:
            session.get(base + "/healthz", timeout=10)  # connection is open now
            barrier.wait(timeout=30)
            try:
                answers[index] = call(session)
            except requests.RequestException as exc:
                answers[index] = exc

    run_threads([partial(worker, i, c) for i, c in enumerate(calls)])
    return answers


def run_threads(jobs: list[Callable[[], None]], timeout: float = 600) -> None:
    """Run each job in a thread of its own and wait for all of them."""
    threads = [threading.Thread(target=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
