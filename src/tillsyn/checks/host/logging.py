"""Event logs are kept long enough, are (optionally) shipped off the host, and carry true time.

``host.logging.retention`` judges the EFFECTIVE retention, never the presence of a setting:

- ``journal:journald`` passes when journald keeps the journal on disk (Storage= resolves to
  persistent), no MaxRetentionSec= below the policy is set, and the oldest entry still in
  the journal is at least ``retention_days`` old. A host younger than the policy (its root
  filesystem's birth time) passes only if the journal reaches back to the host's start
  and the size cap (SystemMaxUse=/SystemKeepFree= against the current usage) would hold
  the policy's days at the current rate. Evidence: the merged settings and the file each
  came from, masked drop-ins, ignored lines, usage, the cap, the oldest entry and its age.
- ``logrotate:<patterns>``, one per stanza: ``rotate`` times the period (capped by ``maxage``) is
  at least ``retention_days``. Rotation by size makes the retention unknown, which is
  reported as ``fail`` with ``retention: unknown`` (the configuration does not ensure the
  period), never as ``pass``.
- ``log_shipping:log-shipping``: ``pass`` when rsyslog, syslog-ng or journal-upload is
  configured to forward logs and enabled; when nothing forwards, ``fail`` if the
  ``require_shipping`` parameter asks for shipping (NIS2 3.2.5 "back up logs"), else
  ``not_applicable`` saying that logs stay on the host. Configuration that cannot be read
  is ``error`` either way. On Windows the forwarding is Windows Event Forwarding (the
  SubscriptionManager policy, enabled when WinRM starts automatically), on macOS
  syslogd's ``@host`` lines in /etc/syslog.conf.

On Windows (Security, System and Application event logs, one result each) and macOS
(the unified log, rotated ASL files, newsyslog entries) the same rules are applied as
:mod:`._logging_retention` describes; other platforms are ``error``.

``host.logging.time_sync`` passes when a time daemon (chrony, ntpd or
systemd-timesyncd) reports the clock synchronised with an offset within ``max_offset_ms``. No
daemon at all is ``fail`` (naming what was looked for); daemons installed but not
answering is ``error``. On macOS network time must be on (``systemsetup``, which needs
root) and ``sntp`` measures the offset to its server; on Windows the Windows Time service
must follow a source (not the local CMOS or free-running clock; stopped is ``fail``) and
``w32tm /stripchart`` measures the offset to it; a Hyper-V guest (a source without a host
name) counts W32Time's Phase Offset only while its last good sync is at most twice the
poll interval (at least an hour; a day if the interval is not printed) old: older is
``fail``, not printed is ``error``. There a missing tool, a refusal, no
answer or output in another language is ``error``. Evidence: each report, offset, source.
In a container with no answering daemon it is not applicable: the clock is the host's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tillsyn.checks._format import age_text
from tillsyn.checks._result import TARGET, Resource, Result
from tillsyn.checks._spec import check
from tillsyn.checks.host import _logging_retention
from tillsyn.checks.host._logging_retention import DAY, INSTALL_SLACK
from tillsyn.checks.host._logging_retention import days as _days
from tillsyn.collectors.errors import FactError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.logs_journald import (
    DEFAULT_CAP,
    DEFAULT_KEEP_FREE_SHARE,
    DEFAULT_MAX_USE_SHARE,
    JournaldSettings,
)
from tillsyn.collectors.host.logs_systemd import format_bytes

JOURNAL = Resource("journal", "journald")
SHIPPING = Resource("log_shipping", "log-shipping")
CLOCK = Resource("clock", "system")
#: Usage at or above this share of the size limit means journald is deleting by size.
AT_CAP = 0.9


@dataclass(frozen=True)
class RetentionParams:
    #: Logs must be kept at least this many days (NIS2 3.2.5: "a predefined period").
    retention_days: int = 180
    #: Fail when no log shipping off the host is configured (else not_applicable).
    require_shipping: bool = False


def _limit(facts: HostFacts, s: JournaldSettings, usage: int) -> tuple[int | None, str]:
    """The bytes journald may use (SystemMaxUse= and SystemKeepFree= against free space)."""
    try:
        fs = facts.journal_filesystem()
    except FactError:
        if s.system_max_use is None:
            return None, "the default cap depends on the filesystem size, which was unreadable"
        return s.system_max_use, f"SystemMaxUse={format_bytes(s.system_max_use)}"
    max_use = s.system_max_use
    if max_use is None:
        max_use = min(int(fs.size_bytes * DEFAULT_MAX_USE_SHARE), DEFAULT_CAP)
    keep_free = s.system_keep_free
    if keep_free is None:
        keep_free = min(int(fs.size_bytes * DEFAULT_KEEP_FREE_SHARE), DEFAULT_CAP)
    by_free = max(usage, usage + fs.free_bytes - keep_free)
    limit = min(max_use, by_free)
    why = (
        f"SystemMaxUse {format_bytes(max_use)}"
        if limit == max_use
        else f"SystemKeepFree {format_bytes(keep_free)} with {format_bytes(fs.free_bytes)} free"
    )
    return limit, why


def _journald(facts: HostFacts, p: RetentionParams) -> Result:
    expected = {"retention_days": p.retention_days, "storage": "persistent"}
    try:
        if not facts.journald_present():
            return Result.not_applicable(JOURNAL, "journald is not installed on this host")
        s = facts.journald_settings()
    except FactError as exc:
        return Result.errored(JOURNAL, f"journald: could not read its configuration: {exc}")
    observed: dict[str, object] = {
        "config_files": list(s.files),
        "masked_dropins": list(s.masked),
        "ignored_lines": list(s.ignored),
        "set_at": dict(s.set_at),
        "storage": s.storage,
        "max_retention_days": None
        if s.max_retention_seconds is None
        else _days(s.max_retention_seconds),
        "system_max_use": s.system_max_use,
        "system_keep_free": s.system_keep_free,
    }
    storage = s.storage
    if storage == "auto":
        storage = "persistent" if facts.persistent_journal_dir() else "volatile"
        observed["storage_effective"] = storage
    if storage != "persistent":
        why = " and /var/log/journal does not exist" if s.storage == "auto" else ""
        return Result.failed(
            JOURNAL,
            f"journald: Storage={s.storage}{why}, so the journal is not kept on disk",
            observed=observed,
            expected=expected,
        )
    policy = p.retention_days * DAY
    if s.max_retention_seconds and s.max_retention_seconds < policy:
        return Result.failed(
            JOURNAL,
            f"journald: MaxRetentionSec= deletes entries after "
            f"{_days(s.max_retention_seconds):g} d (policy {p.retention_days} d)",
            observed=observed,
            expected=expected,
        )
    try:
        usage = facts.journal_usage()
        boots = facts.journal_boots()
    except FactError as exc:
        return Result.errored(
            JOURNAL,
            f"journald: configured to keep the journal, but the journal could not be read: {exc}",
            observed=observed,
            expected=expected,
        )
    observed |= {"usage_bytes": usage, "boots": len(boots)}
    if not boots:
        return Result.failed(
            JOURNAL, "journald: the journal holds no entries", observed=observed, expected=expected
        )
    oldest = boots[0].first_entry
    age = facts.now - oldest
    observed |= {"oldest_entry": oldest, "oldest_age_days": _days(age.total_seconds())}
    if age.total_seconds() >= policy:
        return Result.passed(
            JOURNAL,
            f"journald: oldest entry is {age_text(age)} old (policy {p.retention_days} d), "
            f"journal uses {format_bytes(usage)}",
            observed=observed,
            expected=expected,
        )
    limit, limit_why = _limit(facts, s, usage)
    observed |= {"limit_bytes": limit, "limit_reason": limit_why}
    try:
        installed = facts.installed_at()
    except FactError:
        installed = None
    observed["installed_at"] = installed
    at = f"journald: oldest entry is {age_text(age)} old, below the policy of {p.retention_days} d"
    young = installed is not None and (facts.now - installed).total_seconds() < policy
    if young and installed is not None and oldest <= installed + INSTALL_SLACK and limit:
        projected = age.total_seconds() * limit / usage if usage else float("inf")
        observed["projected_days"] = None if projected == float("inf") else _days(projected)
        host_age = age_text(facts.now - installed)
        if projected >= policy:
            return Result.passed(
                JOURNAL,
                f"journald: the host is {host_age} old and the journal keeps all of it "
                f"(oldest entry {age_text(age)}); at this rate {limit_why} holds "
                f"{_days(projected):g} d",
                observed=observed,
                expected=expected,
            )
        return Result.failed(
            JOURNAL,
            f"journald: the host is {host_age} old, but at this rate {limit_why} holds only "
            f"{_days(projected):g} d (policy {p.retention_days} d)",
            observed=observed,
            expected=expected,
        )
    if limit is not None and usage >= AT_CAP * limit:
        reason = f"the journal ({format_bytes(usage)}) is at its size limit, {limit_why}"
    else:
        reason = "older entries are gone (removed, vacuumed or never written)"
    return Result.failed(JOURNAL, f"{at}: {reason}", observed=observed, expected=expected)


def _logrotate(facts: HostFacts, p: RetentionParams) -> Iterator[Result]:
    summary = Resource("logrotate", "logrotate")
    try:
        config = facts.logrotate()
    except FactUnavailable as exc:
        if exc.call == "/etc/logrotate.conf":
            yield Result.not_applicable(summary, f"logrotate is not configured: {exc.reason}")
        else:
            yield Result.errored(summary, f"logrotate: could not read its configuration: {exc}")
        return
    except FactError as exc:
        yield Result.errored(summary, f"logrotate: could not read its configuration: {exc}")
        return
    if not config.stanzas:
        yield Result.not_applicable(
            summary, "logrotate rotates no logs (no stanza)", observed={"files": config.files}
        )
        return
    for stanza in config.stanzas:
        days, how = stanza.retention_days()
        resource = Resource("logrotate", stanza.name)
        r = stanza.rotation
        observed: dict[str, object] = {
            "where": stanza.where,
            "criterion": r.criterion,
            "rotate": r.rotate,
            "maxage": r.maxage_days,
            "retention": "unknown"
            if days is None
            else ("unlimited" if days == float("inf") else days),
            "basis": how,
        }
        expected = {"retention_days": p.retention_days}
        if days is None:
            yield Result.failed(
                resource,
                f"{stanza.name}: retention unknown, {how}",
                observed=observed,
                expected=expected,
            )
            continue
        shown = "unlimited" if days == float("inf") else f"{days:g} d"
        yield Result.judge(
            days >= p.retention_days,
            resource,
            f"{stanza.name}: rotated logs kept {shown} ({how}; policy {p.retention_days} d)",
            observed=observed,
            expected=expected,
        )


def _shipping(facts: HostFacts, p: RetentionParams) -> Result:
    expected = {"require_shipping": p.require_shipping}
    try:
        config = facts.shipping()
    except FactError as exc:
        return Result.errored(SHIPPING, f"log shipping: could not read the configuration: {exc}")
    active = [f for f in config.forwarders if f.enabled is not False]
    observed: dict[str, object] = {
        "forwarders": [
            {
                "daemon": f.daemon,
                "target": f.target,
                "how": f.how,
                "where": f.where,
                "enabled": f.enabled,
            }
            for f in config.forwarders
        ],
        "files_read": list(config.files_read),
        "daemons_found": list(config.daemons_found),
    }
    if active:
        targets = ", ".join(sorted({f"{f.target} ({f.daemon} {f.how})" for f in active}))
        return Result.passed(
            SHIPPING,
            f"logs are shipped off the host to {targets}",
            observed=observed,
            expected=expected,
        )
    idle = [f for f in config.forwarders if f.enabled is False]
    if idle:
        why = f"forwarding is configured in {', '.join(sorted({f.daemon for f in idle}))} " + (
            "but that service is not enabled"
        )
    else:
        names = list(config.looked_for)
        none = ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]
        looked = ", ".join(config.daemons_found) or f"no {none}"
        why = f"no forwarding is configured (looked at {looked})"
    if p.require_shipping:
        return Result.failed(
            SHIPPING,
            f"logs are not shipped off the host: {why}",
            observed=observed,
            expected=expected,
        )
    return Result.not_applicable(
        SHIPPING,
        f"logs are not shipped off the host: {why}; not required by require_shipping=false",
        observed=observed,
        expected=expected,
    )


@check(
    id="host.logging.retention",
    title="Logs are kept for the retention period and shipped",
    target="host",
    controls=(
        "iso27001:2022/A.8.15",
        "iso27001:2022/A.8.17",
        "nis2/3.2.5",
        "nis2/3.2.6",
    ),
    severity="medium",
    interval="6h",
    params=RetentionParams,
    facts=(
        "host.logs.journald_settings",
        "host.logs.journal_usage",
        "host.logs.journal_boots",
        "host.logs.installed_at",
        "host.logs.logrotate",
        "host.logs.shipping",
        "host.logs.windows_event_log",
        "host.logs.windows_oldest_event",
        "host.logs.windows_newest_event",
        "host.logs.windows_event_log_info",
        "host.logs.windows_event_archives",
        "host.logs.unified_log_span",
        "host.logs.asl",
        "host.logs.newsyslog",
    ),
    needs=(
        "read /etc/systemd, /etc/logrotate.conf, /etc/logrotate.d, /etc/rsyslog*, /etc/syslog-ng",
        "read the system journal (root, or the systemd-journal or adm group)",
        "Windows: run wevtutil and reg query as an administrator (the Security log needs it); "
        "list the event log directory (Archive-*.evtx)",
        "macOS: run log stats as root; read /etc/asl.conf, /etc/asl, /etc/newsyslog*, "
        "/etc/syslog.conf",
    ),
    remediation="Set Storage=persistent and SystemMaxUse= large enough (and no shorter "
    "MaxRetentionSec=) in a drop-in under /etc/systemd/journald.conf.d/; raise 'rotate' for "
    "time-based logrotate stanzas; on Windows raise each event log's maximum size (or "
    "archive it when full) and keep it enabled; on macOS set ttl= (without all_max=) for "
    "ASL files and raise newsyslog counts; forward logs to a central collector (the only "
    "way the macOS unified log is kept long).",
)
def retention(facts: HostFacts, p: RetentionParams) -> Iterator[Result]:
    if facts.platform in ("win32", "darwin"):
        judge = (
            _logging_retention.windows if facts.platform == "win32" else _logging_retention.macos
        )
        yield from judge(facts, p.retention_days)
        yield _shipping(facts, p)
        return
    if facts.platform != "linux":
        yield Result.errored(
            TARGET,
            f"log retention is not implemented for platform {facts.platform} in this version",
        )
        return
    yield _journald(facts, p)
    yield from _logrotate(facts, p)
    yield _shipping(facts, p)


@dataclass(frozen=True)
class TimeSyncParams:
    #: The clock may differ from its time source by at most this much.
    max_offset_ms: float = 500.0


@check(
    id="host.logging.time_sync",
    title="The system clock is synchronised to a time source within the allowed offset",
    target="host",
    controls=(
        "iso27001:2022/A.8.17",
        "iso27001:2022/A.8.15",
        "nis2/3.2.6",
        "nis2/3.2.5",
    ),
    severity="medium",
    interval="1h",
    params=TimeSyncParams,
    facts=("host.logs.time_sync", "host.container"),
    needs=(
        "Linux: run chronyc, ntpq and timedatectl; no root needed",
        "macOS: run systemsetup as root, and sntp (UDP 123 to the configured server)",
        "Windows: run w32tm /query /status and /stripchart (UDP 123 to the time source)",
    ),
    remediation="Enable a time daemon (chrony, systemd-timesyncd; 'Set time and date "
    "automatically' on macOS; the Windows Time service on Windows) pointed at reachable "
    "NTP servers, and find out why the clock drifted if the offset is large.",
)
def time_sync(facts: HostFacts, p: TimeSyncParams) -> Iterator[Result]:
    expected = {"synchronised": True, "max_offset_ms": p.max_offset_ms}
    try:
        sync = facts.time_sync()
    except FactError as exc:
        yield Result.errored(CLOCK, f"could not read the clock's synchronisation: {exc}")
        return
    observed: dict[str, object] = {
        "reports": [
            {
                "daemon": r.daemon,
                "synchronised": r.synchronised,
                "offset_ms": r.offset_ms,
                "source": r.source,
                "detail": r.detail,
            }
            for r in sync.reports
        ],
        "not_answering": list(sync.silent),
        "looked_for": list(sync.looked_for),
    }
    synced = [r for r in sync.reports if r.synchronised and r.offset_ms is not None]
    good = [r for r in synced if abs(r.offset_ms or 0.0) <= p.max_offset_ms]
    if good:
        r = good[0]
        yield Result.passed(
            CLOCK,
            f"clock synchronised by {r.daemon} to {r.source}, offset {r.offset_ms:+g} ms "
            f"(max {p.max_offset_ms:g} ms)",
            observed=observed,
            expected=expected,
        )
        return
    if synced:
        r = synced[0]
        yield Result.failed(
            CLOCK,
            f"clock is {r.offset_ms:+g} ms off {r.source} per {r.daemon} "
            f"(max {p.max_offset_ms:g} ms)",
            observed=observed,
            expected=expected,
        )
        return
    unsynced = [r for r in sync.reports if not r.synchronised]
    if unsynced:
        r = unsynced[0]
        yield Result.failed(
            CLOCK,
            f"clock is not synchronised: {r.daemon} reports {r.detail}",
            observed=observed,
            expected=expected,
        )
        return
    if sync.reports:
        r = sync.reports[0]
        yield Result.errored(
            CLOCK,
            f"clock is synchronised per {r.daemon} ({r.detail}), but no daemon reports the offset",
            observed=observed,
            expected=expected,
        )
        return
    container = facts.container()
    if container:
        yield Result.not_applicable(
            CLOCK,
            f"runs in a {container} container, whose clock is the host's (a container "
            f"cannot set it); check the host ({'; '.join(sync.silent) or 'no time daemon here'})",
        )
        return
    if sync.silent:
        yield Result.errored(
            CLOCK,
            f"a time daemon is installed but not answering: {'; '.join(sync.silent)}",
            observed=observed,
            expected=expected,
        )
        return
    yield Result.failed(
        CLOCK,
        f"no time synchronisation daemon found (looked for {', '.join(sync.looked_for)})",
        observed=observed,
        expected=expected,
    )
