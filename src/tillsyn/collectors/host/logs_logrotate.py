"""logrotate: every stanza's effective settings, read the way logrotate 3.21 reads them.

What logrotate does, checked against ``logrotate -d`` on Debian 12 (logrotate 3.21.0; the
recorded debug output is a fixture and a unit test compares it with this parser):

- a directive outside a stanza changes the global defaults for every stanza after it,
  including stanzas and later globals in included files (globals set inside an included
  file leak into the rest of the configuration), and never affects what came before;
- ``include DIR`` reads the directory's regular files in alphabetical order, skipping
  names that match a taboo pattern (``*`` + each taboo extension, and ``taboopat``);
  ``tabooext``/``taboopat`` replace the list or, with ``+``, add to it;
- the last frequency directive wins; ``size`` is a frequency too (rotation by size);
- with no frequency at all logrotate rotates by size (1 MiB), and ``rotate`` defaults to 0
  (old logs are removed at once);
- a configuration file writable by group or others is ignored.

Retention of a stanza is ``rotate`` times the period (hourly 1/24 d, daily 1, weekly 7,
monthly 31, yearly 365), capped by ``maxage``. Rotation by size, or ``maxsize`` beside a
period, makes the retention unknown: it depends on how fast the log grows.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from tillsyn.collectors.errors import FactParseError, FactPermissionDenied, FactUnavailable

FACT = "host.logs.logrotate"

DEFAULT_TABOO_EXTS = (
    ",v",
    ".cfsaved",
    ".disabled",
    ".dpkg-bak",
    ".dpkg-del",
    ".dpkg-dist",
    ".dpkg-new",
    ".dpkg-old",
    ".rhn-cfg-tmp-*",
    ".rpmnew",
    ".rpmorig",
    ".rpmsave",
    ".swp",
    ".ucf-dist",
    ".ucf-new",
    ".ucf-old",
    "~",
)
PERIOD_DAYS = {"hourly": 1 / 24, "daily": 1.0, "weekly": 7.0, "monthly": 31.0, "yearly": 365.0}
SCRIPTS = ("prerotate", "postrotate", "firstaction", "lastaction", "preremove")
#: Directives that take the rest of the line and do not matter for retention.
KNOWN = {
    "compress",
    "nocompress",
    "delaycompress",
    "nodelaycompress",
    "sharedscripts",
    "nosharedscripts",
    "copytruncate",
    "nocopytruncate",
    "copy",
    "nocopy",
    "ifempty",
    "notifempty",
    "missingok",
    "nomissingok",
    "create",
    "nocreate",
    "createolddir",
    "nocreateolddir",
    "olddir",
    "noolddir",
    "mail",
    "nomail",
    "mailfirst",
    "maillast",
    "dateext",
    "nodateext",
    "dateformat",
    "dateyesterday",
    "datehourago",
    "extension",
    "compresscmd",
    "uncompresscmd",
    "compressext",
    "compressoptions",
    "su",
    "shred",
    "noshred",
    "shredcycles",
    "start",
    "minage",
    "minsize",
    "renamecopy",
    "norenamecopy",
    "ignoreduplicates",
    "allowhardlink",
    "noallowhardlink",
    "addextension",
    "errors",
}


@dataclass(frozen=True)
class Rotation:
    """The settings that decide how long rotated logs are kept."""

    criterion: str = "size"  # hourly | daily | weekly | monthly | yearly | size
    size_bytes: int | None = 1 << 20
    rotate: int = 0
    maxage_days: int | None = None
    maxsize_bytes: int | None = None


@dataclass(frozen=True)
class RotateStanza:
    """One ``patterns { ... }`` block with its effective settings."""

    patterns: tuple[str, ...]
    where: str  # file:line of the opening brace
    rotation: Rotation

    @property
    def name(self) -> str:
        """The patterns joined by a space, as ``logrotate -d`` names the stanza."""
        return " ".join(self.patterns)

    def retention_days(self) -> tuple[float | None, str]:
        """Days rotated logs are kept, or None with the reason it cannot be known."""
        r = self.rotation
        if r.criterion == "size":
            return None, f"rotated by size ({r.size_bytes} bytes), not by time"
        if r.rotate == 0:
            return 0.0, "rotate 0: old logs are removed at rotation"
        if r.maxsize_bytes is not None:
            return None, f"maxsize {r.maxsize_bytes} bytes may rotate it before each period"
        days = float("inf") if r.rotate < 0 else r.rotate * PERIOD_DAYS[r.criterion]
        how = "rotate -1 keeps every rotation" if r.rotate < 0 else f"{r.rotate} × {r.criterion}"
        if r.maxage_days is not None and r.maxage_days < days:
            return float(r.maxage_days), f"{how}, capped by maxage {r.maxage_days}"
        return days, how


@dataclass(frozen=True)
class LogrotateConfig:
    files: tuple[str, ...]
    stanzas: tuple[RotateStanza, ...]
    ignored: tuple[str, ...]


def _size(value: str) -> int | None:
    units = {"k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = value.strip()
    factor = units.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in units else text
    return int(digits) * factor if digits.isdigit() else None


def _split_patterns(text: str) -> list[str]:
    """Whitespace-separated patterns, with "double" or 'single' quotes kept together."""
    out: list[str] = []
    current = ""
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char.isspace():
            if current:
                out.append(current)
            current = ""
        else:
            current += char
    if current:
        out.append(current)
    return out


@dataclass
class _State:
    defaults: Rotation = field(default_factory=Rotation)
    taboo: list[str] = field(default_factory=lambda: ["*" + e for e in DEFAULT_TABOO_EXTS])
    files: list[str] = field(default_factory=list)
    stanzas: list[RotateStanza] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


class LogrotateReader:
    """Reads ``/etc/logrotate.conf`` and what it includes under a filesystem root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = _State()

    def _local(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read(self, path: str = "/etc/logrotate.conf") -> LogrotateConfig:
        if not self._local(path).exists():
            raise FactUnavailable(FACT, path, "does not exist (logrotate is not configured)")
        self._read_path(path, top=True)
        s = self.state
        return LogrotateConfig(tuple(s.files), tuple(s.stanzas), tuple(s.ignored))

    def _read_path(self, path: str, top: bool = False) -> None:
        local = self._local(path)
        try:
            info = local.stat()
        except FileNotFoundError:
            self.state.ignored.append(f"{path}: included but does not exist")
            return
        except PermissionError as exc:
            raise FactPermissionDenied(FACT, path, "permission denied") from exc
        if stat.S_ISDIR(info.st_mode):
            try:
                names = sorted(os.listdir(local))
            except PermissionError as exc:
                raise FactPermissionDenied(FACT, path, "permission denied") from exc
            for name in names:
                child = f"{path.rstrip('/')}/{name}"
                taboo = next((t for t in self.state.taboo if fnmatch.fnmatch(name, t)), None)
                if taboo:
                    self.state.ignored.append(f"{child}: skipped, matches taboo {taboo}")
                    continue
                if not (local / name).is_file():
                    continue
                self._read_file(child)
        elif stat.S_ISREG(info.st_mode):
            self._read_file(path)

    def _read_file(self, path: str) -> None:
        local = self._local(path)
        try:
            mode = local.stat().st_mode
            text = local.read_text(encoding="utf-8", errors="replace")
        except PermissionError as exc:
            raise FactPermissionDenied(FACT, path, "permission denied") from exc
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            self.state.ignored.append(f"{path}: ignored by logrotate, writable by group/others")
            return
        self.state.files.append(path)
        self._parse(text, path)

    def _parse(self, text: str, path: str) -> None:
        s = self.state
        stanza: Rotation | None = None
        stanza_patterns: list[str] = []
        stanza_at = ""
        pending: list[str] = []
        in_script = False
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if in_script:
                if line == "endscript":
                    in_script = False
                continue
            if not line or line.startswith("#"):
                continue
            where = f"{path}:{number}"
            if stanza is None and "{" in line:
                before, after = line.split("{", 1)
                pending.extend(_split_patterns(before))
                if not pending:
                    raise FactParseError(FACT, where, "a block without log file patterns", line)
                stanza, stanza_patterns, stanza_at, pending = s.defaults, pending, where, []
                line = after.strip()
                if not line:
                    continue
            if stanza is not None and line.startswith("}"):
                s.stanzas.append(RotateStanza(tuple(stanza_patterns), stanza_at, stanza))
                stanza = None
                continue
            word, _, rest = line.replace("=", " ", 1).partition(" ")
            rest = rest.strip()
            if word in SCRIPTS:
                in_script = True
                continue
            current = stanza if stanza is not None else s.defaults
            if word == "include":
                if stanza is not None:
                    raise FactParseError(FACT, where, "include inside a log stanza", line)
                self._read_path(rest)
                continue
            if word in ("tabooext", "taboopat"):
                items = [i for i in rest.lstrip("+").replace(",", " ").split() if i]
                new = ["*" + i for i in items] if word == "tabooext" else items
                s.taboo = s.taboo + new if rest.startswith("+") else new
                continue
            updated = self._apply(current, word, rest, where)
            if updated is None:
                if stanza is None and word and (word[0] in "/\"'~*" or "/" in word):
                    pending.extend(_split_patterns(line))
                else:
                    s.ignored.append(f"{where}: unknown option {word!r} ignored")
                continue
            if stanza is not None:
                stanza = updated
            else:
                s.defaults = updated
        if stanza is not None:
            raise FactParseError(FACT, stanza_at, "the log stanza is never closed", "")

    @staticmethod
    def _apply(current: Rotation, word: str, rest: str, where: str) -> Rotation | None:
        if word in PERIOD_DAYS:
            return replace(current, criterion=word, size_bytes=None)
        if word in ("size", "maxsize", "rotate", "maxage"):
            if word in ("size", "maxsize"):
                size = _size(rest)
                if size is None:
                    raise FactParseError(FACT, where, f"bad {word}", rest)
                if word == "size":
                    return replace(current, criterion="size", size_bytes=size)
                return replace(current, maxsize_bytes=size)
            try:
                number = int(rest)
            except ValueError as exc:
                raise FactParseError(FACT, where, f"bad {word} count", rest) from exc
            if word == "rotate":
                return replace(current, rotate=number)
            return replace(current, maxage_days=number)
        if word in KNOWN:
            return current
        return None
