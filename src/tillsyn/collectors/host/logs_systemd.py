"""systemd's configuration file rules, reimplemented exactly enough to know what journald uses.

A setting in ``journald.conf`` is not what a service runs with: drop-ins override it, and
which drop-in wins depends on file names across four directories. This module follows
systemd's own rules (journald.conf(5) and systemd.unit(5), "CONFIGURATION DIRECTORIES AND
PRECEDENCE"; ``conf_files_list`` and ``config_parse`` in systemd's source):

- the main file is the first of ``/etc/systemd/NAME``, ``/run/systemd/NAME``,
  ``/usr/local/lib/systemd/NAME``, ``/usr/lib/systemd/NAME`` that exists (systemd 252 only
  reads ``/etc``; newer versions ship the file under ``/usr/lib`` and read the first found;
  on a 252 host the others do not exist, so reading the first found is right for both);
- then every ``*.conf`` in ``NAME.d/`` under ``/etc/systemd``, ``/run/systemd``,
  ``/usr/local/lib/systemd``, ``/usr/lib/systemd`` and ``/lib/systemd``, sorted by file
  name regardless of directory; a file name present in several directories is taken only
  from the highest-priority one (that order), and a symlink to ``/dev/null`` there masks it;
  hidden files (``.name.conf``) are skipped;
- later assignments win; a value the parser refuses is ignored with a warning, keeping the
  earlier value (we keep the same value and list the line as ignored).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

#: Where systemd looks for ``NAME`` and ``NAME.d/``, highest priority first.
CONFIG_DIRS = (
    "/etc/systemd",
    "/run/systemd",
    "/usr/local/lib/systemd",
    "/usr/lib/systemd",
    "/lib/systemd",
)


@dataclass(frozen=True)
class Assignment:
    """One ``Key=Value`` line: where it came from and in which section."""

    section: str
    key: str
    value: str
    path: str
    line: int


@dataclass
class ParsedConfig:
    """Assignments in the order systemd applies them, and lines systemd would ignore."""

    files: list[str] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def config_files(root: Path, name: str) -> tuple[list[str], list[str]]:
    """The files systemd reads for ``name`` in order, and the drop-ins masked by /dev/null.

    Paths are as on the host (``/etc/systemd/journald.conf``); ``root`` is where the host's
    filesystem is (``/`` in production, a recorded tree in tests).
    """
    files: list[str] = []
    for directory in CONFIG_DIRS[:4]:
        if (root / directory.lstrip("/") / name).is_file():
            files.append(f"{directory}/{name}")
            break
    chosen: dict[str, str] = {}
    masked: list[str] = []
    for directory in CONFIG_DIRS:
        host_dir = f"{directory}/{name}.d"
        local = root / host_dir.lstrip("/")
        try:
            entries = sorted(os.listdir(local))
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue
        for entry in entries:
            if entry.startswith(".") or not entry.endswith(".conf") or entry in chosen:
                continue
            candidate = local / entry
            if candidate.is_symlink() and os.readlink(candidate) == "/dev/null":
                chosen[entry] = ""
                masked.append(f"{host_dir}/{entry}")
                continue
            if not candidate.is_file():
                continue
            chosen[entry] = f"{host_dir}/{entry}"
    files.extend(chosen[name] for name in sorted(chosen) if chosen[name])
    return files, masked


def parse_assignments(text: str, path: str, into: ParsedConfig) -> None:
    """Append the ``Key=Value`` lines of one file (systemd.syntax(7)) to ``into``."""
    section = ""
    logical: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        stripped = raw.strip()
        if not pending and stripped[:1] in ("#", ";"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append((start, pending + stripped))
        pending = ""
    if pending:
        logical.append((start, pending))
    for number, line in logical:
        if not line:
            continue
        where = f"{path}:{number}"
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if "=" not in line:
            into.ignored.append(f"{where}: not an assignment: {line[:60]}")
            continue
        if not section:
            into.ignored.append(f"{where}: assignment outside of a section")
            continue
        key, value = line.split("=", 1)
        into.assignments.append(Assignment(section, key.strip(), value.strip(), path, number))


_SIZE_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGTPE]?)(?:B|iB)?\s*", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_SIZE_FACTORS["E"] = 1 << 60


def parse_size(text: str) -> int | None:
    """Bytes from a systemd size (``4G``, ``512M``, ``1.5G``, ``1G 512M``), base 1024.

    None when systemd would refuse it (then journald ignores the line). Percentages are not
    accepted by journald's size settings (journald.conf(5) documents only byte units).
    """
    value = text.strip()
    if not value:
        return None
    total = 0.0
    position = 0
    while position < len(value):
        match = _SIZE_PART.match(value, position)
        if not match or match.end() == position:
            return None
        unit = match.group(2).upper()
        if match.group(2) and match.group(2) not in "KMGTPE":
            return None  # systemd's suffixes are upper case only
        total += float(match.group(1)) * _SIZE_FACTORS[unit]
        position = match.end()
    return int(total)


_SPAN_UNITS = {
    "us": 1e-6,
    "usec": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
    "M": 2629800.0,
    "month": 2629800.0,
    "months": 2629800.0,
    "y": 31557600.0,
    "year": 31557600.0,
    "years": 31557600.0,
}
_SPAN_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Zµμ]*)\s*")


def parse_timespan(text: str) -> float | None:
    """Seconds from a systemd time span (``6month``, ``180d``, ``1y 2w``, ``3600``).

    ``infinity`` is ``float('inf')``; None when systemd would refuse the value. A bare
    number is seconds (systemd.time(7)); a month is 30.44 days and a year 365.25 days.
    """
    value = text.strip()
    if value == "infinity":
        return float("inf")
    if not value:
        return None
    total = 0.0
    position = 0
    while position < len(value):
        match = _SPAN_PART.match(value, position)
        if not match or match.end() == position or match.group(2) not in _SPAN_UNITS:
            return None
        total += float(match.group(1)) * _SPAN_UNITS[match.group(2)]
        position = match.end()
    return total


def format_bytes(value: int) -> str:
    """``4.0G``-style sizes as systemd prints them, for messages."""
    for unit, factor in (("E", 1 << 60), ("P", 1 << 50), ("T", 1 << 40), ("G", 1 << 30)):
        if value >= factor:
            return f"{value / factor:.1f}{unit}"
    for unit, factor in (("M", 1 << 20), ("K", 1 << 10)):
        if value >= factor:
            return f"{value / factor:.1f}{unit}"
    return f"{value}B"
