"""Which OS release this is, and the shipped end-of-life table it is looked up in."""

from __future__ import annotations

import csv
import re
import shlex
from datetime import date
from importlib import resources

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host.patching_model import EolEntry, OsRelease

EOL_TABLE = "data/os_eol.csv"
_UPDATED = re.compile(r"^#\s*updated:\s*(\d{4}-\d{2}-\d{2})\s*$")


def parse_os_release(text: str, path: str) -> OsRelease:
    """os-release(5): shell-style ``KEY=value`` lines; ID and VERSION_ID are required."""
    fact = "host.patch.os_release"
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Z0-9_]+", key):
            raise FactParseError(fact, path, "not a KEY=value line", line)
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            raise FactParseError(fact, path, f"bad quoting ({exc})", line) from exc
        fields[key] = parts[0] if parts else ""
    if not fields.get("ID"):
        raise FactParseError(fact, path, "no ID", text[:120])
    if not fields.get("VERSION_ID"):
        raise FactParseError(
            fact, path, f"{fields['ID']} has no VERSION_ID (a rolling or testing release?)"
        )
    return OsRelease(
        id=fields["ID"].lower(),
        version_id=fields["VERSION_ID"],
        pretty_name=fields.get("PRETTY_NAME", fields["ID"]),
        id_like=tuple(fields.get("ID_LIKE", "").lower().split()),
        source=path,
    )


def parse_sw_vers(stdout: str, call: str) -> OsRelease:
    """``sw_vers``: ProductName / ProductVersion / BuildVersion, tab separated."""
    fields: dict[str, str] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise FactParseError("host.patch.os_release", call, "not a 'Key: value' line", line)
        fields[key.strip()] = value.strip()
    version = fields.get("ProductVersion", "")
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        raise FactParseError("host.patch.os_release", call, "no ProductVersion", stdout)
    name = fields.get("ProductName", "macOS")
    return OsRelease("macos", version, f"{name} {version}", (), call)


def _date(text: str, row: int) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{EOL_TABLE} row {row}: bad date {text!r}") from exc


def load_eol_table(text: str | None = None) -> tuple[date, tuple[EolEntry, ...]]:
    """The table and the date it was last updated (a shipped file: a bad row is a bug)."""
    if text is None:
        text = resources.files("tillsyn.collectors.host").joinpath(EOL_TABLE).read_text("utf-8")
    updated: date | None = None
    rows: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            if match := _UPDATED.match(line):
                updated = date.fromisoformat(match.group(1))
            continue
        if line.strip():
            rows.append(line)
    if updated is None:
        raise ValueError(f"{EOL_TABLE} does not say when it was updated")
    entries = []
    for number, row in enumerate(csv.DictReader(rows), start=2):
        entries.append(
            EolEntry(
                os_id=row["os_id"],
                version=row["version"],
                codename=row["codename"],
                end_standard=_date(row["end_standard"], number),
                end_extended=_date(row["end_extended"], number),
                source=row["source"],
            )
        )
    return updated, tuple(entries)


def lookup(entries: tuple[EolEntry, ...], os_id: str, version: str) -> tuple[EolEntry | None, str]:
    """The row for ``version`` or its shorter prefixes (9.4 -> 9); and the key last tried."""
    by_key = {(e.os_id, e.version): e for e in entries}
    key = version
    while True:
        if (os_id, key) in by_key:
            return by_key[(os_id, key)], key
        if "." not in key:
            return None, key
        key = key.rsplit(".", 1)[0]
