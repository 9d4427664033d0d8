"""macOS installed software: application bundles, and Homebrew when it is there.

Most Mac software is an ``.app`` bundle dropped into an Applications folder, with no
package database to ask. So the inventory is the bundles in ``/Applications`` and in
each user's ``~/Applications`` (``/Users/*/Applications``: the agent runs as root, whose
own home is not where people install), including one level of subfolders such as
``/Applications/Utilities``. Each bundle is named by its folder name and by what its
``Contents/Info.plist`` says (``CFBundleName``, ``CFBundleDisplayName``,
``CFBundleIdentifier``; version from ``CFBundleShortVersionString``), read with
plistlib, which takes both the XML and the binary form. A renamed bundle still carries
its identifier. A bundle without Info.plist (iOS apps on Apple silicon keep theirs in a
``Wrapper``) is listed under its folder name; an Info.plist that does not parse is a
failure of the inventory, never skipped.

Homebrew is read from its directories rather than with ``brew list --versions``: brew
refuses to run as root ("Running Homebrew as root is extremely dangerous and no longer
supported"), and the directories are what it reads anyway: ``<prefix>/Cellar/<formula>/
<version>`` and ``<prefix>/Caskroom/<cask>/<version>``, with prefix ``/opt/homebrew``
(Apple silicon) or ``/usr/local`` (Intel). Casks install app bundles too, so a cask's app
is found twice, under both names.
"""

from __future__ import annotations

from pathlib import Path

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.endpoint_software import (
    FACT,
    PackageList,
    Program,
    ProgramList,
    SoftwareInventory,
)
from tillsyn.collectors.host.plists import load_dict

APPLICATIONS = "/Applications"
USERS = "/Users"
HOMEBREW_PREFIXES = ("/opt/homebrew", "/usr/local")
APPS_CALL = "/Applications, /Users/*/Applications"

_NAME_KEYS = ("CFBundleName", "CFBundleDisplayName", "CFBundleIdentifier")
_VERSION_KEYS = ("CFBundleShortVersionString", "CFBundleVersion")


def parse_info_plist(data: bytes, where: str) -> dict[str, str]:
    """The naming and version keys of a bundle's Info.plist; wrong types raise."""
    loaded = load_dict(data, FACT, where, "Info.plist")
    keys: dict[str, str] = {}
    for key in (*_NAME_KEYS, *_VERSION_KEYS):
        value = loaded.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise FactParseError(FACT, where, f"{key} is not a string", repr(value))
        if value.strip():
            keys[key] = value.strip()
    return keys


def bundle_program(bundle: Path, shown: str) -> Program:
    """One ``.app`` bundle as a :class:`Program` (``shown`` is its path on the host)."""
    info = bundle / "Contents" / "Info.plist"
    keys: dict[str, str] = {}
    if info.is_file():
        keys = parse_info_plist(info.read_bytes(), f"{shown}/Contents/Info.plist")
    stem = bundle.name.removesuffix(".app")
    names = tuple(dict.fromkeys([stem, *(keys[k] for k in _NAME_KEYS if k in keys)]))
    version = next((keys[k] for k in _VERSION_KEYS if k in keys), "")
    return Program(keys.get("CFBundleName", stem), version, shown, names)


def _entries(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def scan_applications(host: HostBase, folder: str) -> tuple[list[Program], list[tuple[str, str]]]:
    """The bundles in one Applications folder and its direct subfolders, and failures."""
    programs: list[Program] = []
    failures: list[tuple[str, str]] = []
    pending = [(folder, 0)]
    while pending:
        shown, depth = pending.pop(0)
        try:
            entries = _entries(host.path(shown))
        except PermissionError:
            failures.append((shown, "permission denied"))
            continue
        for entry in entries:
            where = f"{shown}/{entry.name}"
            if entry.suffix == ".app" and entry.is_dir():
                try:
                    programs.append(bundle_program(entry, where))
                except FactParseError as exc:
                    failures.append((exc.call, exc.reason))
                except PermissionError:
                    failures.append((where, "permission denied"))
            elif entry.is_dir() and depth == 0:
                pending.append((where, 1))
    return programs, failures


def homebrew(host: HostBase) -> list[PackageList]:
    """One list per Homebrew prefix present: formulae and casks with their versions."""
    lists = []
    for prefix in HOMEBREW_PREFIXES:
        packages: dict[str, str] = {}
        read = []
        for sub in ("Cellar", "Caskroom"):
            folder = host.path(f"{prefix}/{sub}")
            if not folder.is_dir():
                continue
            read.append(f"{prefix}/{sub}")
            for entry in _entries(folder):
                if entry.is_dir():
                    versions = [v.name for v in _entries(entry) if v.is_dir()]
                    packages[entry.name] = " ".join(versions)
        if read:
            lists.append(PackageList("homebrew", ", ".join(read), packages, host.now))
    return lists


def collect(host: HostBase) -> SoftwareInventory:
    """App bundles for every Applications folder, plus Homebrew; what failed is kept."""
    programs: list[Program] = []
    failures: list[tuple[str, str]] = []
    if not host.path(APPLICATIONS).is_dir():
        failures.append((APPLICATIONS, "does not exist (every Mac has it)"))
    else:
        found, failed = scan_applications(host, APPLICATIONS)
        programs += found
        failures += failed
    try:
        homes = _entries(host.path(USERS))
    except FileNotFoundError:
        homes = []
    except PermissionError:
        homes = []
        failures.append((USERS, "permission denied"))
    for home in homes:
        if (home / "Applications").is_dir():
            found, failed = scan_applications(host, f"{USERS}/{home.name}/Applications")
            programs += found
            failures += failed
    lists: list[PackageList] = []
    try:
        lists = homebrew(host)
    except PermissionError:
        failures.append(("Homebrew Cellar/Caskroom", "permission denied"))
    apps = ProgramList("applications", "app", APPS_CALL, tuple(programs), host.now)
    return SoftwareInventory(tuple(lists), tuple(failures), () if lists else ("homebrew",), (apps,))
