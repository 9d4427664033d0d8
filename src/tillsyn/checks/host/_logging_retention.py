"""``host.logging.retention`` on Windows and macOS: the judgements, kept apart from Linux's.

The rule is Linux's (:mod:`tillsyn.checks.host.logging`): the EFFECTIVE retention counts,
the logs actually present or the configuration that deletes them, never a setting's
presence; a host younger than the policy passes only if its logs reach back to its start.

Windows, one result per log (``eventlog:Security``, ``System``, ``Application``):

- ``fail`` when the log is disabled or holds no events;
- "do not overwrite events" mode (retention without autoBackup) stops recording once the
  log is full, however old its oldest event: ``fail`` when the file has reached maxSize
  (``wevtutil gli``) or the newest event (``wevtutil qe /rd:true``) is older than
  :data:`NEWEST_EVENT_MAX_AGE`; ``error`` when either cannot be read. Only then is the
  oldest event judged;
- ``pass`` when its oldest event is at least ``retention_days`` old;
- "archive the log when full" mode (retention and autoBackup): Windows writes full logs to
  ``Archive-<log>-<UTC time>.evtx`` beside the log file and never deletes them, so the
  archives that are actually there count: the directory is listed and the log reaches
  back to the oldest archive's time (from its name, else its modification time) or its
  oldest live event, whichever is earlier. ``pass`` when that meets the policy, ``error``
  when the directory cannot be listed, else judged like a short log (``fail``);
- a host younger than the policy (InstallDate) passes when the log reaches back to its
  install; overwritten as needed, its maxSize must also hold the policy's days at the
  rate it fills (``wevtutil gli``: file size);
- otherwise ``fail``: overwritten as needed, the log keeps what fits in maxSize; in
  "do not overwrite" mode older events were cleared. When the install date could not
  be read the young-host rule could not be applied, and the result says why.
- reading the Security log without administrator rights is ``error``, naming that.

macOS:

- ``unified_log:logd``: ``pass`` when the oldest persisted entry of any kind in the
  unified log is at least the policy old, or the Mac (its Data volume) is younger than
  the policy and the log reaches back to its setup; else ``fail``. The message says that
  this is the oldest entry of any kind: the Persist store usually keeps ordinary log
  entries for less. logd has no retention setting, and usually keeps days to weeks:
  forwarding (or an agent) is how a Mac keeps 180 days.
- ``asl:<file>``, one per rotated ASL output (:mod:`tillsyn.collectors.host.logs_asl`), and
  ``newsyslog:<file>``, one per newsyslog entry
  (:mod:`tillsyn.collectors.host.logs_newsyslog`), judged like logrotate stanzas: what the
  configuration keeps, with a size cap making the retention unknown (``fail``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PureWindowsPath
from typing import TYPE_CHECKING, TypeVar

from tillsyn.checks._format import age_text
from tillsyn.checks._result import Resource, Result
from tillsyn.collectors.errors import FactError, FactPermissionDenied, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.logs_systemd import format_bytes

# Windows modules are imported where used, so a Linux agent never loads them.
if TYPE_CHECKING:
    from tillsyn.collectors.host.logs_windows import EventLogConfig

DAY = 86400.0
#: Logs "reach back to the host's start" when their oldest entry is this close to it.
INSTALL_SLACK = timedelta(days=2)
#: "Do not overwrite events": the newest event may be at most this old, else the log has
#: stopped recording. The Security, System and Application logs of a running Windows get
#: events every few hours at the least (logons, service starts, scheduled tasks, Windows
#: Update and Defender), so a day without one means the log no longer records.
NEWEST_EVENT_MAX_AGE = timedelta(days=1)
T = TypeVar("T")
MODES = {
    "overwrite": "overwrite events as needed",
    "archive": "archive the log when full",
    "retain": "do not overwrite events",
}


def days(seconds: float) -> float:
    return round(seconds / DAY, 1)


@dataclass(frozen=True)
class Installed:
    """When the host was installed (None: unknown), and why it could not be read."""

    at: datetime | None
    error: str | None = None


def _installed(facts: HostFacts, observed: dict[str, object]) -> Installed:
    """The install date, kept in ``observed``; a read failure is kept too, not swallowed."""
    try:
        installed = Installed(facts.installed_at())
    except FactError as exc:
        installed = Installed(None, str(exc))
        observed["installed_at_error"] = installed.error
    observed["installed_at"] = installed.at
    return installed


def _install_note(installed: Installed) -> str:
    """What a failure says when the young-host rule could not be applied."""
    if installed.error is None:
        return ""
    return (
        f" (the install date could not be read, so a host younger than the policy could "
        f"not be recognised: {installed.error})"
    )


def _young(facts: HostFacts, installed: Installed, start: datetime, policy: float) -> bool:
    """Whether the host is younger than the policy and the log reaches back to its start."""
    at = installed.at
    return (
        at is not None and (facts.now - at).total_seconds() < policy and start <= at + INSTALL_SLACK
    )


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
    if config.mode == "retain":
        stopped = _stopped_recording(facts, config, observed, expected)
        if stopped is not None:
            return stopped
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
        return _archived(facts, config, oldest, retention_days, observed, expected)
    return _young_or_short(facts, config, oldest, age, retention_days, observed, expected)


def _stopped_recording(
    facts: HostFacts,
    config: EventLogConfig,
    observed: dict[str, object],
    expected: dict[str, object],
) -> Result | None:
    """ "Do not overwrite events": the failure when the log is full or no longer records."""
    from tillsyn.collectors.host.logs_windows import is_full

    name, resource = config.name, Resource("eventlog", config.name)
    retain = MODES["retain"]
    expected["newest_event_max_age_hours"] = NEWEST_EVENT_MAX_AGE.total_seconds() / 3600
    expected["full"] = False
    try:
        info = facts.windows_event_log_info(name)
        newest = facts.windows_newest_event(name)
    except FactError as exc:
        return Result.errored(
            resource,
            f"{name}: {retain} is set, and whether the log is full or still records could "
            f"not be read: {exc}",
            observed=observed,
            expected=expected,
        )
    full = is_full(config, info)
    observed |= {"file_size_bytes": info.file_size, "full": full, "newest_event": newest}
    if newest is None:
        return Result.errored(
            resource,
            f"{name}: {retain} is set, and the newest event could not be read (the log "
            "answered with an oldest event but no newest one)",
            observed=observed,
            expected=expected,
        )
    silent = facts.now - newest
    observed["newest_age_days"] = days(silent.total_seconds())
    if full:
        return Result.failed(
            resource,
            f"{name}: the log is full ({format_bytes(info.file_size)} of maxSize "
            f"{format_bytes(config.max_size)}) and {retain} is set: new events are dropped "
            f"(newest event {age_text(silent)} old)",
            observed=observed,
            expected=expected,
        )
    if silent > NEWEST_EVENT_MAX_AGE:
        return Result.failed(
            resource,
            f"{name}: the newest event is {age_text(silent)} old (at most "
            f"{age_text(NEWEST_EVENT_MAX_AGE)} expected) and {retain} is set: the log has "
            "stopped recording",
            observed=observed,
            expected=expected,
        )
    return None


def _archived(
    facts: HostFacts,
    config: EventLogConfig,
    oldest: datetime,
    retention_days: int,
    observed: dict[str, object],
    expected: dict[str, object],
) -> Result:
    """ "Archive the log when full": the archives that are there, with the live log."""
    name, resource = config.name, Resource("eventlog", config.name)
    try:
        listing = facts.windows_event_archives(name)
    except FactError as exc:
        return Result.errored(
            resource,
            f"{name}: it is archived when full, but the archives could not be listed: {exc}",
            observed=observed,
            expected=expected,
        )
    archives = listing.archives
    observed |= {
        "archive_directory": listing.directory,
        "archive_pattern": listing.pattern,
        "archives": [
            {"path": a.path, "created": a.created, "time_from": a.basis} for a in archives
        ],
    }
    start = min(oldest, archives[0].created) if archives else oldest
    reach = facts.now - start
    observed["reaches_back_days"] = days(reach.total_seconds())
    live = f"oldest live event {age_text(facts.now - oldest)} old"
    if archives:
        first = archives[0]
        what = (
            f"{len(archives)} {listing.pattern} in {listing.directory}, the oldest "
            f"{PureWindowsPath(first.path).name} from {age_text(facts.now - first.created)} "
            f"ago (by its {first.basis}); {live}"
        )
    else:
        what = f"no {listing.pattern} in {listing.directory}; {live}"
    policy = retention_days * DAY
    if reach.total_seconds() >= policy:
        return Result.passed(
            resource,
            f"{name}: archived when full, and the archives reach back {age_text(reach)} "
            f"(policy {retention_days} d; {what})",
            observed=observed,
            expected=expected,
        )
    installed = _installed(facts, observed)
    if _young(facts, installed, start, policy) and installed.at is not None:
        return Result.passed(
            resource,
            f"{name}: the host is {age_text(facts.now - installed.at)} old and the log with "
            f"its archives keeps all of it (Windows never deletes archives; {what})",
            observed=observed,
            expected=expected,
        )
    return Result.failed(
        resource,
        f"{name}: archived when full, but the log and its archives reach back only "
        f"{age_text(reach)}, below the policy of {retention_days} d ({what})"
        + _install_note(installed),
        observed=observed,
        expected=expected,
    )


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
    installed = _installed(facts, observed)
    if _young(facts, installed, oldest, policy) and installed.at is not None:
        host_age = age_text(facts.now - installed.at)
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
    return Result.failed(
        resource,
        f"{at}: {why}{_install_note(installed)}",
        observed=observed,
        expected=expected,
    )


def windows(facts: HostFacts, retention_days: int) -> Iterator[Result]:
    from tillsyn.collectors.host.logs_windows import EVENT_LOGS

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
        "oldest_entry_is": "the oldest persisted entry of any kind",
        "newest_entry": span.end,
        "oldest_age_days": days(age.total_seconds()),
    }
    policy = retention_days * DAY
    oldest = f"the oldest persisted entry of any kind is {age_text(age)} old"
    if age.total_seconds() >= policy:
        return Result.passed(
            resource,
            f"unified log: {oldest} (policy {retention_days} d; the Persist store usually "
            "keeps ordinary log entries for less)",
            observed=observed,
            expected=expected,
        )
    installed = _installed(facts, observed)
    if _young(facts, installed, span.start, policy) and installed.at is not None:
        return Result.passed(
            resource,
            f"unified log: the Mac was set up {age_text(facts.now - installed.at)} ago and the "
            f"log reaches back to then ({oldest}; logd's size limits are not exposed, so no "
            "projection)",
            observed=observed,
            expected=expected,
        )
    return Result.failed(
        resource,
        f"unified log: {oldest}, below the policy of {retention_days} d: logd deletes by "
        "size and age and has no retention setting; forward the logs to keep them"
        + _install_note(installed),
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
