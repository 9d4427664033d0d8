"""Running checks in isolation: bounded concurrency, a wall-clock budget each, no escapes.

Each check runs in its own daemon thread, at most ``concurrency`` at once. Whatever a
check does wrong becomes an ``error`` result for that check alone: raising (a
:class:`FactError` or anything else), overrunning its timeout (the runner stops waiting
and frees the slot; the thread is abandoned and its late answer discarded), yielding
something that is not a :class:`Result`, yielding nothing, or evidence JSON cannot
hold. Text a check writes to stdout is diverted to the log so it cannot corrupt
``--json`` output. Daemon threads (not a thread pool) are used because a pool joins
its workers at exit: one hung check would hang the whole agent.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from tillsyn.agent.evidence import find_secret, jsonable
from tillsyn.agent.registry import LoadedCheck
from tillsyn.checks._result import TARGET, Resource, Result, Status
from tillsyn.collectors.errors import FactError

log = logging.getLogger("tillsyn.runner")


@dataclass(frozen=True)
class Job:
    """One check to run, with its validated parameters and its budget."""

    check: LoadedCheck
    params: Any
    timeout: float


@dataclass
class Outcome:
    """What one check produced, ready to become evidence records."""

    check: LoadedCheck
    results: list[Result]
    started_at: datetime
    duration: float
    error: str | None = None  # set when the check as a whole failed


def _error(reason: str) -> list[Result]:
    return [Result(Status.ERROR, TARGET, reason)]


def _execute(job: Job, facts: Any) -> tuple[list[Result], str | None]:
    """Call the check and validate what it yields; never raises."""
    spec = job.check.spec
    if spec.function is None:
        return _error(f"check {spec.id} has no function"), "no function"
    try:
        produced = list(spec.function(facts, job.params))
    except FactError as exc:
        reason = f"could not read {exc.fact}: {exc.reason} ({exc.call})"
        return _error(reason), reason
    except Exception as exc:
        reason = f"check {spec.id} v{spec.version} raised {type(exc).__name__}: {exc}"
        log.debug("check %s raised", spec.id, exc_info=True)
        return _error(reason), reason
    if not produced:
        reason = f"check {spec.id} produced no results (it must say pass, fail or not_applicable)"
        return _error(reason), reason
    checked: list[Result] = []
    for index, item in enumerate(produced):
        if not isinstance(item, Result):
            reason = (
                f"check {spec.id} yielded {type(item).__name__} "
                f"{str(item)[:60]!r} as result {index}, not a Result"
            )
            return _error(reason), reason
        try:
            checked.append(
                Result(
                    Status(item.status),
                    Resource(str(item.resource.type), str(item.resource.id), item.resource.region),
                    str(item.message),
                    jsonable(item.observed, "observed"),
                    jsonable(item.expected, "expected"),
                )
            )
        except (TypeError, ValueError, AttributeError) as exc:
            reason = f"check {spec.id} result {index} is not valid evidence: {exc}"
            return _error(reason), reason
        last = checked[-1]
        secret = find_secret(
            {"message": last.message, "observed": last.observed, "expected": last.expected},
            f"result {index}",
        )
        if secret:  # the offending text itself is never repeated, not even in the reason
            reason = f"check {spec.id} tried to keep secret material as evidence: {secret}"
            return _error(reason), reason
    return checked, None


class _StdoutGuard:
    """Stands in for sys.stdout during a run: check threads' writes go to the log."""

    def __init__(self, real: TextIO, check_threads: dict[int, str]) -> None:
        self._real = real
        self._check_threads = check_threads

    def write(self, text: str) -> int:
        check_id = self._check_threads.get(threading.get_ident())
        if check_id is None:
            return self._real.write(text)
        if text.strip():
            log.warning("check %s wrote to stdout (diverted): %.200r", check_id, text)
        return len(text)

    def flush(self) -> None:
        self._real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextmanager
def _guard_stdout(check_threads: dict[int, str]) -> Iterator[None]:
    real = sys.stdout
    sys.stdout = _StdoutGuard(real, check_threads)
    try:
        yield
    finally:
        sys.stdout = real


def run(
    jobs: Sequence[Job],
    facts_for: Callable[[str], Any],
    *,
    concurrency: int = 4,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[Outcome]:
    """Run ``jobs``, yielding each :class:`Outcome` as its check finishes (or times out).

    ``facts_for(kind)`` gives the collector for a target kind; building it may fail
    (a missing SDK, bad credentials), which becomes an ``error`` for the checks of
    that kind.
    """
    pending = list(jobs)
    finished: queue.Queue[tuple[int, list[Result], str | None, float]] = queue.Queue()
    running: dict[int, tuple[Job, datetime, float]] = {}  # index -> job, start, deadline
    check_threads: dict[int, str] = {}
    next_index = 0

    def work(index: int, job: Job, facts: Any) -> None:
        check_threads[threading.get_ident()] = job.check.spec.id
        started = time.monotonic()
        results, error = _execute(job, facts)
        finished.put((index, results, error, time.monotonic() - started))

    with _guard_stdout(check_threads):
        while pending or running:
            while pending and len(running) < concurrency:
                job = pending.pop(0)
                index, next_index = next_index, next_index + 1
                started_at = clock()
                try:
                    facts = facts_for(job.check.spec.target)
                except Exception as exc:  # noqa: BLE001 - a target we cannot reach is a result
                    reason = f"cannot collect facts for target {job.check.spec.target}: {exc}"
                    yield Outcome(job.check, _error(reason), started_at, 0.0, reason)
                    continue
                running[index] = (job, started_at, time.monotonic() + job.timeout)
                threading.Thread(
                    target=work,
                    args=(index, job, facts),
                    daemon=True,
                    name=f"check:{job.check.spec.id}",
                ).start()
            if not running:
                continue
            wait = max(0.0, min(deadline for _, _, deadline in running.values()) - time.monotonic())
            try:
                index, results, error, duration = finished.get(timeout=wait)
            except queue.Empty:
                now = time.monotonic()
                for index, (job, started_at, deadline) in list(running.items()):
                    if deadline <= now:
                        del running[index]
                        reason = (
                            f"check {job.check.spec.id} did not finish within its "
                            f"{job.timeout:g}s timeout"
                        )
                        yield Outcome(job.check, _error(reason), started_at, job.timeout, reason)
                continue
            if index not in running:  # finished after its timeout was already reported
                continue
            job, started_at, _ = running.pop(index)
            yield Outcome(job.check, results, started_at, duration, error)
