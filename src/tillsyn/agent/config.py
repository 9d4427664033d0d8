"""The agent's configuration: one typed shape, validated completely at load.

The embedded ``defaults.yaml`` is read first and a user's file is merged over it key
by key. Everything is checked before any check runs: unknown keys, wrong types,
unknown check ids and each check's parameters against its params dataclass. Every
problem is reported at once, each with file, line and key path.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tillsyn.agent import _typed, _yaml
from tillsyn.agent._typed import Duration, Issue
from tillsyn.agent.exceptions import RiskException
from tillsyn.agent.registry import Registry

DEFAULTS = "defaults.yaml"
_CHECK_KEYS = ("enabled", "interval", "timeout", "params")
_TWO_MINUTES, _THIRTY_SECONDS, _ONE_HOUR = Duration(120.0), Duration(30.0), Duration(3600.0)
_TOP_KEYS = ("agent", "checks", "exceptions")


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` are ``file:line: key: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class AgentSettings:
    state_dir: str = ""
    concurrency: int = 4
    check_timeout: Duration = _TWO_MINUTES
    command_timeout: Duration = _THIRTY_SECONDS
    #: How long answers of slow read-only queries (package managers) are reused.
    command_cache: Duration = _ONE_HOUR
    #: Warn (never drop) when more records than this wait to be delivered to the store.
    outbox_warn_records: int = 100_000
    #: Records per push request (whole sealed runs; at least one run per request).
    push_batch: int = 500
    #: Tries per push request before giving up until the next push (backoff in between).
    push_attempts: int = 6
    #: The daemon serves /metrics here ("127.0.0.1:9464"); empty: not served.
    metrics_listen: str = ""
    #: The daemon writes a node_exporter textfile here after each tick; empty: not written.
    metrics_textfile: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= 64:
            raise ValueError(f"concurrency must be between 1 and 64, got {self.concurrency}")


@dataclass(frozen=True)
class CheckSettings:
    enabled: bool
    interval: float  # seconds
    timeout: float  # seconds
    params: Any  # an instance of the check's params dataclass


@dataclass(frozen=True)
class Config:
    agent: AgentSettings
    checks: dict[str, CheckSettings]
    files: tuple[str, ...]
    exceptions: tuple[RiskException, ...] = ()

    def state_dir(self) -> Path:
        """Where evidence and the agent key live: config, then the platform default."""
        if self.agent.state_dir:
            return Path(self.agent.state_dir).expanduser()
        return default_state_dir()


def default_state_dir() -> Path:
    """``$TILLSYN_STATE_DIR``, else ``/var/lib/tillsyn`` as root, else the XDG state dir."""
    if os.environ.get("TILLSYN_STATE_DIR"):
        return Path(os.environ["TILLSYN_STATE_DIR"])
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/tillsyn")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tillsyn"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read(path: Path) -> _yaml.Located:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        located = _yaml.load(text, str(path))
    except _yaml.YamlError as exc:
        raise ConfigError([str(exc)]) from exc
    if located.data is None:
        located.data = {}
    if not isinstance(located.data, dict):
        raise ConfigError([f"{path}:1: the configuration must be a mapping"])
    return located


def _defaults() -> _yaml.Located:
    text = resources.files("tillsyn.agent").joinpath(DEFAULTS).read_text(encoding="utf-8")
    return _yaml.load(text, f"<embedded {DEFAULTS}>")


def load(registry: Registry, path: Path | None = None) -> Config:
    """The embedded defaults, with ``path`` merged over them, validated against ``registry``."""
    layers = [_defaults()] + ([_read(path)] if path is not None else [])
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer.data)

    def where(key_path: tuple[str | int, ...]) -> str:
        for layer in reversed(layers):  # the newest layer that wrote it (or a parent)
            probe = key_path
            while probe and probe not in layer.lines:
                probe = probe[:-1]
            if probe:
                return layer.where(key_path)
        return layers[-1].source

    issues: list[Issue] = []
    for key in merged:
        if key not in _TOP_KEYS:
            issues.append(Issue((key,), f"unknown key {key!r} (known: {', '.join(_TOP_KEYS)})"))
    agent = _typed.build_dataclass(AgentSettings, merged.get("agent") or {}, ("agent",), issues)
    checks = _checks(registry, merged.get("checks") or {}, agent, issues)
    exceptions = _exceptions(registry, merged.get("exceptions") or [], issues)
    if issues:
        raise ConfigError([f"{where(i.path)}: {_dotted(i.path)}: {i.message}" for i in issues])
    return Config(agent, checks, tuple(layer.source for layer in layers), exceptions)


def _exceptions(registry: Registry, raw: Any, issues: list[Issue]) -> tuple[RiskException, ...]:
    built = _typed.build(tuple[RiskException, ...], raw, ("exceptions",), issues)
    if not built:
        return ()
    seen: set[str] = set()
    for index, exception in enumerate(built):
        if exception is None:
            continue
        if exception.id in seen:
            issues.append(
                Issue(("exceptions", index, "id"), f"duplicate exception id {exception.id!r}")
            )
        seen.add(exception.id)
        if exception.check not in registry.checks:
            issues.append(
                Issue(("exceptions", index, "check"), f"unknown check id {exception.check!r}")
            )
    return tuple(e for e in built if e is not None)


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(
        f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path)
    )


def _checks(
    registry: Registry, raw: Any, agent: AgentSettings | None, issues: list[Issue]
) -> dict[str, CheckSettings]:
    if not isinstance(raw, dict):
        issues.append(Issue(("checks",), "expected a mapping of check ids"))
        return {}
    broken = {p.name for p in registry.problems}
    for check_id in raw:
        if check_id not in registry.checks and check_id not in broken:
            close = difflib.get_close_matches(check_id, list(registry.checks), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            issues.append(Issue(("checks", check_id), f"unknown check id {check_id!r}{hint}"))
    timeout = agent.check_timeout if agent else 120.0
    settings: dict[str, CheckSettings] = {}
    for check_id, loaded in registry.checks.items():
        entry = raw.get(check_id) or {}
        path: tuple[str | int, ...] = ("checks", check_id)
        if not isinstance(entry, dict):
            issues.append(Issue(path, "expected a mapping with enabled, interval, timeout, params"))
            continue
        for key in entry:
            if key not in _CHECK_KEYS:
                issues.append(
                    Issue((*path, key), f"unknown key {key!r} (known: {', '.join(_CHECK_KEYS)})")
                )
        enabled = _typed.build(bool, entry.get("enabled", True), (*path, "enabled"), issues)
        interval = _typed.build(
            Duration, entry.get("interval", loaded.interval_seconds), (*path, "interval"), issues
        )
        check_timeout = _typed.build(
            Duration, entry.get("timeout", timeout), (*path, "timeout"), issues
        )
        params_raw = entry.get("params") or {}
        if not isinstance(params_raw, dict):
            issues.append(Issue((*path, "params"), "expected a mapping of parameters"))
            continue
        params = _typed.build_dataclass(loaded.spec.params, params_raw, (*path, "params"), issues)
        if params is not None and enabled is not None:
            settings[check_id] = CheckSettings(
                enabled, float(interval or 0), float(check_timeout or 0), params
            )
    return settings
