"""Every check against every recorded case under ``tests/fixtures/checks/<check id>/<case>/``.

A case names a recorded host tree (``host``), recorded command outputs (``commands``), the
platform,
tools that are missing or hang, the environment, the check's parameters and the
results it must produce: exactly those resources with those statuses, and where a
``message`` is given, the result's message contains it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import COMMANDS, FIXTURES, HOSTS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.agent import _typed, runner
from tillsyn.agent.registry import Registry
from tillsyn.collectors.host import HostFacts

CASES = sorted((FIXTURES / "checks").glob("*/*/case.yaml"))


def _facts(case: dict[str, Any], empty_root: Path) -> HostFacts:
    commands = RecordedRunner.from_files(
        (COMMANDS / name for name in case.get("commands", [])),
        missing=case.get("missing_tools", []),
        hanging=case.get("hanging_tools", []),
    )
    root = HOSTS / case["host"] if "host" in case else empty_root
    return HostFacts(
        root=root,
        runner=commands,
        env=case.get("env", {}),
        platform=case.get("platform", "linux"),
        now=PINNED_NOW,
    )


@pytest.mark.parametrize(
    "case_file", CASES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}"
)
def test_case(case_file: Path, registry: Registry, tmp_path: Path) -> None:
    case = yaml.safe_load(case_file.read_text())
    check_id = case_file.parent.parent.name
    loaded = registry.checks[check_id]
    issues: list[_typed.Issue] = []
    params = _typed.build_dataclass(
        loaded.spec.params, case.get("params") or {}, ("params",), issues
    )
    assert not issues, issues
    (outcome,) = runner.run([runner.Job(loaded, params, 30.0)], lambda kind: _facts(case, tmp_path))
    got = {f"{r.resource.type}:{r.resource.id}": r for r in outcome.results}
    expected = {e["resource"]: e for e in case["expect"]}
    assert {k: str(r.status) for k, r in got.items()} == {
        k: e["status"] for k, e in expected.items()
    }, [r.message for r in outcome.results]
    for key, wanted in expected.items():
        if "message" in wanted:
            assert wanted["message"] in got[key].message, got[key].message


def test_there_are_cases() -> None:
    assert len(CASES) >= 10
