"""Runner isolation: a check that raises, hangs, prints or yields garbage hurts only itself."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tillsyn.agent import runner
from tillsyn.agent.registry import LoadedCheck
from tillsyn.checks._result import TARGET, Resource, Result, Status
from tillsyn.checks._spec import SPEC_ATTRIBUTE, CheckSpec, NoParams, check
from tillsyn.collectors._facts import FactCache
from tillsyn.collectors.errors import FactPermissionDenied

RELEASE = threading.Event()


def _loaded(function: Any) -> LoadedCheck:
    spec: CheckSpec = getattr(function, SPEC_ATTRIBUTE)
    return LoadedCheck(spec, 60.0, "test", builtin=False)


def _spec(name: str) -> Any:
    return check(
        id=f"host.test.{name}",
        title=name,
        target="host",
        controls=("iso27001:2022/A.8.1",),
        severity="low",
        interval="1h",
        remediation="none",
    )


@_spec("good")
def good(facts: Any, p: NoParams) -> Iterator[Result]:
    yield Result.passed(Resource("thing", "a"), "a is fine", observed={"n": 1})


@_spec("raises")
def raises(facts: Any, p: NoParams) -> Iterator[Result]:
    yield Result.passed(Resource("thing", "a"), "never kept")
    raise KeyError("boom")


@_spec("denied")
def denied(facts: Any, p: NoParams) -> Iterator[Result]:
    raise FactPermissionDenied("host.shadow", "/etc/shadow", "permission denied")
    yield  # pragma: no cover


@_spec("hangs")
def hangs(facts: Any, p: NoParams) -> Iterator[Result]:
    RELEASE.wait(30)
    yield Result.passed(TARGET, "too late")


@_spec("garbage")
def garbage(facts: Any, p: NoParams) -> Iterator[Any]:
    print("GARBAGE ON STDOUT {not json")  # the misbehaviour under test
    yield "not a result"


@_spec("empty")
def empty(facts: Any, p: NoParams) -> Iterator[Result]:
    return
    yield  # pragma: no cover


@_spec("leaks")
def leaks(facts: Any, p: NoParams) -> Iterator[Result]:
    yield Result.failed(
        TARGET, "found", observed={"shadow": ["root:$6$saltsalt$abcdefghijklmnop:19000"]}
    )


@_spec("unserialisable")
def unserialisable(facts: Any, p: NoParams) -> Iterator[Result]:
    yield Result.passed(TARGET, "holds an object", observed={"x": object()})


def _run(*functions: Any, timeout: float = 5.0, concurrency: int = 4) -> dict[str, runner.Outcome]:
    jobs = [runner.Job(_loaded(f), NoParams(), timeout) for f in functions]
    return {
        o.check.spec.id: o for o in runner.run(jobs, lambda kind: object(), concurrency=concurrency)
    }


def test_each_failure_becomes_an_error_for_that_check_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    RELEASE.clear()
    try:
        started = time.monotonic()
        outcomes = _run(
            good,
            raises,
            denied,
            hangs,
            garbage,
            empty,
            unserialisable,
            leaks,
            timeout=1.0,
            concurrency=2,
        )
        elapsed = time.monotonic() - started
    finally:
        RELEASE.set()
    assert elapsed < 20  # the hung check did not block the run (generous: not a benchmark)
    assert [r.status for r in outcomes["host.test.good"].results] == [Status.PASS]
    reasons = {cid: o.results[0].message for cid, o in outcomes.items() if cid != "host.test.good"}
    assert all(
        o.results[0].status == Status.ERROR and len(o.results) == 1
        for cid, o in outcomes.items()
        if cid != "host.test.good"
    )
    assert reasons["host.test.raises"] == "check host.test.raises v1 raised KeyError: 'boom'"
    assert reasons["host.test.denied"] == (
        "could not read host.shadow: permission denied (/etc/shadow)"
    )
    assert (
        reasons["host.test.hangs"] == "check host.test.hangs did not finish within its 1s timeout"
    )
    assert "yielded str 'not a result' as result 0, not a Result" in reasons["host.test.garbage"]
    assert "produced no results" in reasons["host.test.empty"]
    assert "observed.x: object is not JSON evidence" in reasons["host.test.unserialisable"]
    assert reasons["host.test.leaks"] == (
        "check host.test.leaks tried to keep secret material as evidence: "
        "result 0.observed.shadow[0] holds a password hash"
    )
    captured = capsys.readouterr()
    assert "GARBAGE" not in captured.out  # diverted to the log, never into --json output
    assert sys.stdout is not None


def test_collector_that_cannot_be_built_is_an_error_result() -> None:
    def no_collector(kind: str) -> Any:
        raise RuntimeError("no aws target is configured")

    jobs = [runner.Job(_loaded(good), NoParams(), 5.0)]
    (outcome,) = list(runner.run(jobs, no_collector))
    assert outcome.results[0].status == Status.ERROR
    assert "no aws target is configured" in outcome.results[0].message


def test_a_fact_is_read_once_even_when_checks_ask_at_the_same_moment() -> None:
    cache = FactCache()
    reads: list[int] = []

    def slow_read() -> int:
        reads.append(1)
        time.sleep(0.05)
        return 42

    threads = [threading.Thread(target=lambda: cache.get(("k",), slow_read)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reads == [1]
    assert cache.get(("k",), slow_read) == 42


def test_a_failed_fact_is_cached_as_a_failure() -> None:
    cache = FactCache()
    attempts: list[int] = []

    def failing() -> int:
        attempts.append(1)
        raise FactPermissionDenied("f", "/x", "permission denied")

    for _ in range(3):
        with pytest.raises(FactPermissionDenied):
            cache.get(("f",), failing)
    assert attempts == [1]
