"""Time Machine facts (macOS): configured destinations and the newest backup.

``tmutil destinationinfo`` lists destinations as ``Key : value`` blocks under a rule of
``=``; with none it prints ``tmutil: No destinations configured.`` (and, per public
reports, still exits 0). ``tmutil latestbackup`` prints the path of the newest completed
backup, whose last component is its time, ``YYYY-MM-DD-HHMMSS`` (HFS+:
``.../Backups.backupdb/<mac>/2026-11-20-101530``; APFS, macOS 11 and later:
``/Volumes/.timemachine/<ID>/2026-11-20-101530.backup/2026-11-20-101530.backup``), in the
Mac's local time. That zone is read from ``TZ`` when the agent's environment sets it,
else it is the system's (the agent runs on the Mac it checks). ``latestbackup`` needs
Full Disk Access on recent macOS; a denial is an error, never "no backup".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tillsyn.collectors.errors import FactParseError

DESTINATIONINFO_ARGV = ["tmutil", "destinationinfo"]
LATESTBACKUP_ARGV = ["tmutil", "latestbackup"]

_NO_DESTINATION = "No destinations configured"
_FIELD = re.compile(r"^([A-Za-z ]+?)\s*: (.*)$")
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}-\d{6})(?:\.(?:backup|inprogress|previous))?$")


@dataclass(frozen=True)
class TimeMachineDestination:
    name: str
    kind: str  # Local, Network
    id: str


@dataclass(frozen=True)
class TimeMachineLatest:
    path: str
    time: datetime


def parse_destinationinfo(
    stdout: str, stderr: str, call: str
) -> tuple[TimeMachineDestination, ...]:
    fact = "host.backup.timemachine_destinations"
    if _NO_DESTINATION in stdout or _NO_DESTINATION in stderr:
        return ()
    blocks: list[dict[str, str]] = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if set(line.strip()) == {"="}:
            blocks.append({})
            continue
        match = _FIELD.match(line)
        if not match or not blocks:
            raise FactParseError(fact, call, "unexpected tmutil destinationinfo line", line)
        blocks[-1][match.group(1).strip()] = match.group(2).strip()
    if not blocks:
        raise FactParseError(fact, call, "no destination block and no 'none' message", stdout)
    out: list[TimeMachineDestination] = []
    for block in blocks:
        if "Name" not in block or "ID" not in block:
            raise FactParseError(fact, call, "destination block lacks Name or ID", repr(block))
        out.append(TimeMachineDestination(block["Name"], block.get("Kind", ""), block["ID"]))
    return tuple(out)


def local_zone(env: dict[str, str]) -> tzinfo:
    """The Mac's zone: ``TZ`` from the environment when it names one, else the system's."""
    name = env.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


def parse_latestbackup(stdout: str, zone: tzinfo, call: str) -> TimeMachineLatest | None:
    """The newest backup's path and time, or None when tmutil printed nothing (none yet)."""
    fact = "host.backup.timemachine_latest"
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    if len(lines) != 1 or not lines[0].startswith("/"):
        raise FactParseError(fact, call, "expected one backup path", stdout)
    path = lines[0].rstrip("/")
    match = _STAMP.search(path.rsplit("/", 1)[-1])
    if not match:
        raise FactParseError(fact, call, "the path does not end in a backup time", path)
    local = datetime.strptime(match.group(1), "%Y-%m-%d-%H%M%S").replace(tzinfo=zone)
    return TimeMachineLatest(path, local.astimezone(UTC))
