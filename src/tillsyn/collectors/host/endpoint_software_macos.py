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
failure of the inventory, never skipped. Hidden bundles (``.AnyDesk.app``) are
inventoried like any other: hiding a bundle from Finder does not uninstall it. A folder
or bundle that cannot be listed or stat'ed, and a missing /Applications or /Users (every
Mac has both), are failures of the inventory, naming the path.

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
    # A hidden bundle (".AnyDesk.app") answers to its name without the dot too.
    named = [stem, stem.lstrip(".") or stem, *(keys[k] for k in _NAME_KEYS if k in keys)]
    names = tuple(dict.fromkeys(named))
    version = next((keys[k] for k in _VERSION_KEYS if k in keys), "")
    return Program(keys.get("CFBundleName", stem), version, shown, names)


def _entries(path: Path) -> list[Path]:
    """Everything in a folder, hidden names included (``.AnyDesk.app`` is still installed)."""
    return sorted(path.iterdir())


def _visible_entries(path: Path) -> list[Path]:
    """A Homebrew folder's entries without its bookkeeping (``.metadata``, ``.keepme``)."""
    return [p for p in _entries(path) if not p.name.startswith(".")]


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    return exc.strerror or str(exc)


def scan_applications(host: HostBase, folder: str) -> tuple[list[Program], list[tuple[str, str]]]:
    """The bundles in one Applications folder and its direct subfolders, and failures."""
    programs: list[Program] = []
    failures: list[tuple[str, str]] = []
    pending = [(folder, 0)]
    while pending:
        shown, depth = pending.pop(0)
        try:
            entries = _entries(host.path(shown))
        except OSError as exc:
            failures.append((shown, _reason(exc)))
            continue
        for entry in entries:
            where = f"{shown}/{entry.name}"
            try:
                is_dir = entry.is_dir()
            except OSError as exc:
                failures.append((where, _reason(exc)))
                continue
            if entry.suffix == ".app" and is_dir:
                try:
                    programs.append(bundle_program(entry, where))
                except FactParseError as exc:
                    failures.append((exc.call, exc.reason))
                except OSError as exc:
                    failures.append((where, _reason(exc)))
            elif is_dir and depth == 0:
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
            for entry in _visible_entries(folder):
                if entry.is_dir():
                    versions = [v.name for v in _visible_entries(entry) if v.is_dir()]
                    packages[entry.name] = " ".join(versions)
        if read:
            lists.append(PackageList("homebrew", ", ".join(read), packages, host.now))
    return lists


def _home_folders(host: HostBase) -> tuple[list[str], list[tuple[str, str]]]:
    """``/Users/<name>/Applications`` for every home that has one, and what failed."""
    try:
        homes = _entries(host.path(USERS))
    except FileNotFoundError:
        return [], [(USERS, "does not exist (every Mac has it)")]
    except OSError as exc:
        return [], [(USERS, _reason(exc))]
    folders: list[str] = []
    failures: list[tuple[str, str]] = []
    for home in homes:
        shown = f"{USERS}/{home.name}/Applications"
        try:
            if (home / "Applications").is_dir():
                folders.append(shown)
        except OSError as exc:
            failures.append((shown, _reason(exc)))
    return folders, failures


def collect(host: HostBase) -> SoftwareInventory:
    """App bundles for every Applications folder, plus Homebrew; what failed is kept."""
    programs: list[Program] = []
    failures: list[tuple[str, str]] = []
    try:
        applications = host.path(APPLICATIONS).is_dir()
    except OSError as exc:
        applications = False
        failures.append((APPLICATIONS, _reason(exc)))
    else:
        if not applications:
            failures.append((APPLICATIONS, "does not exist (every Mac has it)"))
    if applications:
        found, failed = scan_applications(host, APPLICATIONS)
        programs += found
        failures += failed
    folders, failed = _home_folders(host)
    failures += failed
    for folder in folders:
        found, failed = scan_applications(host, folder)
        programs += found
        failures += failed
    lists: list[PackageList] = []
    try:
        lists = homebrew(host)
    except OSError as exc:
        failures.append(("Homebrew Cellar/Caskroom", _reason(exc)))
    apps = ProgramList("applications", "app", APPS_CALL, tuple(programs), host.now)
    return SoftwareInventory(tuple(lists), tuple(failures), () if lists else ("homebrew",), (apps,))
