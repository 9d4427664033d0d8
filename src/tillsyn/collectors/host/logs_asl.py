"""ASL output files on macOS: /etc/asl.conf and the modules in /etc/asl, as aslmanager keeps them.

syslogd still writes some plain files through ASL rules (system.log, install.log,
authd.log ...), and aslmanager(8) deletes their rotated copies. asl.conf(5): ``>`` lines
configure an output file, ``? [query] file PATH options`` (``*`` instead of a query
matches everything) writes to one and may carry the same options; a relative path is
under /var/log; ``=``, other actions and ``#`` lines do not matter here. Option values may
be single- or double-quoted (``format='$((Time)(JZ)) $Host ...'``), so lines are split
like a shell would.

Files with a ``rotate=``, ``file_max=``, ``all_max=`` or ``ttl=`` option are rotated (by
size when only ``file_max`` is given; the naming style then defaults to ``seq``) and
managed by aslmanager; the others just grow (or are newsyslog's, see
:mod:`.logs_newsyslog`). For a managed file:

- ``ttl=DAYS``: rotated files older than that are deleted; without ``ttl`` aslmanager
  uses its default of 7 days; ``ttl=0`` means no time limit;
- ``all_max=SIZE``: the oldest rotated files are also deleted when all of them together
  exceed that size, so how long they last depends on how fast the log grows: unknown.

Only files some rule writes messages to are judged: a ``>`` line alone (aslmanager's own
``/var/log/asl/Logs/aslmanager ... external ttl=2``) configures a file syslogd never
fills with the system's messages.

This is what the CIS macOS benchmark audits ("Retain system.log for 90 or more days":
``ttl`` of at least 90 and no ``all_max``; the shipped ``> system.log ... rotate=seq
compress file_max=5M all_max=50M`` does not comply).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tillsyn.collectors.errors import (
    FactError,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)

FACT = "host.logs.asl"
MAIN = "/etc/asl.conf"
MODULES = "/etc/asl"
LOG_DIR = "/var/log"
DEFAULT_TTL_DAYS = 7
FILE_ACTIONS = ("file",)
#: Options that make aslmanager rotate and expire a file.
MANAGED = frozenset(("rotate", "file_max", "all_max", "ttl"))

_QUERY = re.compile(r"^\?\s*((?:\[[^\]]*\]\s*)+)(.*)$")
_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_SIZE_FACTOR = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@dataclass(frozen=True)
class AslOutput:
    """One rotated output file with the options that decide how long its copies last."""

    path: str
    where: str  # file:line of the options used
    rotate: str
    ttl_days: int | None  # None: not set (aslmanager's default applies)
    all_max_bytes: int | None

    def retention_days(self) -> tuple[float | None, str]:
        if self.all_max_bytes is not None:
            return None, f"all_max={self.all_max_bytes} bytes deletes the oldest by size"
        if self.ttl_days == 0:
            return float("inf"), "ttl=0: no time limit"
        if self.ttl_days is None:
            return float(DEFAULT_TTL_DAYS), f"no ttl: aslmanager's default {DEFAULT_TTL_DAYS} d"
        return float(self.ttl_days), f"ttl={self.ttl_days}"


@dataclass(frozen=True)
class AslConfig:
    files: tuple[str, ...]
    outputs: tuple[AslOutput, ...]


def _size(value: str, where: str, line: str) -> int:
    match = _SIZE.match(value)
    if match is None:
        raise FactParseError(FACT, where, f"size {value!r} is not a number", line)
    return int(match.group(1)) * _SIZE_FACTOR[match.group(2).lower()]


def _options(words: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for word in words:
        key, _, value = word.partition("=")
        options[key.lower()] = value
    return options


def _absolute(path: str) -> str:
    return path if path.startswith("/") else f"{LOG_DIR}/{path}"


def parse_asl(text: str, path: str) -> list[tuple[str, str, dict[str, str], bool]]:
    """(output path, file:line, options, written by a rule) for every ``>`` line (False)
    and ``file`` action (True)."""
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{path}:{number}"
        if not line or line[0] in "#=":
            continue
        if line[0] in ">*":
            body = line[1:]
        elif line[0] == "?":
            match = _QUERY.match(line)
            if match is None:
                raise FactParseError(FACT, where, "unterminated [query]", line)
            body = match.group(2)
        else:
            continue  # not a line type asl.conf(5) defines; syslogd ignores it
        try:
            words = shlex.split(body, comments=False, posix=True)
        except ValueError as exc:
            raise FactParseError(FACT, where, f"cannot split: {exc}", line) from exc
        if line[0] == ">":
            if words:
                found.append((_absolute(words[0]), where, _options(words[1:]), False))
            continue
        if len(words) >= 2 and words[0].lower() in FILE_ACTIONS:
            found.append((_absolute(words[1]), where, _options(words[2:]), True))
    return found


class AslReader:
    """/etc/asl.conf, then each module file in /etc/asl (sorted), under a root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _text(self, path: str) -> str | None:
        try:
            return (self.root / path.lstrip("/")).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise FactPermissionDenied(FACT, path, "permission denied") from exc
        except OSError as exc:  # a directory where a file belongs, an I/O error ...
            raise FactError(FACT, path, f"cannot read: {exc.strerror or exc}") from exc

    def _modules(self) -> list[str]:
        """The files in /etc/asl, sorted; none when it does not exist, an error if unlistable."""
        modules = self.root / MODULES.lstrip("/")
        try:
            if not modules.is_dir():
                return []
            return [f"{MODULES}/{p.name}" for p in sorted(modules.iterdir()) if p.is_file()]
        except PermissionError as exc:
            raise FactPermissionDenied(FACT, MODULES, "permission denied") from exc
        except OSError as exc:
            raise FactError(FACT, MODULES, f"cannot list: {exc.strerror or exc}") from exc

    def read(self) -> AslConfig:
        paths = [MAIN, *self._modules()]
        files: list[str] = []
        merged: dict[str, tuple[str, dict[str, str]]] = {}
        written: set[str] = set()
        for path in paths:
            text = self._text(path)
            if text is None:
                continue
            files.append(path)
            for output, where, options, by_rule in parse_asl(text, path):
                if by_rule:
                    written.add(output)
                if output in merged:
                    first_where, first = merged[output]
                    merged[output] = (first_where if not options else where, first | options)
                else:
                    merged[output] = (where, options)
        if not files:
            raise FactUnavailable(FACT, MAIN, "does not exist")
        outputs = []
        for output, (where, options) in merged.items():
            if output not in written or not MANAGED & options.keys():
                continue
            ttl = options.get("ttl")
            if ttl is not None and not ttl.isdigit():
                raise FactParseError(FACT, where, f"ttl {ttl!r} is not a number of days", ttl)
            all_max = options.get("all_max")
            outputs.append(
                AslOutput(
                    output,
                    where,
                    options.get("rotate") or "seq",
                    None if ttl is None else int(ttl),
                    None if all_max is None else _size(all_max, where, all_max),
                )
            )
        return AslConfig(tuple(files), tuple(outputs))
