"""Installed software as the package managers list it, parsed strictly.

Each manager has its own query, chosen so the output is one package per line in a format
we define (dpkg-query and rpm take a format string); snap prints a table.
Only packages that are actually installed count: dpkg keeps removed packages whose
configuration files remain (``deinstall ok config-files``), and those are not software
on the machine any more.

macOS and Windows install most software outside a package manager: their inventories
(:mod:`.endpoint_software_macos`: app bundles and Homebrew; :mod:`.endpoint_software_windows`:
the uninstall registry keys) are lists of :class:`Program`, each with every name it
answers to. Names are matched case-insensitively, as shell-style patterns (``*``, ``?``,
``[...]``): a plain name matches only itself, so Linux package names (which contain no
pattern characters) match exactly as before. Windows reports process names with
``.exe``, which a process name in the configuration may leave out.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from tillsyn.collectors.errors import FactParseError

FACT = "host.endpoint.installed_software"

#: The exact queries the collector runs, per package manager.
DPKG_QUERY = ["dpkg-query", "-W", "-f", "${Package}\t${Status}\t${Version}\n"]
RPM_QUERY = ["rpm", "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"]
SNAP_QUERY = ["snap", "list"]


def shown(argv: list[str]) -> str:
    """A query as a person would type it: tabs and newlines in format strings escaped."""
    return " ".join(repr(a)[1:-1] if ("\t" in a or "\n" in a) else a for a in argv)


@dataclass(frozen=True)
class PackageList:
    """What one package manager says is installed, and when it said so."""

    manager: str  # dpkg, rpm, snap or homebrew
    call: str
    packages: dict[str, str]  # name -> version ("" when the source has none)
    collected_at: datetime
    reused: bool = False


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` is one of ``patterns`` (case-insensitive, shell-style wildcards)."""
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, pattern.lower()) for pattern in patterns)


def process_matches(name: str, patterns: Iterable[str]) -> bool:
    """Like :func:`matches`, also without the ``.exe`` Windows puts on process names."""
    patterns = tuple(patterns)
    return matches(name, patterns) or (
        name.lower().endswith(".exe") and matches(name[:-4], patterns)
    )


@dataclass(frozen=True)
class Program:
    """Installed software outside a package manager: an app bundle, an uninstall entry."""

    name: str  # as people see it (bundle name, DisplayName)
    version: str  # "" when the source has none
    location: str  # the bundle's path or the registry key
    names: tuple[str, ...]  # every name it answers to (file name, bundle name and id ...)


@dataclass(frozen=True)
class ProgramList:
    """The programs one source lists (macOS app folders, Windows uninstall keys)."""

    source: str  # "applications" or "uninstall-registry"
    label: str  # how one entry reads in a message: "app", "installed program"
    call: str
    programs: tuple[Program, ...]
    collected_at: datetime


@dataclass(frozen=True)
class SoftwareInventory:
    """Every source that answered, those that failed, and those absent here."""

    lists: tuple[PackageList, ...]
    failures: tuple[tuple[str, str], ...]  # (call, reason)
    absent: tuple[str, ...]  # managers not installed on this host
    programs: tuple[ProgramList, ...] = ()
    #: What could not be looked at without that being a failure to read (Windows: the
    #: per-user uninstall keys of logged-off users, whose hives are not loaded); a pass
    #: names it.
    unread: tuple[str, ...] = ()

    def find(self, names: tuple[str, ...]) -> list[tuple[PackageList, str, str]]:
        """(list, package, version) for every listed package a name in ``names`` matches."""
        return [
            (plist, name, version)
            for plist in self.lists
            for name, version in sorted(plist.packages.items())
            if matches(name, names)
        ]

    def find_programs(self, names: tuple[str, ...]) -> list[tuple[ProgramList, Program]]:
        """(list, program) for every program one of whose names ``names`` matches."""
        return [
            (plist, program)
            for plist in self.programs
            for program in plist.programs
            if any(matches(n, names) for n in program.names)
        ]


def parse_dpkg(stdout: str, call: str) -> dict[str, str]:
    """``Package<TAB>Status<TAB>Version`` lines; only ``... installed`` packages count."""
    packages: dict[str, str] = {}
    for number, line in enumerate(stdout.splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 3 or not fields[0] or len(fields[1].split()) != 3:
            raise FactParseError(FACT, call, f"line {number} is not package/status/version", line)
        if fields[1].split()[2] in (
            "installed",
            "half-configured",
            "unpacked",
            "triggers-awaited",
            "triggers-pending",
            "half-installed",
        ):
            packages[fields[0].split(":")[0]] = fields[2]
    return packages


def parse_rpm(stdout: str, call: str) -> dict[str, str]:
    """``NAME<TAB>VERSION-RELEASE`` lines (our own --qf format)."""
    packages: dict[str, str] = {}
    for number, line in enumerate(stdout.splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0]:
            raise FactParseError(FACT, call, f"line {number} is not name/version", line)
        packages[fields[0]] = fields[1]
    return packages


_SNAP_HEADER = re.compile(r"^Name\s+Version\s+Rev\s+Tracking\s+Publisher\s+Notes\s*$")


def parse_snap(stdout: str, call: str) -> dict[str, str]:
    """``snap list``: a header line, then ``name version rev tracking publisher notes``."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return {}
    if not _SNAP_HEADER.match(lines[0]):
        raise FactParseError(FACT, call, "no 'Name Version Rev ...' header", lines[0])
    packages: dict[str, str] = {}
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 5:
            raise FactParseError(FACT, call, "snap line has fewer than five columns", line)
        packages[fields[0]] = fields[1]
    return packages


def snap_list_is_empty(stderr: str) -> bool:
    """snap exits 0 and says so on stderr when nothing is installed."""
    return stderr.strip().startswith("No snaps are installed yet")
