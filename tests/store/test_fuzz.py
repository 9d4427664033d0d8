"""Property-based fuzzing of the served OpenAPI document: it must tell the truth.

schemathesis reads the schema a real ``tillsyn serve`` process (two workers) serves and
generates valid and invalid requests for every operation, sent over a socket as each kind
of caller: an admin, an auditor, an enrolled agent and someone with no token, on a
store with rows in every table (see ``_seeded``). Every response is checked against the
document: no 5xx; its status code, content type, body and headers documented; invalid
input refused. The store is served with its default limit on failed authentications, so
the caller without a token meets 401 first and then 429 with Retry-After; both checked.

A short stateful run follows the one link schemathesis infers (the control list to one
control's detail), so details of real controls are checked too; so are a few requests
generation would hardly make (the stored records' control, with subjects; no control).

Bounded so that CI stays short: a few examples per operation, generation mode and
caller, derandomized, no example database, no shrinking (failures are collected, not
raised), and one report of every mismatch at the end.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.process import ServedStore, enrolled_chain, push, run_retention, served_store
from tillsyn.store import tokens

EXAMPLES = 8  # per operation, generation mode and caller (one, when there is nothing to vary)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
#: The agent's invalid pushes raise alerts and the anonymous caller's failures are audited
#: before the admin and the auditor read them.
CALLERS = ("agent", "anonymous", "admin", "auditor")
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
#: Operations with a query or a body, which negative generation must be able to break.
NEGATABLE = {
    "POST /api/v1/enroll",
    "POST /api/v1/evidence",
    "GET /api/v1/evidence",
    "GET /api/v1/controls",
    "POST /api/v1/tokens",
    "GET /api/v1/store/chain",
    "GET /api/v1/audit",
}

#: Paths generation is unlikely to find: the control the stored records name, the heading
#: it rolls up to, and no control at all (404).
CONTROLS = ("iso27001:2022/A.8.13", "iso27001:2022/A.8", "")


class Run:
    """Where the requests of one store go, and what came back."""

    def __init__(self, store: ServedStore, session: requests.Session) -> None:
        self.base, self.session = store.base, session
        self.failures: dict[tuple[str, str, str], str] = {}
        self.sent: Counter[str] = Counter()
        self.statuses: dict[str, Counter[int]] = {caller: Counter() for caller in CALLERS}

    def check(self, caller: str, headers: dict[str, str], case: Any) -> Any:
        """Send ``case`` as ``caller``; note each way the response disagrees with the schema."""
        response = case.call(base_url=self.base, session=self.session, headers=headers, timeout=30)
        self.sent[caller] += 1
        self.statuses[caller][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                where = f"{case.operation.label} -> {response.status_code}"
                text = " ".join(str(failure).split())[:400]
                self.failures.setdefault((caller, where, failure.title), text)
        return response

    def report(self) -> str:
        return "\n".join(
            f"- as {caller}: {where}: {text}"
            for (caller, where, _), text in sorted(self.failures.items())
        )


def _seeded(store: ServedStore, tmp_path: Path) -> dict[str, dict[str, str]]:
    """The headers of each caller, on a store with something in every table: the agent
    caller's chain, and a retired agent's, sealed three days ago and removed by retention
    (so the retention log, an agent's ``resumes_at`` and the audit log have rows)."""
    credentials = {}
    for name, sealed_at in (("retired", datetime.now(UTC) - timedelta(days=3)), ("agent", None)):
        credential, records = enrolled_chain(
            store, tmp_path / name, runs=2, per_run=3, sealed_at=sealed_at
        )
        pushed = push(store, credential, records)
        assert pushed.status_code == 200, pushed.text
        credentials[name] = credential
    removed = run_retention(store, "1d")
    assert removed.returncode == 0 and "8 records" in removed.stdout, removed.stderr
    bearer = {
        "admin": store.token(tokens.Role.ADMIN),
        "auditor": store.token(tokens.Role.AUDITOR),
        "agent": credentials["agent"],
    }
    return {
        caller: {"Authorization": f"Bearer {bearer[caller]}"} if caller in bearer else {}
        for caller in CALLERS
    }


def _per_operation(
    run: Run, operation: Any, mode: GenerationMode, caller: str, headers: dict[str, str]
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @BOUNDED
    def exercise(case: Any) -> None:
        run.check(caller, headers, case)

    exercise()


def _stateful(run: Run, schema: Any, caller: str, headers: dict[str, str]) -> None:
    """Sequences along the links schemathesis infers, each response checked like the rest."""

    class Workflow(schema.as_state_machine()):
        def call(self, case: Any, **kwargs: Any) -> Any:
            return run.check(caller, headers, case)

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            pass  # run.check has

    Workflow.run(settings=settings(BOUNDED, max_examples=3, stateful_step_count=4))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_served_document_agrees_with_every_response(backend: str, tmp_path: Path) -> None:
    unsatisfiable: set[str] = set()
    with served_store(backend, tmp_path) as store, requests.Session() as session:
        run = Run(store, session)
        callers = _seeded(store, tmp_path)
        schema = schemathesis.openapi.from_url(f"{store.base}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15  # every route is in the served document
        for caller, operation, mode in itertools.product(CALLERS, operations, GenerationMode):
            try:
                _per_operation(run, operation, mode, caller, callers[caller])
            except Unsatisfiable:  # nothing in this operation can be made invalid
                assert mode is GenerationMode.NEGATIVE
                unsatisfiable.add(operation.label)
        detail = schema["/api/v1/controls/{control_id}"]["GET"]
        for caller in ("admin", "auditor"):
            _stateful(run, schema, caller, callers[caller])
            for control in CONTROLS:
                case = detail.Case(path_parameters={"control_id": control})
                answer = run.check(caller, callers[caller], case)
                assert answer.status_code == (200 if control else 404), answer.text
                assert not control or answer.json()["subjects"], answer.text

    assert not run.failures, (
        f"{len(run.failures)} disagreement(s) between the served schema and its responses "
        f"({dict(run.sent)} requests):\n{run.report()}"
    )
    assert not NEGATABLE & unsatisfiable  # invalid input was sent where there is any
    for caller in CALLERS:  # every caller was fuzzed across the whole document
        assert run.sent[caller] >= 2 * len(operations), run.sent
    assert run.statuses["admin"][200] > len(operations), run.statuses  # handlers were reached
    assert {401, 429} <= run.statuses["anonymous"].keys(), run.statuses
    assert {200, 403} <= run.statuses["agent"].keys(), run.statuses
