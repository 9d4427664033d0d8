"""Finding and validating checks: every module in the ``tillsyn.checks`` entry-point group.

Built-in checks are listed in the same group as third-party ones, so both take the
same path. Each spec is validated once, here: the id says where the check lives,
every control id is in the catalog, severity and interval parse, every parameter has a
default. Whatever fails is kept as a :class:`LoadProblem`, shown by ``tillsyn checks``
and turned into an ``error`` result by a run, so a broken plugin leaves a visible hole
in the evidence instead of a silent one. A duplicate id never silently wins: the
built-in keeps it and the other is reported.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from tillsyn.agent.catalog import Catalog, UnknownControlError
from tillsyn.checks._spec import SPEC_ATTRIBUTE, TARGET_KINDS, CheckSpec, Severity, parse_duration

GROUP = "tillsyn.checks"
BUILTIN_DISTRIBUTION = "tillsyn"
_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class LoadedCheck:
    """A validated check and where it came from."""

    spec: CheckSpec
    interval_seconds: float
    source: str  # "tillsyn 0.1.0" or the plugin's distribution and version
    builtin: bool


@dataclass(frozen=True)
class LoadProblem:
    """A check or plugin module that could not be used, and why."""

    name: str  # the check id when known, else the entry point's name
    source: str
    reason: str


@dataclass
class Registry:
    checks: dict[str, LoadedCheck] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)

    def select(self, ids: Iterable[str] = (), families: Iterable[str] = ()) -> list[LoadedCheck]:
        """Checks by id and/or family, in id order; everything when both are empty."""
        wanted_ids, wanted_families = set(ids), set(families)
        return [
            c
            for i, c in sorted(self.checks.items())
            if (not wanted_ids and not wanted_families)
            or i in wanted_ids
            or c.spec.family in wanted_families
        ]


def _source(entry_point: EntryPoint) -> tuple[str, bool]:
    dist = entry_point.dist
    if dist is None:
        return f"entry point {entry_point.name}", False
    return f"{dist.name} {dist.version}", dist.name == BUILTIN_DISTRIBUTION


def validate_spec(spec: CheckSpec, catalog: Catalog, *, builtin: bool) -> list[str]:
    """Everything wrong with one spec, as sentences (empty when it is valid)."""
    problems: list[str] = []
    if not _ID.match(spec.id):
        problems.append(f"id {spec.id!r} is not <target>.<family>.<name> in lowercase snake_case")
    else:
        target, family, name = spec.id.split(".")
        if target != spec.target:
            problems.append(f"id starts with {target!r} but the target is {spec.target!r}")
        if name != spec.function_name:
            problems.append(f"id ends with {name!r} but the function is {spec.function_name!r}")
        expected_module = f"tillsyn.checks.{target}.{family}"
        if builtin and spec.module != expected_module:
            problems.append(
                f"a built-in check {spec.id} must live in {expected_module}, not {spec.module}"
            )
    if spec.target not in TARGET_KINDS:
        problems.append(f"target {spec.target!r} is not one of {', '.join(TARGET_KINDS)}")
    if spec.severity not in set(Severity):
        problems.append(
            f"severity {spec.severity!r} is not one of {', '.join(s.value for s in Severity)}"
        )
    try:
        parse_duration(spec.interval)
    except ValueError as exc:
        problems.append(f"interval: {exc}")
    if not spec.controls:
        problems.append("maps to no control")
    for control in spec.controls:
        if control not in catalog:
            try:
                hint = f" (write {catalog.parse(control)})"
            except UnknownControlError as exc:
                hint = f" ({exc})"
            problems.append(f"control {control!r} is not a canonical catalog id{hint}")
    if not spec.title.strip() or not spec.remediation.strip():
        problems.append("title and remediation must not be empty")
    params_options = getattr(spec.params, "__dataclass_params__", None)
    if not (dataclasses.is_dataclass(spec.params) and params_options and params_options.frozen):
        problems.append("params must be a frozen dataclass")
    else:
        for param in dataclasses.fields(spec.params):
            if (
                param.default is dataclasses.MISSING
                and param.default_factory is dataclasses.MISSING
            ):
                problems.append(f"parameter {param.name!r} has no default")
    return problems


def _specs_in(module: ModuleType) -> list[CheckSpec]:
    found = []
    for _, member in inspect.getmembers(module, inspect.isfunction):
        spec = getattr(member, SPEC_ATTRIBUTE, None)
        if isinstance(spec, CheckSpec) and member.__module__ == module.__name__:
            found.append(spec)
    return found


def load(catalog: Catalog, entry_points_: Iterable[EntryPoint] | None = None) -> Registry:
    """Import every check module of the entry-point group and validate what it declares."""
    registry = Registry()
    eps = list(entry_points(group=GROUP) if entry_points_ is None else entry_points_)
    # Built-ins first, so that on an id collision the built-in one is kept.
    eps.sort(key=lambda ep: (not _source(ep)[1], ep.name))
    for entry_point in eps:
        source, builtin = _source(entry_point)
        try:
            module = importlib.import_module(entry_point.value.split(":", 1)[0])
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, never fatal
            registry.problems.append(
                LoadProblem(
                    entry_point.name,
                    source,
                    f"import of {entry_point.value} failed: {type(exc).__name__}: {exc}",
                )
            )
            continue
        specs = _specs_in(module)
        if not specs:
            registry.problems.append(
                LoadProblem(entry_point.name, source, f"module {module.__name__} declares no check")
            )
        for spec in specs:
            problems = validate_spec(spec, catalog, builtin=builtin)
            if spec.id in registry.checks:
                kept = registry.checks[spec.id].source
                problems.append(f"duplicate id: {kept} already provides it and is kept")
            if problems:
                registry.problems.append(LoadProblem(spec.id, source, "; ".join(problems)))
                continue
            registry.checks[spec.id] = LoadedCheck(
                spec, parse_duration(spec.interval), source, builtin
            )
    return registry
