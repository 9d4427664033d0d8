"""The agent never writes a record the store's schema refuses.

Records from a real run on this machine, from every extreme a check can produce (a
message of a megabyte, a resource id of ten thousand characters, observations larger
than a record may be, a plugin that failed to load) are each validated with the
store's own ingest validator, after being chained and sealed exactly as a push sends
them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import tillsyn
from tillsyn.agent import recordschema
from tillsyn.agent.evidence import canonical, record_hash
from tillsyn.agent.identity import load_or_create
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.agent.registry import LoadProblem
from tillsyn.agent.session import RunSummary, _problem_body, _Recorder
from tillsyn.checks._result import Resource, Result, Status
from tillsyn.store import recordcheck

CHECK = {
    "id": "host.example.check",
    "version": "1",
    "family": "example",
    "title": "An example",
    "interval_seconds": 3600,
}


def _recorder(state: Path) -> tuple[_Recorder, LocalEvidence, RunSummary]:
    identity = load_or_create(state)
    store = LocalEvidence(state)
    summary = RunSummary("0190f3a0-0000-7000-8000-000000000000")
    recorder = _Recorder(
        store,
        identity,
        summary.run_id,
        {"kind": "host", "id": "a" * 32, "name": "laptop-17"},
        summary,
        None,
    )
    return recorder, store, summary


def _assert_store_accepts(records: list[dict[str, Any]]) -> None:
    for record in records:
        assert recordcheck.problem(record) is None, (recordcheck.problem(record), record)
        assert len(canonical(record)) <= recordschema.max_record_bytes()
        assert record["hash"] == record_hash(record)


def test_a_real_run_on_this_machine_writes_only_records_the_store_accepts(
    tmp_path: Path,
) -> None:
    done = tillsyn("run", "--json", state=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) > 10 and records[-1]["kind"] == "seal"
    _assert_store_accepts(records)


@pytest.mark.parametrize(
    ("result", "cut_field"),
    [
        (Result(Status.FAIL, Resource("file", "/etc/x"), "m" * 1_000_000), "message"),
        (Result(Status.FAIL, Resource("file", "/" + "d/" * 5_000), "long path"), "resource"),
        (
            Result(Status.ERROR, Resource("user", "ü" * 20_000, region="eu-north-1"), "unicode"),
            "resource",
        ),
    ],
)
def test_overlong_free_text_is_cut_with_a_marker_and_the_record_is_accepted(
    tmp_path: Path, result: Result, cut_field: str
) -> None:
    recorder, store, summary = _recorder(tmp_path)
    at = datetime.now(UTC)
    recorder.append([recorder.body(CHECK, ["iso27001:2022/A.8.1"], "high", result, at, 0.25)])
    store.seal(recorder.identity, summary.run_id, "test", "0190f3a0-0000-7000-8000-000000000001")
    record = summary.records[0]
    text = record["message"] if cut_field == "message" else record["resource"]["id"]
    assert text.endswith(recordschema.CUT_MARKER)
    _assert_store_accepts(summary.records)


def test_observations_larger_than_a_record_are_replaced_by_a_note_of_their_size(
    tmp_path: Path,
) -> None:
    recorder, _, summary = _recorder(tmp_path)
    huge = {"lines": ["x" * 1000 for _ in range(3000)]}  # about 3 MB
    result = Result(Status.FAIL, Resource("file", "/var/log"), "too much", observed=huge)
    recorder.append(
        [recorder.body(CHECK, ["iso27001:2022/A.8.15"], "medium", result, datetime.now(UTC), 1.0)]
    )
    record = summary.records[0]
    assert "lines" not in json.dumps(record["observed"])
    assert "bytes" in json.dumps(record["observed"])  # says what it left out
    assert record["message"] == "too much"  # the finding itself is kept
    _assert_store_accepts(summary.records)


def test_a_plugin_that_failed_to_load_leaves_an_accepted_error_record(tmp_path: Path) -> None:
    recorder, _, summary = _recorder(tmp_path)
    problem = LoadProblem("acme.check" * 200, "acme-plugin", "ImportError: " + "z" * 50_000)
    recorder.append([_problem_body(recorder, problem, datetime.now(UTC))])
    assert summary.records[0]["status"] == "error"
    _assert_store_accepts(summary.records)


def test_observations_nested_too_deep_are_replaced_by_a_note(tmp_path: Path) -> None:
    recorder, _, summary = _recorder(tmp_path)
    deep: object = "leaf"
    for _ in range(100):
        deep = {"child": deep}
    result = Result(Status.PASS, Resource("file", "/etc"), "deep", observed=deep)
    recorder.append(
        [recorder.body(CHECK, ["iso27001:2022/A.8.15"], "low", result, datetime.now(UTC), 0.1)]
    )
    assert "nested deeper" in summary.records[0]["observed"]["cut"]
    _assert_store_accepts(summary.records)


def test_a_record_just_under_the_limit_before_chaining_is_measured_with_its_chain_fields(
    tmp_path: Path,
) -> None:
    recorder, _, summary = _recorder(tmp_path)
    at = datetime.now(UTC)
    small = Result(Status.FAIL, Resource("file", "/x"), "big", observed={"blob": ""})
    unchained = len(canonical(recorder.body(CHECK, [], "low", small, at, 0.1)))
    # 100 bytes under the limit as written, about 75 over once seq, prev_hash and hash
    # are added: the store would refuse it on every push
    blob = "x" * (recordschema.max_record_bytes() - 100 - unchained)
    big = Result(Status.FAIL, Resource("file", "/x"), "big", observed={"blob": blob})
    recorder.append([recorder.body(CHECK, [], "low", big, at, 0.1)])
    assert "left out" in summary.records[0]["observed"]["cut"]
    _assert_store_accepts(summary.records)


def test_the_agent_writes_records_without_the_stores_libraries() -> None:
    """jsonschema-rs, orjson and the web stack are the store's: an endpoint agent that
    writes, seals and verifies evidence loads none of them, even where they are installed."""
    store_only = ["jsonschema_rs", "orjson", "fastapi", "sqlalchemy", "uvicorn"]
    script = (
        "import json, sys\n"
        "import tillsyn.agent.daemon\n"
        "from tillsyn.agent import recordschema\n"
        "from tillsyn.agent.evidence import canonical, record_hash\n"
        "record = recordschema.fit({'message': 'x' * 10000, 'observed': {'a': [1.5]}})\n"
        "record_hash(record); canonical(record)\n"
        f"print(json.dumps([m for m in {store_only!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
