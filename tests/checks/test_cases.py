"""Every check against every recorded case under ``tests/fixtures/checks/<check id>/<case>/``.

A case says what the collector sees and what the check must conclude:

- ``host``: a recorded tree under ``tests/fixtures/hosts/``, or a ``root/`` folder beside
  ``case.yaml`` (small trees of config files: sudoers, journald.conf.d ...);
- ``commands``: recorded outputs under ``tests/fixtures/commands/``; ``missing_tools`` and
  ``hanging_tools`` for a tool that is absent or never answers;
- ``platform`` (default linux), ``env``, ``now`` (default the pinned clock), ``params``;
- ``memory``: what the agent remembered from earlier runs, as
  ``{first_seen: {namespace: {key: time}}, values: {namespace: {key: {value, stored_at}}}}``;
- ``expect``: exactly these resources (``type:id``) with these statuses; where a
  ``message`` is given, the result's message contains it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import COMMANDS, FIXTURES, HOSTS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.agent import _typed, runner
from tillsyn.agent.registry import Registry
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.memory import FactMemory

CASES = sorted((FIXTURES / "checks").glob("*/*/case.yaml"))


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _memory(case: dict[str, Any]) -> FactMemory:
    memory = FactMemory()
    seeded = case.get("memory") or {}
    for namespace, keys in (seeded.get("first_seen") or {}).items():
        for key, when in keys.items():
            memory.record_first_seen(namespace, key, _when(when))
    for namespace, keys in (seeded.get("values") or {}).items():
        for key, entry in keys.items():
            memory.put(namespace, key, entry["value"], _when(entry["stored_at"]))
    return memory


def _facts(case: dict[str, Any], case_dir: Path, empty_root: Path) -> HostFacts:
    commands = RecordedRunner.from_files(
        (COMMANDS / name for name in case.get("commands", [])),
        missing=case.get("missing_tools", []),
        hanging=case.get("hanging_tools", []),
    )
    if "host" in case:
        root = HOSTS / case["host"]
    elif (case_dir / "root").is_dir():
        root = case_dir / "root"
    else:
        root = empty_root
    return HostFacts(
        root=root,
        runner=commands,
        env=case.get("env", {}),
        platform=case.get("platform", "linux"),
        now=_when(case["now"]) if "now" in case else PINNED_NOW,
        memory=_memory(case),
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
    (outcome,) = runner.run(
        [runner.Job(loaded, params, 30.0)], lambda kind: _facts(case, case_file.parent, tmp_path)
    )
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
