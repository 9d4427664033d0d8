"""Clock synchronisation as each time daemon reports it, parsed strictly.

One :class:`ClockReport` per daemon that answered: whether it considers the clock
synchronised, and the clock's offset from its source when it says so. The readers:

- chrony: ``chronyc -n tracking`` (``System time : X seconds fast|slow of NTP time``,
  ``Leap status : Normal | Not synchronised``, reference id 0 when unsynchronised);
- ntpd / ntpsec: ``ntpq -pn`` (the peer marked ``*`` (or ``o``, PPS) is the one the clock
  follows; its ``offset`` column is in milliseconds);
- systemd-timesyncd: ``timedatectl show -p NTP -p NTPSynchronized`` (the kernel's
  synchronised flag, whoever sets it) and ``timedatectl timesync-status`` (``Offset:``);
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError

FACT = "host.logs.time_sync"


@dataclass(frozen=True)
class ClockReport:
    """What one time daemon says about the clock."""

    daemon: str  # chrony | ntpd | timesyncd | kernel
    synchronised: bool
    offset_ms: float | None  # clock minus source; None when the daemon does not say
    source: str  # the server or reference the clock follows ("" when none)
    detail: str  # the daemon's own words (leap status, peer line ...)


def _fields(stdout: str, call: str, separator: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if separator not in line:
            raise FactParseError(FACT, call, "unrecognised line", line)
        key, value = line.split(separator, 1)
        out[key.strip()] = value.strip()
    return out


_CHRONY_SYSTEM = re.compile(r"^(\d+(?:\.\d+)?) seconds (fast|slow) of NTP time$")


def parse_chronyc_tracking(stdout: str, call: str) -> ClockReport:
    fields = _fields(stdout, call, " : ")
    for key in ("Reference ID", "System time", "Leap status"):
        if key not in fields:
            raise FactParseError(FACT, call, f"no {key!r} line", stdout)
    system = _CHRONY_SYSTEM.match(fields["System time"])
    if not system:
        raise FactParseError(FACT, call, "unrecognised System time", fields["System time"])
    seconds = float(system.group(1)) * (1 if system.group(2) == "fast" else -1)
    reference = fields["Reference ID"]
    leap = fields["Leap status"]
    unsynchronised = leap == "Not synchronised" or reference.startswith("00000000")
    if leap not in ("Normal", "Insert second", "Delete second", "Not synchronised"):
        raise FactParseError(FACT, call, "unknown Leap status", leap)
    source = "" if unsynchronised else reference
    return ClockReport(
        "chrony",
        not unsynchronised,
        None if unsynchronised else round(seconds * 1000, 6),
        source,
        f"Leap status: {leap}",
    )


_NTPQ_HEADER = re.compile(r"^\s*remote\s+refid\s+st\s+t\s+when\s+poll\s+reach\s+delay\s+offset")


def parse_ntpq_peers(stdout: str, call: str) -> ClockReport:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if len(lines) < 2 or not _NTPQ_HEADER.match(lines[0]) or not set(lines[1]) <= {"="}:
        raise FactParseError(FACT, call, "not an ntpq peer table", stdout)
    selected = None
    for line in lines[2:]:
        tally, rest = line[0], line[1:].split()
        if len(rest) < 10:
            raise FactParseError(FACT, call, "short peer line", line)
        if tally in "*o":
            selected = (rest, line)
    if selected is None:
        return ClockReport("ntpd", False, None, "", "no peer is selected (no '*' in ntpq -pn)")
    rest, line = selected
    try:
        offset = float(rest[8])
    except ValueError as exc:
        raise FactParseError(FACT, call, "unreadable offset", line) from exc
    # ntpq prints NTP's offset, source minus clock; the report keeps clock minus source.
    return ClockReport("ntpd", True, -offset, rest[0], line.strip())


def parse_timedatectl_show(stdout: str, call: str) -> dict[str, str]:
    fields = _fields(stdout, call, "=")
    for key in ("NTP", "NTPSynchronized"):
        if fields.get(key) not in ("yes", "no"):
            raise FactParseError(FACT, call, f"no yes/no {key}= line", stdout)
    return fields


_SPAN = re.compile(r"([+-]?\d+(?:\.\d+)?)(us|ms|s|min|h)")
_SPAN_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "min": 60000.0, "h": 3600000.0}


def parse_timesync_status(stdout: str, call: str) -> ClockReport:
    """``timedatectl timesync-status``: the last NTP reply systemd-timesyncd accepted."""
    fields = _fields(stdout, call, ": ")
    if "Server" not in fields:
        raise FactParseError(FACT, call, "no Server line", stdout)
    offset_text = fields.get("Offset")
    if offset_text is None:  # no reply accepted yet: timesyncd prints no Offset line
        return ClockReport("timesyncd", False, None, fields["Server"], "no NTP reply yet")
    parts = offset_text.split()
    sign = -1.0 if offset_text.startswith("-") else 1.0
    total = 0.0
    for part in parts:
        match = _SPAN.fullmatch(part)
        if not match:
            raise FactParseError(FACT, call, "unreadable Offset", offset_text)
        total += abs(float(match.group(1))) * _SPAN_MS[match.group(2)]
    leap = fields.get("Leap", "")
    synchronised = leap != "not synchronized"
    return ClockReport(
        "timesyncd",
        synchronised,
        round(-sign * total, 6),  # timesyncd's Offset is NTP's: source minus clock
        fields["Server"],
        f"Leap: {leap}" if leap else "",
    )
