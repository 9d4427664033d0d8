"""Windows event logs: each log's configuration and oldest event, the install date, forwarding.

Why these sources, and what they print (Windows has no retention setting in days: a log
keeps what fits into its size, or keeps everything and stops, or archives itself):

- ``wevtutil gl LOG`` (get-log) prints the channel's configuration as indented ``key:
  value`` lines: ``enabled: true``, ``type: Admin``, ``channelAccess: O:BAG:...`` and, under
  ``logging:``, ``logFileName: %SystemRoot%\\System32\\Winevt\\Logs\\Security.evtx``,
  ``retention: false``, ``autoBackup: false``, ``maxSize: 20971520`` (bytes). The keys are
  the channel configuration's XML names and are not translated. ``retention`` and
  ``autoBackup`` are the three modes Event Viewer offers (Microsoft Learn, "Set Log
  Retention Policy", ``wevtutil sl LOG /rt: /ab:``): false/false "overwrite events as
  needed" (the log keeps whatever fits in maxSize), true/true "archive the log when full,
  do not overwrite events" (full logs become ``Archive-LOG-<time>.evtx`` beside the log,
  which Windows never deletes), true/false "do not overwrite events (clear logs
  manually)" (nothing is lost, but new events are dropped once the log is full).
- ``wevtutil qe LOG /c:1 /rd:false /f:xml`` prints the oldest event still in the log as
  one ``<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>`` element
  whose ``<TimeCreated SystemTime='2026-03-01T08:15:02.1234567Z'/>`` is UTC; an empty log
  prints nothing. Reading Security needs administrator rights (SeSecurityPrivilege):
  wevtutil then exits with the Win32 error as its status, 5 (ERROR_ACCESS_DENIED), and
  says "Access is denied." in the display language, so the status decides, not the words.
  Any other non-zero status (15007: no such channel) is an error as it stands.
- ``wevtutil gli LOG`` (get-log-info: ``fileSize: 1118208``, ``numberOfLogRecords: 20``)
  is read for a host younger than the policy, to project how long the log's maxSize
  holds at the rate it fills (as the Linux journal's cap is projected), and in "do not
  overwrite events" mode, where a full log stops recording: the file has then reached
  its maxSize (less than one 64 KiB evtx chunk left).
- ``wevtutil qe LOG /c:1 /rd:true /f:xml`` (the newest event, same layout as the
  oldest) is read in "do not overwrite events" mode too: a log that stopped recording
  has no recent event however old its oldest one is.
- Archives ("archive the log when full"): Windows writes the full log to
  ``Archive-<log file name>-YYYY-MM-DD-hh-mm-ss-nnn.evtx`` beside the log file, the time
  in UTC (Microsoft Learn, event 1105 "Event log automatic backup"). The directory of
  ``logFileName`` (environment variables expanded, placed by :mod:`.windows_paths`) is
  listed; each archive's time comes from its name, or from the file's modification time
  when the name holds no valid time (a renamed copy). A directory that cannot be listed
  is an error, never "no archives".
- The install date: ``InstallDate`` (REG_DWORD, Unix seconds) under
  ``HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion``, read with ``reg query`` by
  :mod:`.windows_registry`. A feature update resets it to the upgrade's date; that only
  makes the host look younger, and the projection against maxSize still has to hold.
- Forwarding off the host: Windows Event Forwarding on a source computer is the
  "Configure target Subscription Manager" policy, one REG_SZ value per collector
  (``1    REG_SZ    Server=http://wec.example.org:5985/wsman/SubscriptionManager/WEC,Refresh=60``)
  under ``HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\EventLog\\EventForwarding\\
  SubscriptionManager``; no such key is "not configured". A value must name its
  collector as ``Server=http://...`` or ``Server=https://...``; any other string (empty,
  a bare host name) is an error naming the value, never a collector. It works through the WinRM
  service, so forwarding counts as enabled when WinRM starts automatically (``Start``
  0x2 under ``HKLM\\SYSTEM\\CurrentControlSet\\Services\\WinRM``), as Microsoft's WEF
  deployment guidance asks. Third-party shippers (Splunk, Winlogbeat, NXLog, agents) are
  not recognised, like on Linux only the system's own forwarding is.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PureWindowsPath

from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host import windows_paths
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.logs_shipping import Forwarder
from tillsyn.collectors.host.windows_registry import key_exists, parse_reg_query, reg_dword

CONFIG_FACT = "host.logs.windows_event_log"
OLDEST_FACT = "host.logs.windows_oldest_event"
NEWEST_FACT = "host.logs.windows_newest_event"
INFO_FACT = "host.logs.windows_event_log_info"
ARCHIVES_FACT = "host.logs.windows_event_archives"
INSTALLED_FACT = "host.logs.installed_at"
SHIPPING_FACT = "host.logs.shipping"

#: The logs judged: the three classic Windows logs.
EVENT_LOGS = ("Security", "System", "Application")
ERROR_ACCESS_DENIED = 5
CURRENT_VERSION_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
INSTALL_DATE_QUERY = ["reg", "query", CURRENT_VERSION_KEY, "/v", "InstallDate"]
WEF_KEY = r"HKLM\SOFTWARE\Policies\Microsoft\Windows\EventLog\EventForwarding\SubscriptionManager"
WEF_QUERY = ["reg", "query", WEF_KEY]
WINRM_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services\WinRM"
WINRM_START_QUERY = ["reg", "query", WINRM_KEY, "/v", "Start"]
WEF = "Windows Event Forwarding"
START_AUTOMATIC = 2
REQUIRED = ("enabled", "retention", "autoBackup", "maxSize", "logFileName")

_SYSTEM_TIME = re.compile(r"<TimeCreated\s+SystemTime\s*=\s*['\"]([^'\"]+)['\"]")
_ISO_UTC = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")
_SERVER = re.compile(r"(?:^|,)\s*Server\s*=\s*(https?://[^,\s]+)", re.I)
_ARCHIVE_TIME = re.compile(r"-(\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)-(\d{3})\.evtx$", re.I)
#: An evtx file grows in chunks of this size; less than one left is a full log.
EVTX_CHUNK = 64 * 1024


@dataclass(frozen=True)
class EventLogConfig:
    """``wevtutil gl``: whether the log records, and what happens when it is full."""

    name: str
    enabled: bool
    retention: bool  # true: do not overwrite events
    auto_backup: bool  # true (with retention): archive the full log to a file
    max_size: int  # bytes
    log_file: str

    @property
    def mode(self) -> str:
        """``overwrite`` (circular), ``archive`` (AutoBackup) or ``retain`` (manual clear).

        Without ``retention`` events are overwritten whatever ``autoBackup`` says
        (wevtutil accepts /ab:true only with /rt:true), so that is read as overwrite.
        """
        if not self.retention:
            return "overwrite"
        return "archive" if self.auto_backup else "retain"


@dataclass(frozen=True)
class EventLogInfo:
    """``wevtutil gli``: how big the log file is and how many events it holds."""

    file_size: int
    records: int


@dataclass(frozen=True)
class EventLogArchive:
    """One ``Archive-<log>-<time>.evtx`` file: where it is and when it was cut."""

    path: str  # the Windows path
    created: datetime  # UTC
    basis: str  # "file name" or "modification time"


@dataclass(frozen=True)
class EventLogArchives:
    """The archives found beside a log file (oldest first), and the directory listed."""

    directory: str
    pattern: str
    archives: tuple[EventLogArchive, ...]


def get_log_argv(name: str) -> list[str]:
    return ["wevtutil", "gl", name]


def oldest_event_argv(name: str) -> list[str]:
    return ["wevtutil", "qe", name, "/c:1", "/rd:false", "/f:xml"]


def newest_event_argv(name: str) -> list[str]:
    return ["wevtutil", "qe", name, "/c:1", "/rd:true", "/f:xml"]


def log_info_argv(name: str) -> list[str]:
    return ["wevtutil", "gli", name]


def wevtutil_failure(fact: str, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
    """Raise for any non-zero exit: status 5 is access denied, the rest a failure."""
    if returncode == 0:
        return
    said = stderr.strip() or stdout.strip() or "no output"
    call = " ".join(argv)
    if returncode == ERROR_ACCESS_DENIED:
        raise FactPermissionDenied(
            fact,
            call,
            f"access denied (exit status 5: {said.splitlines()[0]}); reading the "
            f"{argv[2]} log needs administrator rights",
        )
    raise FactCommandFailed(fact, argv, returncode, said)


def _flag(fields: dict[str, str], key: str, call: str, stdout: str) -> bool:
    value = fields[key].lower()
    if value not in ("true", "false"):
        raise FactParseError(CONFIG_FACT, call, f"{key} is neither true nor false", stdout)
    return value == "true"


def parse_get_log(stdout: str, name: str, call: str) -> EventLogConfig:
    """The ``key: value`` lines of ``wevtutil gl``; a missing key is a parse error."""
    fields: dict[str, str] = {}
    for raw in stdout.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon or not re.fullmatch(r"[A-Za-z]+", key.strip()):
            raise FactParseError(CONFIG_FACT, call, "not a 'key: value' line", line)
        fields[key.strip()] = value.strip()
    missing = [key for key in REQUIRED if key not in fields]
    if missing:
        raise FactParseError(CONFIG_FACT, call, f"no {missing[0]!r} line", stdout)
    if not fields["maxSize"].isdigit():
        raise FactParseError(CONFIG_FACT, call, "maxSize is not a number of bytes", stdout)
    return EventLogConfig(
        name=name,
        enabled=_flag(fields, "enabled", call, stdout),
        retention=_flag(fields, "retention", call, stdout),
        auto_backup=_flag(fields, "autoBackup", call, stdout),
        max_size=int(fields["maxSize"]),
        log_file=fields["logFileName"],
    )


def parse_system_time(value: str, call: str) -> datetime:
    """``2026-03-01T08:15:02.1234567Z`` (100 ns ticks) as an aware UTC datetime."""
    match = _ISO_UTC.match(value.strip())
    if match is None:
        raise FactParseError(OLDEST_FACT, call, "SystemTime is not ISO 8601 UTC", value)
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    try:
        stamp = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise FactParseError(OLDEST_FACT, call, "SystemTime is not a valid time", value) from None
    return stamp.replace(microsecond=int(fraction), tzinfo=UTC)


def parse_oldest_event(stdout: str, call: str) -> datetime | None:
    """The event's creation time from ``qe /c:1 /f:xml`` (oldest with ``/rd:false``,
    newest with ``/rd:true``); None for an empty log."""
    text = stdout.strip()
    if not text:
        return None
    if not text.startswith("<Event"):
        raise FactParseError(OLDEST_FACT, call, "output is not an <Event> element", text)
    match = _SYSTEM_TIME.search(text)
    if match is None:
        raise FactParseError(OLDEST_FACT, call, "no <TimeCreated SystemTime=...>", text)
    return parse_system_time(match.group(1), call)


def parse_log_info(stdout: str, call: str) -> EventLogInfo:
    """``fileSize`` and ``numberOfLogRecords`` from ``wevtutil gli``."""
    fields: dict[str, str] = {}
    for raw in stdout.splitlines():
        key, colon, value = raw.strip().partition(":")
        if colon:
            fields[key.strip()] = value.strip()
    size, records = fields.get("fileSize", ""), fields.get("numberOfLogRecords", "")
    if not size.isdigit() or not records.isdigit():
        raise FactParseError(INFO_FACT, call, "no numeric fileSize and numberOfLogRecords", stdout)
    return EventLogInfo(int(size), int(records))


def parse_install_date(returncode: int, stdout: str, stderr: str) -> datetime | None:
    """``InstallDate`` as a UTC datetime; None when the value is absent or 0."""
    call = " ".join(INSTALL_DATE_QUERY)
    if not key_exists(returncode, stderr, INSTALL_DATE_QUERY, INSTALLED_FACT):
        return None
    values = parse_reg_query(stdout, CURRENT_VERSION_KEY, call, INSTALLED_FACT)
    seconds = reg_dword(values, "InstallDate", call, INSTALLED_FACT)
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def parse_subscription_managers(stdout: str) -> list[tuple[str, str]]:
    """(value name, collector URL) for each REG_SZ value of the SubscriptionManager key.

    Each value must hold ``Server=http(s)://...``: an empty string or any other text is
    no collector, and is an error naming the value rather than counted as forwarding.
    """
    call = " ".join(WEF_QUERY)
    values = parse_reg_query(stdout, WEF_KEY, call, SHIPPING_FACT)
    found = []
    for name, (kind, data) in values.items():
        if kind not in ("REG_SZ", "REG_EXPAND_SZ"):
            raise FactParseError(SHIPPING_FACT, call, f"{name} is not a string", f"{kind} {data}")
        server = _SERVER.search(data)
        if server is None:
            raise FactParseError(
                SHIPPING_FACT,
                call,
                f"value {name!r} under {WEF_KEY} names no collector (no Server=http(s)://...)",
                f"{kind} {data}" if data.strip() else f"{kind} (empty)",
            )
        found.append((name, server.group(1).strip()))
    return found


def parse_winrm_start(returncode: int, stdout: str, stderr: str) -> int | None:
    """The WinRM service's start type (2 automatic, 3 manual, 4 disabled); None: no service."""
    call = " ".join(WINRM_START_QUERY)
    if not key_exists(returncode, stderr, WINRM_START_QUERY, SHIPPING_FACT):
        return None
    return reg_dword(
        parse_reg_query(stdout, WINRM_KEY, call, SHIPPING_FACT), "Start", call, SHIPPING_FACT
    )


# -- reading (the collector's facts call these) -----------------------------------------


def read_config(host: HostBase, name: str) -> EventLogConfig:
    argv = get_log_argv(name)
    result = host.command(CONFIG_FACT, argv, check=False)
    wevtutil_failure(CONFIG_FACT, argv, result.returncode, result.stdout, result.stderr)
    return parse_get_log(result.stdout, name, " ".join(argv))


def read_oldest_event(host: HostBase, name: str) -> datetime | None:
    argv = oldest_event_argv(name)
    result = host.command(OLDEST_FACT, argv, check=False)
    wevtutil_failure(OLDEST_FACT, argv, result.returncode, result.stdout, result.stderr)
    return parse_oldest_event(result.stdout, " ".join(argv))


def read_newest_event(host: HostBase, name: str) -> datetime | None:
    argv = newest_event_argv(name)
    result = host.command(NEWEST_FACT, argv, check=False)
    wevtutil_failure(NEWEST_FACT, argv, result.returncode, result.stdout, result.stderr)
    try:
        return parse_oldest_event(result.stdout, " ".join(argv))
    except FactParseError as exc:
        raise FactParseError(NEWEST_FACT, exc.call, exc.reason) from exc


def is_full(config: EventLogConfig, info: EventLogInfo) -> bool:
    """Whether the log file has reached its maxSize (less than one evtx chunk left)."""
    return info.file_size + EVTX_CHUNK > config.max_size


def _archive_time(name: str) -> datetime | None:
    match = _ARCHIVE_TIME.search(name)
    if match is None:
        return None
    try:
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d-%H-%M-%S")
    except ValueError:
        return None
    return stamp.replace(microsecond=int(match.group(2)) * 1000, tzinfo=UTC)


def read_archives(host: HostBase, config: EventLogConfig) -> EventLogArchives:
    """The ``Archive-<log>-*.evtx`` files in the log file's directory, oldest first."""
    try:
        log_file = windows_paths.normalize(windows_paths.expand_env(config.log_file, host.env))
    except ValueError as exc:
        raise FactParseError(
            ARCHIVES_FACT, config.log_file, f"cannot tell where the log file is: {exc}"
        ) from exc
    windows = PureWindowsPath(log_file)
    directory = str(windows.parent)
    pattern = f"Archive-{windows.stem}-*.evtx"
    try:
        with os.scandir(host.path(directory)) as listing:
            entries = [e for e in listing if fnmatch.fnmatchcase(e.name.lower(), pattern.lower())]
    except PermissionError as exc:
        raise FactPermissionDenied(ARCHIVES_FACT, directory, "permission denied") from exc
    except FileNotFoundError as exc:
        raise FactUnavailable(ARCHIVES_FACT, directory, "does not exist") from exc
    except OSError as exc:
        raise FactUnavailable(ARCHIVES_FACT, directory, exc.strerror or str(exc)) from exc
    archives = []
    for entry in entries:
        shown = f"{directory}\\{entry.name}"
        created = _archive_time(entry.name)
        basis = "file name"
        if created is None:
            try:
                created = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
            except OSError as exc:
                raise FactUnavailable(ARCHIVES_FACT, shown, exc.strerror or str(exc)) from exc
            basis = "modification time"
        archives.append(EventLogArchive(shown, created, basis))
    archives.sort(key=lambda a: a.created)
    return EventLogArchives(directory, pattern, tuple(archives))


def read_info(host: HostBase, name: str) -> EventLogInfo:
    argv = log_info_argv(name)
    result = host.command(INFO_FACT, argv, check=False)
    wevtutil_failure(INFO_FACT, argv, result.returncode, result.stdout, result.stderr)
    return parse_log_info(result.stdout, " ".join(argv))


def read_install_date(host: HostBase) -> datetime | None:
    result = host.command(INSTALLED_FACT, INSTALL_DATE_QUERY, ok_codes=(0, 1))
    return parse_install_date(result.returncode, result.stdout, result.stderr)


def read_forwarders(host: HostBase) -> list[Forwarder]:
    """One forwarder per configured subscription manager; enabled when WinRM auto-starts."""
    result = host.command(SHIPPING_FACT, WEF_QUERY, ok_codes=(0, 1))
    if not key_exists(result.returncode, result.stderr, WEF_QUERY, SHIPPING_FACT):
        return []
    managers = parse_subscription_managers(result.stdout)
    if not managers:
        return []
    start = host.command(SHIPPING_FACT, WINRM_START_QUERY, ok_codes=(0, 1))
    enabled = parse_winrm_start(start.returncode, start.stdout, start.stderr) == START_AUTOMATIC
    return [
        Forwarder(WEF, url, "SubscriptionManager policy (WinRM)", f"{WEF_KEY}\\{name}", enabled)
        for name, url in managers
    ]
