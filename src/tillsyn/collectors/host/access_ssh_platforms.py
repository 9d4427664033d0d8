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

Windows: ``HKLM\\...\\ProfileList`` has one subkey per profile, named by SID, with
``ProfileImagePath`` (REG_EXPAND_SZ: ``C:\\Users\\alice``,
``%systemroot%\\ServiceProfiles\\LocalService``); Win32-OpenSSH takes the home directory
from the same profile path. It is read by a PowerShell script of ours
(:data:`PROFILE_LIST_SCRIPT`, the 64-bit registry view whatever the agent's bitness),
not by ``reg query``: reg.exe writes redirected output in the OEM code page and the agent
decodes with the ANSI one, so ``C:\\Users\\Björn`` would arrive garbled and point at a
folder that does not exist. The script prints ``{Profiles: [{SID, ProfileImagePath,
Kind}]}`` as JSON with every non-ASCII character escaped (see :mod:`.access_windows`), so
the path arrives exactly; the value is read unexpanded and ``%SystemRoot%`` resolved
here. ProfileList holds no account names, so a profile is named by its folder
(``alice``), which is the account name unless Windows had to tell two apart
(``alice.CONTOSO``); the SID is kept with it. A subkey without ProfileImagePath is not a
profile anyone can log on with and is skipped. A profile whose folder does not exist is
an error for that profile (:func:`require_profile_folder`), never "no keys": its keys
cannot be looked for. ``%U`` (a numeric uid) has no meaning on Windows and is refused.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import Any

from tillsyn.collectors.errors import (
    FactParseError,
    FactPermissionDenied,
    FactTimeout,
    FactUnavailable,
)
from tillsyn.collectors.host import powershell as ps
from tillsyn.collectors.host._base import MACOS, WINDOWS, HostBase
from tillsyn.collectors.host.access_ssh import AuthorizedKey, expand_tokens, parse_authorized_keys

# Linux uses this module too: plistlib and the Windows modules are imported where used,
# so a Linux agent never loads them.

FACT = "host.access.ssh_key_holders"
KEYS_FACT = "host.access.authorized_keys"
DSCL_USERS = [
    "/usr/bin/dscl",
    "-plist",
    ".",
    "-readall",
    "/Users",
    "NFSHomeDirectory",
    "RecordName",
    "UniqueID",
]
PROFILE_LIST_KEY = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList"
PROFILE_LIST = f"HKLM\\{PROFILE_LIST_KEY}"
PROFILE_LIST_SCRIPT = (
    ps.PRELUDE
    + "$hklm = [Microsoft.Win32.RegistryKey]::OpenBaseKey('LocalMachine', 'Registry64'); "
    + f"$list = $hklm.OpenSubKey('{PROFILE_LIST_KEY}'); "
    + "if ($null -eq $list) { throw 'ProfileList key not found' }; "
    "$profiles = @(foreach ($sid in $list.GetSubKeyNames()) { $key = $list.OpenSubKey($sid); "
    "$path = $null; $kind = $null; "
    "if ($null -ne $key -and $key.GetValueNames() -contains 'ProfileImagePath') { "
    "$path = [string]$key.GetValue('ProfileImagePath', $null, 'DoNotExpandEnvironmentNames'); "
    "$kind = [string]$key.GetValueKind('ProfileImagePath') }; "
    "[pscustomobject]@{ SID = $sid; ProfileImagePath = $path; Kind = $kind } }); "
    + ps.ascii_json("[pscustomobject]@{ Profiles = $profiles }")
)
POWERSHELL_PROFILES = ps.powershell(PROFILE_LIST_SCRIPT)
PROFILES_CALL = ps.shown("ProfileList script")
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
        return f"{PROFILE_LIST} (PowerShell)"
    return "/etc/passwd"


# -- macOS ----------------------------------------------------------------------------


def _strings(record: dict[str, Any], name: str, call: str) -> list[str]:
    value = record.get(f"dsAttrTypeStandard:{name}", record.get(name, []))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FactParseError(FACT, call, f"{name} is not a list of strings", repr(value))
    return value


def parse_dscl_users(stdout: str) -> tuple[KeyHolder, ...]:
    """``dscl -plist . -readall /Users ...``: every user record's short name, uid, home."""
    import plistlib
    from xml.parsers.expat import ExpatError

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


def parse_profile_list(stdout: str, stderr: str, env: Mapping[str, str]) -> tuple[KeyHolder, ...]:
    """:data:`PROFILE_LIST_SCRIPT`'s JSON: each profile's folder name, home and SID."""
    from tillsyn.collectors.host import windows_paths as winpath

    call = PROFILES_CALL
    data = ps.script_json(stdout, stderr, FACT, call, "PowerShell reported")
    text = stdout.strip()
    if not isinstance(data, dict) or "Profiles" not in data:
        raise FactParseError(FACT, call, "not the script's object with Profiles", text)
    items = data["Profiles"]
    items = [] if items is None else items if isinstance(items, list) else [items]
    holders: list[KeyHolder] = []
    homes: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise FactParseError(FACT, call, "a profile is not a JSON object", repr(item))
        sid, data_path, kind = item.get("SID"), item.get("ProfileImagePath"), item.get("Kind")
        if not isinstance(sid, str) or not sid.startswith("S-1-"):
            raise FactParseError(FACT, call, "a profile without a SID", repr(item))
        if data_path is None:
            continue
        if kind not in ("ExpandString", "String") or not isinstance(data_path, str):
            raise FactParseError(FACT, call, f"{sid}: ProfileImagePath is {kind}", repr(item))
        try:
            home = winpath.normalize(winpath.expand_env(data_path, env))
        except ValueError as exc:
            raise FactParseError(FACT, call, f"{sid}: ProfileImagePath {exc}", data_path) from exc
        if home.lower() in (h.lower() for h in homes.values()):
            continue  # a .bak copy of a profile already listed
        name = PureWindowsPath(home).name or sid
        if name.lower() in (n.lower() for n in homes):
            name = f"{name} ({sid})"
        homes[name] = home
        holders.append(KeyHolder(name, home, None, sid))
    if not holders:
        # S-1-5-18 (SYSTEM) has a profile on every Windows: no profile is no answer.
        raise FactParseError(FACT, call, "no profile at all (SYSTEM always has one)", text)
    return tuple(holders)


def require_profile_folder(host: HostBase, holder: KeyHolder) -> None:
    """A Windows profile's folder must exist before "no keys file" may mean "no keys":
    ProfileList names it, so a missing one is a stale entry or a path not read right."""
    from tillsyn.collectors.host import windows_paths as winpath

    try:
        target = winpath.host_file(host.root, holder.home)
    except ValueError as exc:
        raise FactUnavailable(KEYS_FACT, holder.home, str(exc)) from exc
    try:
        mode = os.stat(target).st_mode
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise FactUnavailable(
            KEYS_FACT,
            holder.home,
            f"the profile folder of {holder.name} ({holder.sid}) does not exist, so its "
            "keys cannot be looked for (a stale ProfileList entry, or a path not read right)",
        ) from exc
    except PermissionError as exc:
        raise FactPermissionDenied(KEYS_FACT, holder.home, "permission denied") from exc
    except OSError as exc:
        raise FactUnavailable(KEYS_FACT, holder.home, exc.strerror or str(exc)) from exc
    if not stat.S_ISDIR(mode):
        raise FactUnavailable(KEYS_FACT, holder.home, "the profile folder is not a folder")


def windows_key_path(pattern: str, holder: KeyHolder, env: Mapping[str, str]) -> str:
    """One AuthorizedKeysFile entry for a Windows profile, as Win32-OpenSSH resolves it:
    %h %u %% expanded, ``__PROGRAMDATA__`` replaced, relative entries under the home."""
    from tillsyn.collectors.host import windows_paths as winpath

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
    try:
        return winpath.normalize(path)
    except ValueError as exc:
        raise FactParseError(
            "host.access.sshd_keys_config", "AuthorizedKeysFile", str(exc), pattern
        ) from exc


# -- every platform -------------------------------------------------------------------


def collect(host: HostBase) -> tuple[KeyHolder, ...]:
    """macOS and Windows holders (Linux ones come from the accounts fact)."""
    if host.platform == MACOS:
        return parse_dscl_users(host.command(FACT, DSCL_USERS).stdout)
    host.require_platform(FACT, WINDOWS)
    result = host.command(FACT, POWERSHELL_PROFILES, shown=PROFILES_CALL)
    return parse_profile_list(result.stdout, result.stderr, host.env)


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
    if host.platform == WINDOWS:
        from tillsyn.collectors.host import windows_paths as winpath

        try:
            target = winpath.host_file(host.root, path)
        except ValueError as exc:
            raise FactUnavailable(KEYS_FACT, path, str(exc)) from exc
    else:
        target = host.path(path)
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
