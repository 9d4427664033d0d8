"""Meta-tests over every registered check, and the validation that guards the registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from tillsyn.agent import registry as registry_module
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.registry import Registry, validate_spec
from tillsyn.checks._result import Result
from tillsyn.checks._spec import SPEC_ATTRIBUTE, CheckSpec, check

CASES = Path(__file__).parents[1] / "fixtures" / "checks"
BUILTINS = {"host.encryption.disk", "host.backup.recency"}


def test_builtin_checks_load_through_entry_points_without_problems(registry: Registry) -> None:
    assert set(registry.checks) >= BUILTINS
    assert [p for p in registry.problems if p.source.startswith("tillsyn ")] == []
    assert all(registry.checks[c].builtin for c in BUILTINS)


def test_every_check_maps_to_catalog_controls_and_declares_what_it_reads(
    registry: Registry, catalog: Catalog
) -> None:
    for loaded in registry.checks.values():
        spec = loaded.spec
        assert spec.controls and all(c in catalog for c in spec.controls), spec.id
        assert spec.facts and spec.needs and spec.remediation, spec.id
        assert spec.function is not None and spec.function.__module__.startswith(
            "tillsyn.checks." + spec.target
        ), spec.id
        module_doc = __import__(spec.module, fromlist=["_"]).__doc__ or ""
        assert "pass" in module_doc, f"{spec.module} docstring must say what pass means"


def test_every_builtin_check_has_pass_fail_and_error_cases(registry: Registry) -> None:
    for check_id in sorted(c for c, loaded in registry.checks.items() if loaded.builtin):
        folder = CASES / check_id
        kinds = (
            {case.name.split("-", 1)[0] for case in folder.iterdir()} if folder.is_dir() else set()
        )
        assert {"pass", "fail", "error"} <= kinds, f"{check_id} lacks cases: {folder}"


def _make(**overrides: Any) -> CheckSpec:
    def thing(facts: Any, p: Any) -> Iterator[Result]:
        yield from ()

    decorated = check(
        **{
            "id": "host.test.thing",
            "title": "t",
            "target": "host",
            "controls": ("iso27001:2022/A.8.1",),
            "severity": "low",
            "interval": "1h",
            "remediation": "r",
            **overrides,
        }
    )(thing)
    spec: CheckSpec = getattr(decorated, SPEC_ATTRIBUTE)
    return spec


@dataclasses.dataclass
class Mutable:
    x: int = 1


@dataclasses.dataclass(frozen=True)
class NoDefault:
    x: int


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"id": "Host.Test.Thing"}, "is not <target>.<family>.<name>"),
        ({"id": "host.test.other"}, "ends with 'other' but the function is 'thing'"),
        ({"target": "aws"}, "id starts with 'host' but the target is 'aws'"),
        ({"target": "printer", "id": "printer.test.thing"}, "target 'printer' is not one of"),
        ({"severity": "urgent"}, "severity 'urgent' is not one of"),
        ({"interval": "often"}, "interval: expected a duration"),
        (
            {"controls": ("A.8.8",)},
            "control 'A.8.8' is not a canonical catalog id (write iso27001:2022/A.8.8)",
        ),
        ({"controls": ("nis2/6.10.9",)}, "is not in Commission Implementing Regulation"),
        ({"controls": ()}, "maps to no control"),
        ({"params": Mutable}, "params must be a frozen dataclass"),
        ({"params": NoDefault}, "parameter 'x' has no default"),
    ],
)
def test_invalid_specs_are_named(catalog: Catalog, overrides: dict[str, Any], says: str) -> None:
    problems = validate_spec(_make(**overrides), catalog, builtin=False)
    assert any(says in p for p in problems), problems


def test_builtin_check_must_live_where_its_id_says(catalog: Catalog) -> None:
    problems = validate_spec(_make(), catalog, builtin=True)
    assert any("must live in tillsyn.checks.host.test" in p for p in problems)


def test_broken_plugin_and_duplicate_ids_are_reported_not_fatal(catalog: Catalog) -> None:
    eps = [
        EntryPoint("host.encryption", "tillsyn.checks.host.encryption", registry_module.GROUP),
        EntryPoint("broken", "no_such_module_anywhere", registry_module.GROUP),
        EntryPoint("again", "tillsyn.checks.host.encryption", registry_module.GROUP),
    ]
    loaded = registry_module.load(catalog, eps)
    assert "host.encryption.disk" in loaded.checks
    reasons = {p.name: p.reason for p in loaded.problems}
    assert "import of no_such_module_anywhere failed: ModuleNotFoundError" in reasons["broken"]
    assert "duplicate id" in reasons["host.encryption.disk"]
