"""``host.logging.retention`` on Windows and macOS: the judgements, kept apart from Linux's.

The rule is Linux's (:mod:`tillsyn.checks.host.logging`): the EFFECTIVE retention counts,
the logs actually present or the configuration that deletes them, never a setting's
presence; a host younger than the policy passes only if its logs reach back to its start.

Windows, one result per log (``eventlog:Security``, ``System``, ``Application``):

- ``fail`` when the log is disabled or holds no events;
- ``pass`` when its oldest event is at least ``retention_days`` old;
- ``pass`` in "archive the log when full" mode (retention and autoBackup): full logs are
  kept as Archive-*.evtx files that Windows never deletes (the archives themselves are
  not inspected), so the live log's age is not the retention;
- a host younger than the policy (InstallDate) passes when the log reaches back to its
  install; overwritten as needed, its maxSize must also hold the policy's days at the
  rate it fills (``wevtutil gli``: file size);
- otherwise ``fail``: overwritten as needed, the log keeps what fits in maxSize; in
  "do not overwrite" mode older events were cleared.
- reading the Security log without administrator rights is ``error``, naming that.

macOS:

- ``unified_log:logd``: ``pass`` when the oldest entry in the unified log is at least the
  policy old, or the Mac (its Data volume) is younger than the policy and the log reaches
  back to its setup; else ``fail``. logd has no retention setting, and usually keeps days
  to weeks: forwarding (or an agent) is how a Mac keeps 180 days.
- ``asl:<file>``, one per rotated ASL output (:mod:`tillsyn.collectors.host.logs_asl`), and
  ``newsyslog:<file>``, one per newsyslog entry
  (:mod:`tillsyn.collectors.host.logs_newsyslog`), judged like logrotate stanzas: what the
  configuration keeps, with a size cap making the retention unknown (``fail``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from tillsyn.checks._format import age_text
from tillsyn.checks._result import Resource, Result
from tillsyn.collectors.errors import FactError, FactPermissionDenied, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.logs_systemd import format_bytes
from tillsyn.collectors.host.logs_windows import EVENT_LOGS, EventLogConfig

DAY = 86400.0
#: Logs "reach back to the host's start" when their oldest entry is this close to it.
INSTALL_SLACK = timedelta(days=2)
T = TypeVar("T")
MODES = {
    "overwrite": "overwrite events as needed",
    "archive": "archive the log when full",
    "retain": "do not overwrite events",
}


def days(seconds: float) -> float:
    return round(seconds / DAY, 1)


def _installed(facts: HostFacts) -> datetime | None:
    try:
        return facts.installed_at()
    except FactError:
        return None


# -- Windows ------------------------------------------------------------------------------


def _event_log(facts: HostFacts, name: str, retention_days: int) -> Result:
    resource = Resource("eventlog", name)
    expected: dict[str, object] = {"retention_days": retention_days, "enabled": True}
    try:
        config = facts.windows_event_log(name)
    except FactError as exc:
        return Result.errored(resource, f"{name}: could not read its configuration: {exc}")
    observed: dict[str, object] = {
        "enabled": config.enabled,
        "mode": config.mode,
        "retention": config.retention,
        "auto_backup": config.auto_backup,
        "max_size_bytes": config.max_size,
        "log_file": config.log_file,
    }
    if not config.enabled:
        return Result.failed(
            resource, f"{name}: the log is disabled", observed=observed, expected=expected
        )
    try:
        oldest = facts.windows_oldest_event(name)
    except FactPermissionDenied as exc:
        return Result.errored(
            resource,
            f"{name}: could not read its events: {exc.reason}",
            observed=observed,
            expected=expected,
        )
    except FactError as exc:
        return Result.errored(
            resource, f"{name}: could not read its events: {exc}", observed=observed
        )
    if oldest is None:
        return Result.failed(
            resource, f"{name}: the log holds no events", observed=observed, expected=expected
        )
    age = facts.now - oldest
    observed |= {"oldest_event": oldest, "oldest_age_days": days(age.total_seconds())}
    policy = retention_days * DAY
    mode = f"{MODES[config.mode]}, maxSize {format_bytes(config.max_size)}"
    if age.total_seconds() >= policy:
        return Result.passed(
            resource,
            f"{name}: oldest event is {age_text(age)} old (policy {retention_days} d; {mode})",
            observed=observed,
            expected=expected,
        )
    if config.mode == "archive":
        return Result.passed(
            resource,
            f"{name}: the log reaches back {age_text(age)}; it is archived when full "
            f"(Archive-{name}-*.evtx beside {config.log_file}, never deleted by Windows; "
            "the archives were not inspected)",
            observed=observed,
            expected=expected,
        )
    return _young_or_short(facts, config, oldest, age, retention_days, observed, expected)


def _young_or_short(
    facts: HostFacts,
    config: EventLogConfig,
    oldest: datetime,
    age: timedelta,
    retention_days: int,
    observed: dict[str, object],
    expected: dict[str, object],
) -> Result:
    name, resource = config.name, Resource("eventlog", config.name)
    policy = retention_days * DAY
    installed = _installed(facts)
    observed["installed_at"] = installed
    young = installed is not None and (facts.now - installed).total_seconds() < policy
    if young and installed is not None and oldest <= installed + INSTALL_SLACK:
        host_age = age_text(facts.now - installed)
        if config.mode == "retain":
            return Result.passed(
                resource,
                f"{name}: the host is {host_age} old and the log keeps all of it "
                f"(oldest event {age_text(age)}; {MODES['retain']})",
                observed=observed,
                expected=expected,
            )
        try:
            info = facts.windows_event_log_info(name)
        except FactError as exc:
            return Result.errored(
                resource,
                f"{name}: the host is {host_age} old; could not read the log's size to "
                f"project its retention: {exc}",
                observed=observed,
                expected=expected,
            )
        projected = age.total_seconds() * config.max_size / max(info.file_size, 1)
        observed |= {"file_size_bytes": info.file_size, "projected_days": days(projected)}
        if projected >= policy:
            return Result.passed(
                resource,
                f"{name}: the host is {host_age} old and the log keeps all of it (oldest "
                f"event {age_text(age)}); at this rate maxSize {format_bytes(config.max_size)} "
                f"holds {days(projected):g} d",
                observed=observed,
                expected=expected,
            )
        return Result.failed(
            resource,
            f"{name}: the host is {host_age} old, but at this rate maxSize "
            f"{format_bytes(config.max_size)} holds only {days(projected):g} d "
            f"(policy {retention_days} d)",
            observed=observed,
            expected=expected,
        )
    at = f"{name}: oldest event is {age_text(age)} old, below the policy of {retention_days} d"
    if config.mode == "overwrite":
        why = (
            f"events are overwritten as needed within maxSize "
            f"{format_bytes(config.max_size)}, which holds only that much"
        )
    else:
        why = f"{MODES['retain']} is set, so older events were cleared"
    return Result.failed(resource, f"{at}: {why}", observed=observed, expected=expected)


def windows(facts: HostFacts, retention_days: int) -> Iterator[Result]:
    for name in EVENT_LOGS:
        yield _event_log(facts, name, retention_days)


# -- macOS --------------------------------------------------------------------------------


def _unified_log(facts: HostFacts, retention_days: int) -> Result:
    resource = Resource("unified_log", "logd")
    expected = {"retention_days": retention_days}
    try:
        span = facts.unified_log_span()
    except FactError as exc:
        return Result.errored(resource, f"unified log: could not read its statistics: {exc}")
    age = facts.now - span.start
    observed: dict[str, object] = {
        "oldest_entry": span.start,
        "newest_entry": span.end,
        "oldest_age_days": days(age.total_seconds()),
    }
    policy = retention_days * DAY
    if age.total_seconds() >= policy:
        return Result.passed(
            resource,
            f"unified log: oldest entry is {age_text(age)} old (policy {retention_days} d)",
            observed=observed,
            expected=expected,
        )
    installed = _installed(facts)
    observed["installed_at"] = installed
    young = installed is not None and (facts.now - installed).total_seconds() < policy
    if young and installed is not None and span.start <= installed + INSTALL_SLACK:
        return Result.passed(
            resource,
            f"unified log: the Mac was set up {age_text(facts.now - installed)} ago and the "
            f"log reaches back to then (oldest entry {age_text(age)}; logd's size limits "
            "are not exposed, so no projection)",
            observed=observed,
            expected=expected,
        )
    return Result.failed(
        resource,
        f"unified log: oldest entry is {age_text(age)} old, below the policy of "
        f"{retention_days} d: logd deletes by size and age and has no retention setting; "
        "forward the logs to keep them",
        observed=observed,
        expected=expected,
    )


def rotation_result(
    resource: Resource,
    label: str,
    retention: tuple[float | None, str],
    retention_days: int,
    observed: dict[str, object],
) -> Result:
    """A rotated file's configured retention against the policy (unknown is ``fail``)."""
    kept, how = retention
    observed |= {
        "retention": "unknown" if kept is None else ("unlimited" if kept == float("inf") else kept),
        "basis": how,
    }
    expected = {"retention_days": retention_days}
    if kept is None:
        return Result.failed(
            resource, f"{label}: retention unknown, {how}", observed=observed, expected=expected
        )
    shown = "unlimited" if kept == float("inf") else f"{kept:g} d"
    return Result.judge(
        kept >= retention_days,
        resource,
        f"{label}: rotated logs kept {shown} ({how}; policy {retention_days} d)",
        observed=observed,
        expected=expected,
    )


def _configured(kind: str, read: Callable[[], T], what: str) -> T | Result:
    """The configuration, or the result that says why there is none to judge."""
    summary = Resource(kind, kind)
    try:
        return read()
    except FactUnavailable as exc:
        return Result.not_applicable(summary, f"{kind} is not configured: {exc.reason}")
    except FactError as exc:
        return Result.errored(summary, f"{kind}: could not read {what}: {exc}")


def _asl(facts: HostFacts, retention_days: int) -> Iterator[Result]:
    config = _configured("asl", facts.asl, "/etc/asl.conf and /etc/asl")
    if isinstance(config, Result):
        yield config
        return
    if not config.outputs:
        yield Result.not_applicable(
            Resource("asl", "asl"),
            "asl rotates no files (no rotate= option)",
            observed={"files": list(config.files)},
        )
        return
    for out in config.outputs:
        observed: dict[str, object] = {
            "where": out.where,
            "rotate": out.rotate,
            "ttl": out.ttl_days,
            "all_max": out.all_max_bytes,
        }
        yield rotation_result(
            Resource("asl", out.path), out.path, out.retention_days(), retention_days, observed
        )


def _newsyslog(facts: HostFacts, retention_days: int) -> Iterator[Result]:
    config = _configured("newsyslog", facts.newsyslog, "its configuration")
    if isinstance(config, Result):
        yield config
        return
    if not config.entries:
        yield Result.not_applicable(
            Resource("newsyslog", "newsyslog"),
            "newsyslog rotates no logs (no entry)",
            observed={"files": list(config.files), "ignored": list(config.ignored)},
        )
        return
    for entry in config.entries:
        observed: dict[str, object] = {
            "where": entry.where,
            "count": entry.count,
            "size_kb": entry.size_kb,
            "when": entry.when,
        }
        yield rotation_result(
            Resource("newsyslog", entry.path),
            entry.path,
            entry.retention_days(),
            retention_days,
            observed,
        )


def macos(facts: HostFacts, retention_days: int) -> Iterator[Result]:
    yield _unified_log(facts, retention_days)
    yield from _asl(facts, retention_days)
    yield from _newsyslog(facts, retention_days)
