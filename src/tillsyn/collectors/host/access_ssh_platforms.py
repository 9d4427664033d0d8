"""Whose authorized_keys sshd reads on each platform, where, and reading one keys file.

Why this module: ``host.access.ssh_keys`` walks every account's home directory, but only
Linux lists accounts in /etc/passwd. macOS keeps them in its directory service and
Windows keys user profiles by SID in the registry, with drive-letter paths. This module
turns each source into the same :class:`KeyHolder` (name, home, uid or SID), expands
AuthorizedKeysFile entries the way each platform's sshd does, and reads a keys file by
its host path, so the collector (``access.py``) and the check stay platform-neutral.

macOS: ``dscl -plist . -readall /Users NFSHomeDirectory RecordName UniqueID`` prints an
XML plist array, one dict per user record, every attribute an array of strings under
``dsAttrTypeStandard:<name>``. The plist form is read because the text form folds
multi-valued attributes and values with spaces ambiguously; it needs no privilege. The
first RecordName is the short name and the first NFSHomeDirectory the home that sshd's
getpwnam() returns (a record without one gets an empty home, as getpwnam gives it).
This is a reader of its own: an accounts reader for macOS elsewhere could share it.

Remote Login (macOS) is not consulted, on purpose: keys in an AuthorizedKeysFile grant
access the moment Remote Login is switched on (one click in System Settings, or a
management profile), so they are judged whether it is on or off. Reading the switch
would also need root (``systemsetup -getremotelogin``) or launchd's unstable output.

Windows: ``reg query "HKLM\\...\\ProfileList" /s`` lists one subkey per profile, named by
SID, with ``ProfileImagePath`` (REG_EXPAND_SZ: ``C:\\Users\\alice``,
``%systemroot%\\ServiceProfiles\\LocalService``); Win32-OpenSSH takes the home directory
from the same profile path. ProfileList holds no account names, so a profile is named by
its folder (``alice``), which is the account name unless Windows had to tell two apart
(``alice.CONTOSO``); the SID is kept with it. A subkey without ProfileImagePath is not a
profile anyone can log on with and is skipped. ``%U`` (a numeric uid) has no meaning on
Windows and is refused.
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import Any
from xml.parsers.expat import ExpatError

from tillsyn.collectors.errors import (
    FactParseError,
    FactPermissionDenied,
    FactTimeout,
    FactUnavailable,
)
from tillsyn.collectors.host import windows_paths as winpath
from tillsyn.collectors.host._base import MACOS, WINDOWS, HostBase
from tillsyn.collectors.host.access_ssh import AuthorizedKey, expand_tokens, parse_authorized_keys
from tillsyn.collectors.host.windows_registry import full_key, parse_reg_query

FACT = "host.access.ssh_key_holders"
KEYS_FACT = "host.access.authorized_keys"
DSCL_USERS = [
    "dscl",
    "-plist",
    ".",
    "-readall",
    "/Users",
    "NFSHomeDirectory",
    "RecordName",
    "UniqueID",
]
PROFILE_LIST = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList"
REG_PROFILES = ["reg", "query", PROFILE_LIST, "/s"]
#: ``sshd -T`` failures that are errors, not a reason to read sshd_config instead:
#: output that does not parse, and a timeout (what made sshd hang, an Include on a dead
#: network mount or a stuck name service, would hang or mislead the fallback too).
SSHD_T_FATAL = (FactParseError, FactTimeout)
#: Win32-OpenSSH writes ProgramData this way in paths it resolves (``__PROGRAMDATA__\\ssh``).
PROGRAMDATA_PLACEHOLDER = "__PROGRAMDATA__"


@dataclass(frozen=True)
class KeyHolder:
    """An account (Linux, macOS) or user profile (Windows) whose keys sshd would read."""

    name: str
    home: str
    uid: int | None = None  # None on Windows
    sid: str | None = None  # Windows only


def holders_source(platform: str) -> str:
    """Where :func:`collect` lists the holders on ``platform`` (for messages)."""
    if platform == MACOS:
        return "dscl . -readall /Users"
    if platform == WINDOWS:
        return f"{PROFILE_LIST} (reg query)"
    return "/etc/passwd"


# -- macOS ----------------------------------------------------------------------------


def _strings(record: dict[str, Any], name: str, call: str) -> list[str]:
    value = record.get(f"dsAttrTypeStandard:{name}", record.get(name, []))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FactParseError(FACT, call, f"{name} is not a list of strings", repr(value))
    return value


def parse_dscl_users(stdout: str) -> tuple[KeyHolder, ...]:
    """``dscl -plist . -readall /Users ...``: every user record's short name, uid, home."""
    call = " ".join(DSCL_USERS)
    try:
        loaded = plistlib.loads(stdout.encode("utf-8"))
    except (plistlib.InvalidFileException, ExpatError, ValueError, TypeError) as exc:
        raise FactParseError(FACT, call, f"not a property list ({exc})", stdout[:80]) from exc
    if not isinstance(loaded, list) or not loaded:
        raise FactParseError(FACT, call, "not a non-empty list of user records", repr(loaded))
    holders: list[KeyHolder] = []
    for record in loaded:
        if not isinstance(record, dict):
            raise FactParseError(FACT, call, "a user record is not a dictionary", repr(record))
        names = _strings(record, "RecordName", call)
        uids = _strings(record, "UniqueID", call)
        homes = _strings(record, "NFSHomeDirectory", call)
        if not names or not uids:
            raise FactParseError(FACT, call, "a user record has no RecordName or UniqueID")
        if not re.fullmatch(r"-?\d+", uids[0]):
            raise FactParseError(FACT, call, f"{names[0]}: UniqueID is not a number", uids[0])
        holders.append(KeyHolder(names[0], homes[0] if homes else "", int(uids[0])))
    return tuple(holders)


# -- Windows --------------------------------------------------------------------------


def _sections(stdout: str, call: str) -> list[tuple[str, str]]:
    """reg query /s output split into (key, that key's block of text)."""
    out: list[tuple[str, list[str]]] = []
    for raw in stdout.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("HKEY_"):
            out.append((line.strip(), [line]))
        elif line.startswith("End of search:") and out:
            continue
        elif line.strip():
            if not out:
                raise FactParseError(FACT, call, "output does not start with a key", line)
            out[-1][1].append(line)
    return [(key, "\n".join(lines)) for key, lines in out]


def parse_profile_list(stdout: str, env: Mapping[str, str]) -> tuple[KeyHolder, ...]:
    """``reg query ...\\ProfileList /s``: each profile's folder name, home and SID."""
    call = " ".join(REG_PROFILES)
    top = full_key(PROFILE_LIST)
    sections = _sections(stdout, call)
    if not sections or sections[0][0].lower() != top.lower():
        raise FactParseError(FACT, call, f"output does not start with {top}", stdout)
    holders: list[KeyHolder] = []
    homes: dict[str, str] = {}
    for key, text in sections[1:]:
        if not key.lower().startswith(top.lower() + "\\"):
            raise FactParseError(FACT, call, "a key outside ProfileList", key)
        sid = key[len(top) + 1 :]
        values = parse_reg_query(text, key, call, FACT)
        if "\\" in sid or "ProfileImagePath" not in values:
            continue
        kind, data = values["ProfileImagePath"]
        if kind not in ("REG_EXPAND_SZ", "REG_SZ"):
            raise FactParseError(FACT, call, f"{sid}: ProfileImagePath is {kind}", data)
        try:
            home = winpath.normalize(winpath.expand_env(data, env))
        except ValueError as exc:
            raise FactParseError(FACT, call, f"{sid}: ProfileImagePath {exc}", data) from exc
        if home.lower() in (h.lower() for h in homes.values()):
            continue  # a .bak copy of a profile already listed
        name = PureWindowsPath(home).name or sid
        if name.lower() in (n.lower() for n in homes):
            name = f"{name} ({sid})"
        homes[name] = home
        holders.append(KeyHolder(name, home, None, sid))
    return tuple(holders)


def windows_key_path(pattern: str, holder: KeyHolder, env: Mapping[str, str]) -> str:
    """One AuthorizedKeysFile entry for a Windows profile, as Win32-OpenSSH resolves it:
    %h %u %% expanded, ``__PROGRAMDATA__`` replaced, relative entries under the home."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] != "%":
            out.append(pattern[i])
            i += 1
            continue
        token = pattern[i + 1 : i + 2]
        replacement = {"%": "%", "h": holder.home, "u": holder.name}.get(token)
        if replacement is None:
            raise FactParseError(
                "host.access.sshd_keys_config",
                "AuthorizedKeysFile",
                f"token %{token} cannot be resolved on Windows (only %%, %h and %u)",
                pattern,
            )
        out.append(replacement)
        i += 2
    path = "".join(out)
    if path.startswith(PROGRAMDATA_PLACEHOLDER):
        path = winpath.env_value(env, "ProgramData") + path[len(PROGRAMDATA_PLACEHOLDER) :]
    if not winpath.is_absolute(path):
        if path.startswith(("/", "\\")):
            raise FactParseError(
                "host.access.sshd_keys_config",
                "AuthorizedKeysFile",
                "path has no drive letter, so which drive sshd reads depends on its "
                "working directory",
                pattern,
            )
        path = f"{holder.home}\\{path}"
    return winpath.normalize(path)


# -- every platform -------------------------------------------------------------------


def collect(host: HostBase) -> tuple[KeyHolder, ...]:
    """macOS and Windows holders (Linux ones come from the accounts fact)."""
    if host.platform == MACOS:
        return parse_dscl_users(host.command(FACT, DSCL_USERS).stdout)
    host.require_platform(FACT, WINDOWS)
    return parse_profile_list(host.command(FACT, REG_PROFILES).stdout, host.env)


def key_paths(host: HostBase, patterns: tuple[str, ...], holder: KeyHolder) -> list[str]:
    """The files sshd reads for ``holder``, each once, as the host spells them."""
    paths: list[str] = []
    for pattern in patterns:
        if host.platform == WINDOWS:
            path = windows_key_path(pattern, holder, host.env)
            seen = path.lower() in (p.lower() for p in paths)
        else:
            path = expand_tokens(pattern, holder.name, holder.uid or 0, holder.home)
            seen = path in paths
        if not seen:
            paths.append(path)
    return paths


def read_keys(host: HostBase, path: str) -> tuple[AuthorizedKey, ...]:
    """The keys in one file (host path); a file that does not exist holds none.

    Anything else that stops the read is an error naming the file, never "no keys":
    permission denied, a directory in its place, an I/O error, UTF-16 text (what
    Windows PowerShell 5 writes with ``>``; sshd cannot read it) or a line sshd would
    refuse.
    """
    try:
        target = winpath.host_file(host.root, path) if host.platform == WINDOWS else None
    except ValueError as exc:
        raise FactUnavailable(KEYS_FACT, path, str(exc)) from exc
    target = target or host.path(path)
    try:
        data = target.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return ()
    except PermissionError as exc:
        raise FactPermissionDenied(KEYS_FACT, path, "permission denied") from exc
    except IsADirectoryError as exc:
        raise FactUnavailable(KEYS_FACT, path, "is a directory") from exc
    except OSError as exc:
        raise FactUnavailable(KEYS_FACT, path, exc.strerror or str(exc)) from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FactParseError(
            KEYS_FACT,
            path,
            "the file is UTF-16 (as Windows PowerShell 5 writes with > or Out-File); sshd "
            "cannot read it: save it as UTF-8 and check the keys again",
        )
    return parse_authorized_keys(data.decode("utf-8", errors="replace"), path)
