"""newsyslog (macOS, the BSDs): each rotated file's count and schedule, as newsyslog.conf(5) says.

newsyslog rotates the plain files in /var/log on macOS (wtmp, ftp.log, wifi.log ...);
macOS runs it from launchd (com.apple.newsyslog) and reads /etc/newsyslog.conf, then every
``*.conf`` in /etc/newsyslog.d; FreeBSD-style ``<include> GLOB`` lines are followed too.
Each line is ``logfile_name [owner:group] mode count size when [flags] [/pid_file]
[sig_num]`` (``#`` starts a comment, ``\\#`` is a literal ``#``); ``<default>`` and
``<compress>`` lines are not log files. newsyslog stops at a line missing its mandatory
fields, so one malformed line makes the configuration an error here too.

Retention of an entry is ``count`` (archives kept beside the live file) times the
rotation period, which comes from ``when``:

- a number: that many hours since the last rotation;
- ``@`` and a restricted ISO 8601 time ``[[[[[cc]yy]mm]dd][T[hh[mm[ss]]]]]``, where an
  omitted date field means "every": ``@T00`` daily, ``@01T05`` monthly (the 1st at
  05:00), ``@0101T`` yearly; a date with a year is a single moment, not a period;
- ``$`` and ``D hh`` (daily), ``W w [D hh]`` (weekly) or ``M dd|L [D hh]`` (monthly);
- both an interval and a time (``168@T00``): both must hold, so the longer one counts;
- ``*``: no time condition. Then the ``size`` (kilobytes) decides when it rotates, and
  how long the archives last depends on how fast the log grows: unknown. A size next to a
  time may rotate it before its period, which also makes the retention unknown. With
  neither a size nor a time the file is never rotated and nothing is deleted.

Periods in days are those of :mod:`.logs_logrotate` (monthly 31, yearly 365).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tillsyn.collectors.errors import (
    FactError,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host.logs_logrotate import PERIOD_DAYS

FACT = "host.logs.newsyslog"
MAIN = "/etc/newsyslog.conf"
DROP_IN_GLOB = "/etc/newsyslog.d/*.conf"

_ISO_TIME = re.compile(r"^(?P<date>\d*)(?:T(?P<time>\d*))?$")
_DWM = re.compile(r"^(?:D(\d{1,2})|W([0-6])(?:D(\d{1,2}))?|M(\d{1,2}|[Ll])(?:D(\d{1,2}))?)$")
_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_SIZE_KB = {"": 1, "k": 1, "m": 1024, "g": 1024 * 1024}


@dataclass(frozen=True)
class NewsyslogEntry:
    """One log file's line: how many archives are kept and when it rotates."""

    path: str
    where: str  # file:line
    count: int
    size_kb: int | None  # None: '*', size does not matter
    when: str  # as written
    period_days: float | None  # None: no time condition ('*'), or a single moment
    period_name: str  # "monthly", "every 24 h", "daily at 23:00 and every 168 h" ...

    def retention_days(self) -> tuple[float | None, str]:
        """Days the archives reach back, or None with the reason it cannot be known."""
        if self.period_days is None and self.size_kb is None:
            if self.when == "*":
                return float("inf"), "neither size nor time is set: never rotated"
            return None, f"when {self.when} is a single moment, not a period"
        if self.period_days is None:
            return None, f"rotated by size ({self.size_kb} KB), not by time"
        if self.count == 0:
            return 0.0, "count 0: archives are removed at rotation"
        if self.size_kb is not None:
            return None, f"size {self.size_kb} KB may rotate it before each {self.period_name}"
        return self.count * self.period_days, f"{self.count} × {self.period_name}"


@dataclass(frozen=True)
class NewsyslogConfig:
    files: tuple[str, ...]
    entries: tuple[NewsyslogEntry, ...]
    ignored: tuple[str, ...]  # "where: why" for lines that are not judged


def _strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        char = line[i]
        if char == "\\" and line[i + 1 : i + 2] == "#":
            out.append("#")
            i += 2
            continue
        if char == "#":
            break
        out.append(char)
        i += 1
    return "".join(out).strip()


def _iso_period(spec: str) -> tuple[float | None, str] | None:
    """``@`` times: the period implied by the fields left out, None if not ISO."""
    match = _ISO_TIME.match(spec)
    if match is None or len(match["date"]) % 2 or len(match["date"]) > 8:
        return None
    time = match["time"] or ""
    if len(time) % 2 or len(time) > 6:
        return None
    date = match["date"]
    if len(date) > 4:
        return None, "a fixed date"  # a year given: one moment
    if len(date) == 4:
        return PERIOD_DAYS["yearly"], "yearly"
    if len(date) == 2:
        return PERIOD_DAYS["monthly"], "monthly"
    return PERIOD_DAYS["daily"], "daily"


def _dwm_period(spec: str) -> tuple[float, str] | None:
    match = _DWM.match(spec)
    if match is None:
        return None
    if match.group(1) is not None:
        return PERIOD_DAYS["daily"], "daily"
    if match.group(2) is not None:
        return PERIOD_DAYS["weekly"], "weekly"
    return PERIOD_DAYS["monthly"], "monthly"


def parse_when(when: str) -> tuple[float | None, str] | None:
    """(period in days or None, its name) for a ``when`` field; None when malformed."""
    if when == "*":
        return None, "no time condition"
    interval_text, sep, spec = when.partition("@") if "@" in when else when.partition("$")
    marker = when[len(interval_text)] if sep else ""
    interval: float | None = None
    if interval_text:
        if not re.fullmatch(r"\d+(?:\.\d+)?", interval_text):
            return None
        interval = float(interval_text) / 24
    if not marker:
        if interval is None:
            return None
        return interval, f"every {interval_text} h"
    parsed = _iso_period(spec) if marker == "@" else _dwm_period(spec)
    if parsed is None:
        return None
    period, name = parsed
    if interval is None or period is None:
        return period, name
    if interval > period:
        return interval, f"every {interval_text} h ({name} time)"
    return period, f"{name} (and every {interval_text} h)"


def parse_line(text: str, where: str) -> NewsyslogEntry:
    """One log file's line; missing or malformed mandatory fields raise."""
    fields = text.split()
    path, rest = fields[0], fields[1:]
    if rest and not re.fullmatch(r"[0-7]{3,4}", rest[0]):
        rest = rest[1:]  # owner:group (or owner.group)
    if len(rest) < 4:
        raise FactParseError(FACT, where, "missing fields (mode count size when)", text)
    mode, count, size, when = rest[:4]
    if not re.fullmatch(r"[0-7]{3,4}", mode):
        raise FactParseError(FACT, where, f"mode {mode!r} is not octal", text)
    if not count.isdigit():
        raise FactParseError(FACT, where, f"count {count!r} is not a number", text)
    size_kb: int | None = None
    if size != "*":
        size_match = _SIZE.match(size)
        if size_match is None:
            raise FactParseError(FACT, where, f"size {size!r} is not kilobytes or '*'", text)
        size_kb = int(size_match.group(1)) * _SIZE_KB[size_match.group(2).lower()]
    parsed = parse_when(when)
    if parsed is None:
        raise FactParseError(FACT, where, f"when {when!r} is not an interval or a time", text)
    period, name = parsed
    return NewsyslogEntry(path, where, int(count), size_kb, when, period, name)


class NewsyslogReader:
    """Reads the configuration under an injectable root, in newsyslog's order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[str] = []
        self.entries: list[NewsyslogEntry] = []
        self.ignored: list[str] = []
        self._seen: set[str] = set()

    def _is_file(self, local: Path, shown: str) -> bool:
        try:
            return local.is_file()
        except PermissionError as exc:
            raise FactPermissionDenied(FACT, shown, "permission denied") from exc
        except OSError as exc:
            raise FactError(FACT, shown, f"cannot read: {exc.strerror or exc}") from exc

    def _glob(self, pattern: str) -> list[str]:
        """The files ``pattern`` matches, sorted. glob() skips directories it cannot list,
        so the directory holding the last component is listed first: unreadable is an
        error, never "no files"."""
        parent = self.root / pattern.lstrip("/").rsplit("/", 1)[0]
        if not glob.has_magic(str(parent)):
            try:
                if parent.is_dir():
                    os.listdir(parent)
            except PermissionError as exc:
                raise FactPermissionDenied(FACT, pattern, "permission denied") from exc
            except OSError as exc:
                raise FactError(FACT, pattern, f"cannot list: {exc.strerror or exc}") from exc
        prefix = str(self.root).rstrip("/")
        found = sorted(glob.glob(str(self.root / pattern.lstrip("/"))))
        shown = ["/" + m[len(prefix) :].lstrip("/") for m in found]
        return [name for m, name in zip(found, shown, strict=True) if self._is_file(Path(m), name)]

    def read(self) -> NewsyslogConfig:
        main = self._is_file(self.root / MAIN.lstrip("/"), MAIN)
        if not main and not self._glob(DROP_IN_GLOB):
            raise FactUnavailable(FACT, MAIN, "does not exist")
        for path in [MAIN, *self._glob(DROP_IN_GLOB)]:
            self._read_file(path)
        return NewsyslogConfig(tuple(self.files), tuple(self.entries), tuple(self.ignored))

    def _read_file(self, path: str) -> None:
        if path in self.files:
            return
        local = self.root / path.lstrip("/")
        try:
            text = local.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except PermissionError as exc:
            raise FactPermissionDenied(FACT, path, "permission denied") from exc
        except OSError as exc:  # a directory where a file belongs, an I/O error ...
            raise FactError(FACT, path, f"cannot read: {exc.strerror or exc}") from exc
        self.files.append(path)
        for number, raw in enumerate(text.splitlines(), start=1):
            line = _strip_comment(raw)
            where = f"{path}:{number}"
            if not line:
                continue
            first = line.split()[0]
            if first == "<include>":
                for pattern in line.split()[1:]:
                    for included in self._glob(pattern):
                        self._read_file(included)
                continue
            if first.startswith("<"):
                self.ignored.append(f"{where}: {first} is not a log file")
                continue
            entry = parse_line(line, where)
            if entry.path in self._seen:
                self.ignored.append(f"{where}: {entry.path} is already configured")
                continue
            self._seen.add(entry.path)
            self.entries.append(entry)
