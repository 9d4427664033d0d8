"""macOS: how far back the unified log reaches, when the Mac was set up, syslogd forwarding.

Why these sources:

- The unified log (logd) has no retention setting in days. logd keeps its tracev3 files
  under /var/db/diagnostics within size limits of its own (Persist about 500 MB), and
  some entries carry a fixed lifetime (``ttl``, 1 to 30 days); the profiles under
  /System/Library/Preferences/Logging only say what is persisted, not for how long. So
  the evidence is what is there: ``log stats --overview`` summarises the whole store,
  including the time of its oldest and newest entry (``start:`` and ``end:`` lines,
  beside its size and event counts; documented as "the store spans <start> to <end>"
  in public notes that quote it). Exactly one of each is accepted. The oldest entry is
  the oldest persisted entry of any kind: some entries (Special, Signpost, long ``ttl``)
  outlive the Persist store's ordinary log entries, which usually reach back less far,
  and the results say so. It reads the store's statistics rather than every
  entry, unlike ``log show`` whose first line is the oldest entry only after it has
  decoded everything. It is run with ``TZ=UTC``, so times printed without a zone are UTC;
  a time with a zone (``+0000``) is taken as printed. Without root logd refuses to give
  out the system's statistics; that is an error, never an empty store.
- When the Mac was set up: the birth time of the Data volume's root
  (``stat -f %B /System/Volumes/Data``, seconds since the epoch, macOS 10.15 and later).
  The sealed system volume at / is replaced by every macOS update, so its birth time is
  the last update; the Data volume is created when macOS is installed (or the Mac is
  erased) and kept across updates. On older macOS the path does not exist and the age
  of the Mac is unknown, which only ever asks for more history.
- Forwarding: macOS syslogd still reads /etc/syslog.conf, whose ``@host`` actions send what
  reaches syslogd (the syslog() API, not all of the unified log) to a remote host. Lines
  are read with the rsyslog legacy-action rules of :mod:`.logs_shipping`; syslogd is
  always running under launchd, so its enablement is not a question. The shipped file's
  only action, ``install.* @127.0.0.1:32376``, hands installer messages to a local
  service: a loopback target does not leave the host and is not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tillsyn.collectors.errors import FactCommandFailed, FactParseError, FactPermissionDenied
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.logs_journald import parse_birth_time
from tillsyn.collectors.host.logs_shipping import Forwarder, read_config, rsyslog_forwarders

SPAN_FACT = "host.logs.unified_log_span"
INSTALLED_FACT = "host.logs.installed_at"
LOG_STATS = ["log", "stats", "--overview"]
DATA_VOLUME_BIRTH = ["stat", "-f", "%B", "/System/Volumes/Data"]
SYSLOG_CONF = "/etc/syslog.conf"
SYSLOGD = "syslogd"
#: What logd and log(1) say when the caller may not read the system's log statistics.
REFUSALS = ("must be run as root", "requires root", "operation not permitted", "permission denied")

_SPAN_LINE = re.compile(r"^\s*(start|end)(?:\s+time)?\s*:\s*(\S.*?)\s*$", re.I | re.M)
_ISO = re.compile(r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?$")


@dataclass(frozen=True)
class UnifiedLogSpan:
    """The oldest and newest entry in the unified log's store."""

    start: datetime
    end: datetime


def _when(text: str, call: str) -> datetime:
    """A time as ``log`` prints it: ISO-like with an optional zone, or ctime-like."""
    value = " ".join(text.split())
    match = _ISO.match(value)
    if match is not None:
        fraction = (match.group(3) or "0")[:6].ljust(6, "0")
        try:
            stamp = datetime.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M:%S")
            zone = match.group(4)
            offset = None
            if zone is not None and zone != "Z":
                offset = datetime.strptime(zone.replace(":", ""), "%z").tzinfo
        except ValueError:
            # 2026-02-30, 25:00:00, a zone of +9999: shaped like a time but none
            raise FactParseError(SPAN_FACT, call, "impossible time", text) from None
        stamp = stamp.replace(microsecond=int(fraction))
        if offset is None:
            return stamp.replace(tzinfo=UTC)
        return stamp.replace(tzinfo=offset).astimezone(UTC)
    try:
        return datetime.strptime(value, "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except ValueError:
        raise FactParseError(SPAN_FACT, call, "unrecognised time", text) from None


def parse_log_stats(stdout: str, stderr: str, returncode: int, call: str) -> UnifiedLogSpan:
    """The one ``start:`` and the one ``end:`` line of ``log stats --overview``.

    The overview describes the whole store once; several ``start:`` or ``end:`` lines mean
    output this reader does not know (per-section statistics, two runs pasted together),
    so they are an error rather than a minimum picked from among them.
    """
    said = f"{stdout}\n{stderr}"
    if any(refusal in said.lower() for refusal in REFUSALS):
        first = next(line.strip() for line in said.splitlines() if line.strip())
        raise FactPermissionDenied(SPAN_FACT, call, f"log stats needs root: {first!r}")
    if returncode != 0:
        raise FactCommandFailed(SPAN_FACT, call.split(" "), returncode, stderr or stdout)
    starts: list[datetime] = []
    ends: list[datetime] = []
    for match in _SPAN_LINE.finditer(stdout):
        moment = _when(match.group(2), call)
        (starts if match.group(1).lower() == "start" else ends).append(moment)
    if not starts or not ends:
        raise FactParseError(
            SPAN_FACT,
            call,
            "no 'start:' and 'end:' lines (only English log output is read)",
            stdout,
        )
    if len(starts) != 1 or len(ends) != 1:
        raise FactParseError(
            SPAN_FACT,
            call,
            f"{len(starts)} 'start:' and {len(ends)} 'end:' lines where the overview has "
            "one of each",
            stdout,
        )
    span = UnifiedLogSpan(starts[0], ends[0])
    if span.start > span.end:
        raise FactParseError(SPAN_FACT, call, "the store starts after it ends", stdout)
    return span


def read_span(host: HostBase) -> UnifiedLogSpan:
    result = host.command(SPAN_FACT, LOG_STATS, env={"TZ": "UTC"}, check=False)
    return parse_log_stats(result.stdout, result.stderr, result.returncode, " ".join(LOG_STATS))


def read_setup_date(host: HostBase) -> datetime | None:
    """The Data volume's birth time (FactError when it cannot be read)."""
    result = host.command(INSTALLED_FACT, DATA_VOLUME_BIRTH)
    return parse_birth_time(result.stdout, " ".join(DATA_VOLUME_BIRTH))


def syslogd_forwarders(root: Path) -> tuple[list[Forwarder], list[str]]:
    """``@host`` actions in /etc/syslog.conf, and the files read (none when it is absent)."""
    text = read_config(root, SYSLOG_CONF)
    if text is None:
        return [], []
    found = [
        Forwarder(SYSLOGD, f.target, f.how, f.where, None)
        for f in rsyslog_forwarders(text, SYSLOG_CONF, None)
        if not _loopback(f.target)
    ]
    return found, [SYSLOG_CONF]


def _loopback(target: str) -> bool:
    """``127.0.0.1:32376``, ``localhost``, ``[::1]:514``: the host itself."""
    host = target.strip()
    if host.startswith("["):
        host = host[1:].split("]")[0]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    return host.lower() in ("localhost", "::1") or host.startswith("127.")
