"""One pass of checks against this host, recorded as a sealed evidence chain.

This is what ``tillsyn run`` does (and what the daemon will do per schedule tick):
build the jobs from config, run them, turn every result into an evidence record,
append each check's records as soon as it finishes (so a killed run keeps what it had
collected), and end with a seal. Disabled checks leave a ``skip`` record and checks
that failed to load leave an ``error`` record, so the evidence shows every hole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tillsyn import __version__
from tillsyn.agent import exceptions, recordschema, runner
from tillsyn.agent.config import Config
from tillsyn.agent.evidence import RESULT, SCHEMA, timestamp
from tillsyn.agent.identity import AgentIdentity
from tillsyn.agent.ids import uuid7
from tillsyn.agent.localstore import LocalEvidence, LocalStoreError
from tillsyn.agent.registry import LoadedCheck, LoadProblem, Registry
from tillsyn.checks._result import TARGET, Resource, Result, Status

log = logging.getLogger("tillsyn.session")

RecordSink = Callable[[dict[str, Any]], None]


@dataclass
class RunSummary:
    run_id: str
    records: list[dict[str, Any]] = field(default_factory=list)
    seal: dict[str, Any] | None = None
    store_error: str | None = None  # evidence could not be written; results still shown

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r["status"] == status)

    @property
    def failed(self) -> bool:
        """Anything failed or errored, not counting fails covered by a valid exception."""
        return bool(self.store_error) or any(
            r["status"] in (Status.FAIL, Status.ERROR) and not exceptions.is_excepted(r)
            for r in self.records
        )


class _Recorder:
    """Builds records for one run and appends them; a store failure keeps the results."""

    def __init__(
        self,
        store: LocalEvidence | None,
        identity: AgentIdentity,
        run_id: str,
        target: dict[str, str],
        summary: RunSummary,
        sink: RecordSink | None,
        risk_exceptions: tuple[exceptions.RiskException, ...] = (),
    ) -> None:
        self.store, self.identity, self.run_id = store, identity, run_id
        self.target, self.summary, self.sink = target, summary, sink
        self.exceptions = risk_exceptions

    def body(
        self,
        check: dict[str, Any],
        controls: Iterable[str],
        severity: str,
        result: Result,
        at: datetime,
        duration: float,
    ) -> dict[str, Any]:
        record = {
            "schema": SCHEMA,
            "kind": RESULT,
            "record_id": uuid7(),
            "run_id": self.run_id,
            "agent_id": self.identity.agent_id,
            "agent_version": __version__,
            "target": self.target,
            "check": check,
            "controls": list(controls),
            "status": str(result.status),
            "severity": severity,
            "resource": result.resource.as_dict(),
            "message": result.message,
            "observed": result.observed,
            "expected": result.expected,
            "observed_at": timestamp(at),
            "duration_seconds": round(duration, 6),
        }
        exceptions.apply(self.exceptions, record, at)
        return recordschema.fit(record)

    def append(self, bodies: list[dict[str, Any]]) -> None:
        records = bodies
        if self.store is not None and self.summary.store_error is None:
            try:
                records = self.store.append(bodies)
            except LocalStoreError as exc:
                self.summary.store_error = str(exc)
                log.error("evidence not stored: %s", exc)
        self.summary.records.extend(records)
        if self.sink:
            for record in records:
                self.sink(record)


def facts_factory(config: Config, memory: Any) -> Callable[[str], Any]:
    """One collector per target kind for this run, built when first asked for."""
    built: dict[str, Any] = {}

    def facts_for(kind: str) -> Any:
        if kind not in built:
            if kind != "host":
                raise RuntimeError(f"no {kind} target is configured in this version")
            from tillsyn.collectors.host import HostFacts

            built[kind] = HostFacts(
                command_timeout=config.agent.command_timeout,
                memory=memory,
                command_cache_ttl=config.agent.command_cache,
            )
        return built[kind]

    return facts_for


def _check_ref(spec: Any, interval: float) -> dict[str, Any]:
    """What a record says about its check; the interval lets readers tell stale evidence."""
    return {
        "id": spec.id,
        "version": spec.version,
        "family": spec.family,
        "title": spec.title,
        "interval_seconds": interval,
    }


def run_once(
    registry: Registry,
    config: Config,
    identity: AgentIdentity,
    store: LocalEvidence | None,
    facts_for: Callable[[str], Any],
    *,
    selected: list[LoadedCheck],
    include_problems: bool = True,
    sink: RecordSink | None = None,
) -> RunSummary:
    """Run ``selected`` checks once, record everything, seal. See the module docstring."""
    run_id = uuid7()
    summary = RunSummary(run_id)
    host = facts_for("host")
    ident = host.identity()
    recorder = _Recorder(
        store,
        identity,
        run_id,
        {"kind": "host", "id": ident.machine_id, "name": ident.hostname},
        summary,
        sink,
        config.exceptions,
    )
    now = datetime.now(UTC)
    if include_problems:
        for problem in registry.problems:
            recorder.append([_problem_body(recorder, problem, now)])
    jobs: list[runner.Job] = []
    for loaded in selected:
        settings = config.checks[loaded.spec.id]
        if not settings.enabled:
            skip = Result(Status.SKIP, TARGET, f"{loaded.spec.id} is disabled in the configuration")
            recorder.append(
                [
                    recorder.body(
                        _check_ref(loaded.spec, settings.interval),
                        loaded.spec.controls,
                        loaded.spec.severity,
                        skip,
                        now,
                        0.0,
                    )
                ]
            )
            continue
        jobs.append(runner.Job(loaded, settings.params, settings.timeout))

    for outcome in runner.run(jobs, facts_for, concurrency=config.agent.concurrency):
        spec = outcome.check.spec
        finished = outcome.started_at + timedelta(seconds=outcome.duration)
        recorder.append(
            [
                recorder.body(
                    _check_ref(spec, config.checks[spec.id].interval),
                    spec.controls,
                    spec.severity,
                    result,
                    finished,
                    outcome.duration,
                )
                for result in outcome.results
            ]
        )

    if store is not None and summary.store_error is None:
        try:
            summary.seal = store.seal(identity, run_id, __version__, uuid7())
        except LocalStoreError as exc:
            summary.store_error = str(exc)
        if summary.seal and sink:
            sink(summary.seal)
    return summary


def _problem_body(recorder: _Recorder, problem: LoadProblem, now: datetime) -> dict[str, Any]:
    result = Result(
        Status.ERROR,
        Resource("plugin", problem.source),
        f"{problem.name} could not be loaded: {problem.reason}",
    )
    check = {"id": problem.name, "version": "", "family": "", "title": "", "interval_seconds": 0}
    return recorder.body(check, (), "high", result, now, 0.0)
