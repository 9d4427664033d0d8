"""Windows clock synchronisation: the Windows Time service's own status, then a measurement.

Why two calls: ``w32tm /query /status /verbose`` says whether W32Time follows a source and
which (``Leap Indicator: 0(no warning)``, ``Stratum: 4 (...)``, ``Last Successful Sync
Time: ...``, ``Source: time.windows.com,0x9``; the verbose tail adds ``Phase Offset:
0.0061517s``, ``State Machine: 2 (Sync)`` ...), but its phase offset is the service's
estimate and stays small when it has not heard from its source for days. So the offset
is measured now with ``w32tm /stripchart /computer:SOURCE /samples:1 /dataonly``
(``Tracking time.windows.com [20.101.57.9:123].`` ... ``12:00:00, +00.0123456s``; the
number is the source minus this clock, so the clock's offset is its negation). The phase
offset is used only when the source is no host name (``VM IC Time Synchronization
Provider``: a Hyper-V host), its sign as printed, and only while the last sync is recent:
``Time since Last Good Sync Time: 69.1503311s`` (a duration in seconds, so no locale's
date format is guessed, unlike ``Last Successful Sync Time``) must be at most
:func:`max_sync_age`: twice the ``Poll Interval`` (``6 (64s)``), at least
:data:`MIN_SYNC_AGE` so one missed poll of a fast poller is no failure, or
:data:`UNKNOWN_POLL_SYNC_AGE` (a day) when the poll interval is not printed. An older sync
is not synchronised (``fail``: the phase offset is then the service's stale estimate). No
readable "Time since Last Good Sync Time" leaves the offset unknown, which the check
reports as ``error`` (no measured offset), never as a pass.

Not synchronised (``fail``): source ``Local CMOS Clock`` or ``Free-running System Clock``,
leap indicator 3, stratum 0, or no successful sync; and the service stopped, which w32tm
reports as ``The following error occurred: The service has not been started.
(0x80070426)``. The HRESULT decides, not the words (they are translated). ``(0x80070005)``
is access denied; any other HRESULT or exit status is an error. The labels are read in
English only: a status in another display language is a parse error, never a pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactError,
    FactParseError,
    FactPermissionDenied,
)
from tillsyn.collectors.host.logs_time import FACT, ClockReport

W32TM_STATUS = ["w32tm", "/query", "/status", "/verbose"]
DAEMON = "w32time"
SERVICE_NOT_STARTED = "0x80070426"
ACCESS_DENIED = "0x80070005"
LOCAL_SOURCES = ("local cmos clock", "free-running system clock")
REQUIRED = ("Leap Indicator", "Stratum", "Last Successful Sync Time", "Source")

_HRESULT = re.compile(r"\((0x[0-9A-Fa-f]{8})\)\s*$")
_LEADING_NUMBER = re.compile(r"^(\d+)\s*(?:\(|$)")
_SECONDS = re.compile(r"^([+-]?\d+[.,]\d+)s$")
_HOST = re.compile(r"^[A-Za-z0-9._-]+$")
_TRACKING = re.compile(r"^Tracking (\S+) \[(.+)\]\.$")
_SAMPLE = re.compile(r"^\S+, ([+-]\d+[.,]\d+)s$")
_SAMPLE_ERROR = re.compile(r"^\S+, error: (0x[0-9A-Fa-f]{8})$")
_KNOWN_ERRORS = {"0x800705b4": "timed out"}
_POLL = re.compile(r"^\d+\s*\((\d+)s\)$")

#: A source without a host name (Hyper-V) is trusted while its last good sync is at most
#: this many poll intervals old ...
SYNC_POLLS = 2
#: ... but never less than this (a 64 s poller missing one poll is no failure) ...
MIN_SYNC_AGE = 3600.0
#: ... and a day when w32tm does not print its poll interval.
UNKNOWN_POLL_SYNC_AGE = 86400.0


def max_sync_age(poll_seconds: float | None) -> float:
    """How old the last good sync may be, in seconds, for the phase offset to count."""
    if poll_seconds is None:
        return UNKNOWN_POLL_SYNC_AGE
    return max(SYNC_POLLS * poll_seconds, MIN_SYNC_AGE)


def stripchart_argv(peer: str) -> list[str]:
    return ["w32tm", "/stripchart", f"/computer:{peer}", "/samples:1", "/dataonly"]


def _seconds_ms(text: str) -> float | None:
    match = _SECONDS.match(text)
    return None if match is None else round(float(match.group(1).replace(",", ".")) * 1000, 6)


def w32tm_failure(stdout: str, stderr: str, returncode: int, call: str) -> ClockReport | None:
    """An HRESULT instead of a status: the service stopped is a report, the rest raise."""
    said = [line.strip() for line in f"{stdout}\n{stderr}".splitlines() if line.strip()]
    coded = [(m.group(1).lower(), line) for line in said if (m := _HRESULT.search(line))]
    for code, line in coded:
        if code == SERVICE_NOT_STARTED:
            detail = f"the Windows Time service is not running: {line}"
            return ClockReport(DAEMON, False, None, "", detail)
        if code == ACCESS_DENIED:
            raise FactPermissionDenied(FACT, call, f"access denied: {line}")
    if coded or returncode != 0:
        raise FactCommandFailed(FACT, call.split(" "), returncode, "\n".join(said))
    return None


@dataclass(frozen=True)
class W32tmStatus:
    """``w32tm /query /status /verbose`` as labelled fields, with what they mean."""

    fields: dict[str, str]
    why_not: str  # "" when W32Time follows an external source

    @property
    def source(self) -> str:
        return self.fields["Source"]

    @property
    def peer(self) -> str | None:
        """The source's host name ("time.windows.com,0x9" -> "time.windows.com")."""
        name = self.source.split(",")[0].strip()
        return name if _HOST.match(name) else None

    def report(self, measured: tuple[float, str] | None) -> ClockReport:
        if self.why_not:
            return ClockReport(DAEMON, False, None, self.source, self.why_not)
        detail = "; ".join(
            f"{key}: {self.fields[key]}"
            for key in ("Source", "Last Successful Sync Time", "State Machine")
            if key in self.fields
        )
        if measured is not None:
            return ClockReport(DAEMON, True, measured[0], measured[1], detail)
        phase = self.fields.get("Phase Offset")
        offset = None if phase is None else _seconds_ms(phase)
        shown = f"; Phase Offset: {phase}" if phase is not None else "; no Phase Offset"
        since = self.sync_age
        if since is None:
            # The estimate cannot be dated: no measured offset, so the check errs.
            why = "; no readable 'Time since Last Good Sync Time', so the offset is unknown"
            return ClockReport(DAEMON, True, None, self.source, detail + shown + why)
        bound = max_sync_age(self.poll_seconds)
        age = f"; last good sync {since:g} s ago (at most {bound:g} s)"
        if since > bound:
            stale = (
                f"{detail}; last good sync {since:g} s ago, more than {bound:g} s "
                f"({SYNC_POLLS} x poll interval, at least {MIN_SYNC_AGE:g} s): the "
                "Phase Offset is a stale estimate"
            )
            return ClockReport(DAEMON, False, None, self.source, stale)
        return ClockReport(DAEMON, True, offset, self.source, detail + shown + age)

    @property
    def sync_age(self) -> float | None:
        """Seconds since the last good sync, from the verbose tail; None if not printed."""
        text = self.fields.get("Time since Last Good Sync Time")
        ms = None if text is None else _seconds_ms(text)
        return None if ms is None else ms / 1000

    @property
    def poll_seconds(self) -> float | None:
        """The poll interval (``10 (1024s)``) in seconds; None if not printed."""
        match = _POLL.match(self.fields.get("Poll Interval", ""))
        return None if match is None else float(match.group(1))


def parse_w32tm_status(stdout: str, call: str) -> W32tmStatus:
    fields: dict[str, str] = {}
    for raw in stdout.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise FactParseError(FACT, call, "unrecognised line", line)
        fields[key.strip()] = value.strip()
    missing = [key for key in REQUIRED if key not in fields]
    if missing:
        raise FactParseError(
            FACT,
            call,
            f"no {missing[0]!r} line (only English w32tm output is read; "
            "another display language is not guessed)",
            stdout,
        )
    leap = _LEADING_NUMBER.match(fields["Leap Indicator"])
    stratum = _LEADING_NUMBER.match(fields["Stratum"])
    if leap is None or stratum is None:
        raise FactParseError(FACT, call, "unreadable Leap Indicator or Stratum", stdout)
    phase = fields.get("Phase Offset")
    if phase is not None and _seconds_ms(phase) is None:
        raise FactParseError(FACT, call, "unreadable Phase Offset", phase)
    since = fields.get("Time since Last Good Sync Time")
    if since is not None and _seconds_ms(since) is None:
        raise FactParseError(FACT, call, "unreadable Time since Last Good Sync Time", since)
    poll = fields.get("Poll Interval")
    if poll is not None and _POLL.match(poll) is None:
        raise FactParseError(FACT, call, "unreadable Poll Interval", poll)
    source = fields["Source"].split(",")[0].strip()
    why = ""
    if not source or source.lower() in LOCAL_SOURCES:
        why = f"Source: {fields['Source'] or '(none)'}"
    elif leap.group(1) == "3":
        why = f"Leap Indicator: {fields['Leap Indicator']}"
    elif stratum.group(1) == "0":
        why = f"Stratum: {fields['Stratum']}"
    elif fields["Last Successful Sync Time"].lower() in ("", "unspecified"):
        why = "Last Successful Sync Time: unspecified"
    return W32tmStatus(fields, why)


def parse_stripchart(
    stdout: str, stderr: str, returncode: int, call: str, peer: str
) -> tuple[float, str]:
    """One stripchart sample: (this clock minus the source in ms, "name (address)")."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    tracking = _TRACKING.match(lines[0]) if lines else None
    if returncode != 0:
        raise FactCommandFailed(FACT, call.split(" "), returncode, stderr or stdout)
    if tracking is None:
        raise FactParseError(FACT, call, "no 'Tracking NAME [ADDRESS].' line", stdout)
    address = tracking.group(2)
    host_port = re.match(r"^([^:]+):\d+$", address)
    source = f"{tracking.group(1)} ({host_port.group(1) if host_port else address})"
    for line in lines[1:]:
        if sample := _SAMPLE.match(line):
            return round(-float(sample.group(1).replace(",", ".")) * 1000, 6), source
    for line in lines[1:]:
        if failed := _SAMPLE_ERROR.match(line):
            code = failed.group(1).lower()
            meaning = _KNOWN_ERRORS.get(code, "no sample")
            raise FactError(FACT, call, f"no answer from {peer}: error {code} ({meaning})")
    raise FactParseError(FACT, call, "no offset sample ('HH:MM:SS, +00.0000000s')", stdout)
