"""journald: the effective retention settings and what the journal really holds.

Settings come from ``journald.conf`` and its drop-ins merged as systemd merges them (see
:mod:`logs_systemd`). What the journal holds comes from two cheap journalctl calls:
``journalctl --disk-usage`` (the bytes of every journal file) and ``journalctl --list-boots
--output=json`` (first and last entry of each boot: the smallest first entry is the oldest
entry still present; journalctl reads it from the entry arrays, not by dumping entries).
``--list-boots`` has printed JSON since systemd 251; older ones print a table, read too
(with ``TZ=UTC`` so the times carry no local zone).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from tillsyn.collectors.errors import FactParseError, FactPermissionDenied
from tillsyn.collectors.host.logs_systemd import ParsedConfig, parse_size, parse_timespan
from tillsyn.collectors.parsing import load_json

#: journald's compiled-in defaults (journald.conf(5), systemd 252).
DEFAULT_STORAGE = "auto"
STORAGE_VALUES = ("volatile", "persistent", "auto", "none")
#: Defaults of the size caps: a share of the journal's filesystem, each capped to 4G.
DEFAULT_MAX_USE_SHARE = 0.10
DEFAULT_KEEP_FREE_SHARE = 0.15
DEFAULT_CAP = 4 << 30


@dataclass(frozen=True)
class JournaldSettings:
    """The values journald runs with after merging every file (None: the default)."""

    files: tuple[str, ...]
    masked: tuple[str, ...]
    storage: str
    max_retention_seconds: float | None  # None or 0: no time limit
    system_max_use: int | None
    system_keep_free: int | None
    system_max_files: int | None
    ignored: tuple[str, ...]
    #: Where each effective value was set, e.g. {"Storage": "/etc/systemd/journald.conf:14"}.
    set_at: tuple[tuple[str, str], ...] = ()


def resolve_settings(parsed: ParsedConfig) -> JournaldSettings:
    """Apply the assignments in order, as journald does; refused values keep the old one."""
    storage = DEFAULT_STORAGE
    retention: float | None = None
    max_use: int | None = None
    keep_free: int | None = None
    max_files: int | None = None
    ignored = list(parsed.ignored)
    set_at: dict[str, str] = {}
    for a in parsed.assignments:
        where = f"{a.path}:{a.line}"
        if a.section != "Journal":
            continue
        refused = False
        if a.key == "Storage":
            if a.value in STORAGE_VALUES:
                storage = a.value
            else:
                refused = True
        elif a.key == "MaxRetentionSec":
            span = parse_timespan(a.value)
            if span is None:
                refused = True
            else:
                retention = span
        elif a.key in ("SystemMaxUse", "SystemKeepFree"):
            size = parse_size(a.value)
            if size is None:
                refused = True
            elif a.key == "SystemMaxUse":
                max_use = size
            else:
                keep_free = size
        elif a.key == "SystemMaxFiles":
            if a.value.isdigit():
                max_files = int(a.value)
            else:
                refused = True
        else:
            continue
        if refused:
            ignored.append(f"{where}: journald ignores {a.key}={a.value!r} (invalid value)")
        else:
            set_at[a.key] = where
    return JournaldSettings(
        files=tuple(parsed.files),
        masked=tuple(parsed.masked),
        storage=storage,
        max_retention_seconds=retention,
        system_max_use=max_use,
        system_keep_free=keep_free,
        system_max_files=max_files,
        ignored=tuple(ignored),
        set_at=tuple(sorted(set_at.items())),
    )


@dataclass(frozen=True)
class JournalBoot:
    index: int
    boot_id: str
    first_entry: datetime
    last_entry: datetime


#: journalctl's notice when the caller sees only part of the journal.
PARTIAL_VIEW = "You are currently not seeing messages from other users and the system"
NO_PERMISSION = "No journal files were opened due to insufficient permissions"


def refuse_partial_view(fact: str, call: str, stderr: str) -> None:
    """A journal read without access to the system journal is not the journal."""
    if PARTIAL_VIEW in stderr or NO_PERMISSION in stderr:
        raise FactPermissionDenied(
            fact,
            call,
            "this user cannot read the system journal (needs root or the systemd-journal "
            "or adm group)",
        )


_USAGE = re.compile(
    r"^Archived and active journals take up (\d+(?:\.\d+)?)([KMGTPE]?)B? in the file system\.$"
)


def parse_disk_usage(stdout: str, call: str) -> int:
    """Bytes from ``journalctl --disk-usage`` (``... take up 8.0M in the file system.``)."""
    fact = "host.logs.journal_usage"
    lines = [line for line in stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        raise FactParseError(fact, call, "expected one line of disk usage", stdout)
    match = _USAGE.match(lines[0].strip())
    if not match:
        raise FactParseError(fact, call, "unrecognised disk usage line", lines[0])
    size = parse_size(match.group(1) + match.group(2))
    if size is None:  # pragma: no cover - the regex admits only what parse_size reads
        raise FactParseError(fact, call, "unrecognised size", lines[0])
    return size


_TABLE_ROW = re.compile(
    r"^\s*(-?\d+)\s+([0-9a-f]{32})\s+\w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC"
    r"\s*(?:—|\.\.\.|\s)\s*\w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\s*$"
)


def _from_usec(value: object, fact: str, call: str, snippet: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise FactParseError(fact, call, "entry time is not a positive integer", snippet)
    return datetime.fromtimestamp(value / 1e6, UTC)


def parse_list_boots(stdout: str, call: str) -> tuple[JournalBoot, ...]:
    """Boots from ``journalctl --list-boots`` (JSON since systemd 251, else the table)."""
    fact = "host.logs.journal_boots"
    text = stdout.strip()
    if not text:
        return ()
    if text.startswith("["):
        data = load_json(fact, call, text)
        if not isinstance(data, list):
            raise FactParseError(fact, call, "expected a JSON array of boots", text)
        boots = []
        for item in data:
            snippet = json.dumps(item)[:120]
            if not isinstance(item, dict) or not isinstance(item.get("boot_id"), str):
                raise FactParseError(fact, call, "boot without a boot_id", snippet)
            boots.append(
                JournalBoot(
                    index=int(item.get("index", 0)),
                    boot_id=item["boot_id"],
                    first_entry=_from_usec(item.get("first_entry"), fact, call, snippet),
                    last_entry=_from_usec(item.get("last_entry"), fact, call, snippet),
                )
            )
        return tuple(boots)
    lines = text.splitlines()
    if not lines[0].split()[:2] == ["IDX", "BOOT"]:
        raise FactParseError(fact, call, "neither JSON nor the boot table", lines[0])
    boots = []
    for line in lines[1:]:
        match = _TABLE_ROW.match(line)
        if not match:
            raise FactParseError(fact, call, "unrecognised boot line", line)
        first, last = (
            datetime.strptime(match.group(n), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            for n in (3, 4)
        )
        boots.append(JournalBoot(int(match.group(1)), match.group(2), first, last))
    return tuple(boots)


def parse_birth_time(stdout: str, call: str) -> datetime | None:
    """``stat --format=%W /``: the root filesystem's birth (install) time, None if unknown."""
    text = stdout.strip()
    if not re.fullmatch(r"-?\d+", text):
        raise FactParseError("host.logs.installed_at", call, "expected seconds", stdout)
    seconds = int(text)
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None
