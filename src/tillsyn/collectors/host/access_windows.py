"""Windows: local users and the members of the privileged built-in groups.

A module of its own because Windows keeps accounts in the SAM, not in files, and has no
sudo: privilege on Windows is membership of a group. The answers come from two PowerShell
scripts of ours that print JSON in a shape we define (:data:`USERS_SCRIPT`,
:data:`GROUPS_SCRIPT`), dates as UTC ``yyyy-MM-ddTHH:mm:ssZ`` written with the invariant
culture (the current one would write Buddhist years on a Thai Windows, Hijri ones on
ar-SA).

Text encoding. The agent decodes a command's output with the ANSI code page, while
Windows PowerShell 5.1 writes redirected output in the console's (OEM) code page, so a
name like Björn would arrive garbled. Every script therefore starts with
:data:`~.powershell.PRELUDE` (UTF-8 output, no progress records on stderr, stop on the
first error) and ends with :func:`~.powershell.ascii_json`, which escapes every character
outside ASCII as ``\\uXXXX`` in the JSON: the bytes are ASCII whichever code page decodes
them, and ``json.loads`` restores the names exactly. PowerShell is run by its absolute
path (:data:`~.powershell.POWERSHELL_EXE`), not found through PATH.

- ``Get-LocalUser``: ``{ComputerName, Users: [{Name, SID, Enabled, PasswordRequired,
  PasswordLastSet, PasswordExpires, AccountExpires, LastLogon, PrincipalSource}]}``. No
  password or hash is available to it, so none can reach evidence.
- ``Get-LocalGroupMember -SID`` for Administrators (S-1-5-32-544), Remote Desktop Users
  (S-1-5-32-555), Backup Operators (S-1-5-32-551), Remote Management Users
  (S-1-5-32-580: WinRM / PowerShell remoting) and Hyper-V Administrators (S-1-5-32-578:
  full control of the virtual machines, and so of their disks): ``{ComputerName, Groups:
  [{SID, Name, Members: [{Name, SID, ObjectClass, PrincipalSource}], Error, ErrorId}]}``.
  Groups are selected by their well-known SID, never by name: the names are localised
  (Administratoren, Administrateurs). Results carry the English name as the resource, the
  local one as evidence. Each group is read in its own try/catch, so one that cannot be
  listed is an error for that group only; the last two may be absent from an edition
  (``GroupNotFound``), which is reported as such, never as "no members".

Member names are as Windows prints them, ``DOMAIN\\name``; a local account's prefix is this
computer's name and is dropped, so members read like the accounts check's names, while
domain and Azure AD members keep theirs (``CORP\\Domain Admins``, ``AzureAD\\JaneRoe``).

The built-in Administrator is the account whose SID ends in RID 500 (it may be renamed),
the built-in Guest RID 501.

Get-LocalGroupMember cannot list a group holding a SID that no longer resolves (an
account deleted from the domain, or a domain not reachable): it fails with "An
unspecified error occurred: error code = 1789" or "Failed to compare two elements in the
array" (PowerShell/PowerShell#2996, #21617). That group is then an error naming the
orphaned SID as the likely cause, never an empty group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host.powershell import PRELUDE, ascii_json, powershell, script_json, shown

USERS_FACT = "host.access.windows_users"
GROUPS_FACT = "host.access.windows_groups"

#: The privileged built-in groups by well-known SID, with their English names.
PRIVILEGED_GROUPS = {
    "S-1-5-32-544": "Administrators",
    "S-1-5-32-555": "Remote Desktop Users",
    "S-1-5-32-551": "Backup Operators",
    "S-1-5-32-580": "Remote Management Users",
    "S-1-5-32-578": "Hyper-V Administrators",
}
#: Groups an edition may lack (Get-LocalGroup answers GroupNotFound): absent, not empty.
OPTIONAL_GROUPS = frozenset({"S-1-5-32-580", "S-1-5-32-578"})
BUILTIN_ADMINISTRATOR_RID = 500
BUILTIN_GUEST_RID = 501

_UTC = (
    "function Utc($d) { if ($d) { $d.ToUniversalTime().ToString("
    "\"yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'\", [Globalization.CultureInfo]::InvariantCulture) } }; "
)
USERS_SCRIPT = (
    PRELUDE + _UTC + "$users = @(Get-LocalUser | ForEach-Object { [pscustomobject]@{ "
    "Name = [string]$_.Name; SID = [string]$_.SID; Enabled = [bool]$_.Enabled; "
    "PasswordRequired = [bool]$_.PasswordRequired; PasswordLastSet = (Utc $_.PasswordLastSet); "
    "PasswordExpires = (Utc $_.PasswordExpires); AccountExpires = (Utc $_.AccountExpires); "
    "LastLogon = (Utc $_.LastLogon); PrincipalSource = [string]$_.PrincipalSource } }); "
    + ascii_json("[pscustomobject]@{ ComputerName = $env:COMPUTERNAME; Users = $users }")
)
GROUPS_SCRIPT = (
    PRELUDE
    + "$groups = @(foreach ($sid in "
    + ",".join(f"'{s}'" for s in PRIVILEGED_GROUPS)
    + ") { "
    "try { $g = Get-LocalGroup -SID $sid; "
    "$m = @(Get-LocalGroupMember -SID $sid | ForEach-Object { [pscustomobject]@{ "
    "Name = [string]$_.Name; SID = [string]$_.SID; ObjectClass = [string]$_.ObjectClass; "
    "PrincipalSource = [string]$_.PrincipalSource } }); "
    "[pscustomobject]@{ SID = $sid; Name = [string]$g.Name; Members = $m; Error = $null } "
    "} catch { [pscustomobject]@{ SID = $sid; Name = $null; Members = $null; "
    "Error = [string]$_.Exception.Message; ErrorId = [string]$_.FullyQualifiedErrorId } } }); "
    + ascii_json("[pscustomobject]@{ ComputerName = $env:COMPUTERNAME; Groups = $groups }")
)
POWERSHELL_USERS = powershell(USERS_SCRIPT)
POWERSHELL_GROUPS = powershell(GROUPS_SCRIPT)
USERS_CALL = shown("Get-LocalUser script")
GROUPS_CALL = shown("Get-LocalGroupMember script")
#: How Get-LocalGroupMember fails on a member SID that no longer resolves.
ORPHANED_SID = ("error code = 1789", "Failed to compare two elements in the array")
_SID = re.compile(r"^S-1-\d+(-\d+)+$")


@dataclass(frozen=True)
class WindowsUser:
    name: str
    sid: str
    enabled: bool
    password_required: bool
    password_last_set: datetime | None
    password_expires: datetime | None
    account_expires: datetime | None
    last_logon: datetime | None
    source: str

    @property
    def rid(self) -> int:
        return int(self.sid.rsplit("-", 1)[1])

    def expired(self, now: datetime) -> bool:
        return self.account_expires is not None and self.account_expires <= now

    def observed(self, now: datetime) -> dict[str, object]:
        def day(value: datetime | None) -> str | None:
            return value.strftime("%Y-%m-%d %H:%M UTC") if value else None

        return {
            "sid": self.sid,
            "rid": self.rid,
            "enabled": self.enabled,
            "password_required": self.password_required,
            "password_last_set": day(self.password_last_set),
            "password_expires": day(self.password_expires),
            "account_expires": day(self.account_expires),
            "expired": self.expired(now),
            "last_logon": day(self.last_logon),
            "source": self.source,
        }

    def describe(self, now: datetime) -> str:
        """``password last set 2026-03-02, account does not expire, last logon 2026-11-20``."""
        bits = [
            "password last set "
            + (f"{self.password_last_set:%Y-%m-%d}" if self.password_last_set else "never")
        ]
        if self.account_expires is None:
            bits.append("account does not expire")
        elif self.expired(now):
            bits.append(f"account expired on {self.account_expires:%Y-%m-%d}")
        else:
            bits.append(f"account expires on {self.account_expires:%Y-%m-%d}")
        bits.append(
            f"last logon {self.last_logon:%Y-%m-%d}" if self.last_logon else "never logged on"
        )
        return ", ".join(bits)


@dataclass(frozen=True)
class WindowsUsers:
    computer: str
    users: tuple[WindowsUser, ...]


@dataclass(frozen=True)
class GroupMember:
    name: str  # as Windows prints it, this computer's prefix dropped
    sid: str
    object_class: str  # User, Group
    source: str  # Local, ActiveDirectory, AzureAD, MicrosoftAccount, Unknown


@dataclass(frozen=True)
class WindowsGroup:
    sid: str
    name: str  # the English name (resource and baseline key)
    local_name: str | None  # as this Windows names it; None when it could not be read
    members: tuple[GroupMember, ...]
    error: str | None
    #: This Windows has no such group (an optional one, GroupNotFound); ``error`` says so.
    missing: bool = False

    @property
    def member_names(self) -> list[str]:
        return sorted({m.name for m in self.members})


@dataclass(frozen=True)
class WindowsGroups:
    computer: str
    groups: tuple[WindowsGroup, ...]


def _document(stdout: str, stderr: str, fact: str, call: str, key: str) -> tuple[str, list[Any]]:
    """The script's JSON object: (computer name, the list under ``key``)."""
    data = script_json(stdout, stderr, fact, call, "PowerShell reported")
    text = stdout.strip()
    if not isinstance(data, dict) or key not in data:
        raise FactParseError(fact, call, f"not the script's object with {key}", text)
    computer = data.get("ComputerName")
    if not isinstance(computer, str) or not computer:
        raise FactParseError(fact, call, "no ComputerName", text)
    return computer, _items(data[key])


def _items(value: Any) -> list[Any]:
    """A JSON list (PowerShell may print one item bare, or nothing as null)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(item: dict[str, Any], key: str, fact: str, call: str, empty: bool = False) -> str:
    value = item.get(key)
    if not isinstance(value, str) or (not value and not empty):
        raise FactParseError(fact, call, f"{key} is not a string", repr(item))
    return value


def _flag(item: dict[str, Any], key: str, fact: str, call: str) -> bool:
    value = item.get(key)
    if not isinstance(value, bool):
        raise FactParseError(fact, call, f"{key} is not true or false", repr(item))
    return value


def _time(item: dict[str, Any], key: str, fact: str, call: str) -> datetime | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.endswith("Z"):
        raise FactParseError(fact, call, f"{key} is not a UTC time", repr(value))
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise FactParseError(fact, call, f"{key} is not a UTC time", repr(value)) from exc


def _sid(item: dict[str, Any], fact: str, call: str) -> str:
    sid = _text(item, "SID", fact, call)
    if not _SID.match(sid):
        raise FactParseError(fact, call, "SID is not a security identifier", repr(sid))
    return sid


def parse_users(stdout: str, stderr: str, call: str) -> WindowsUsers:
    fact = USERS_FACT
    computer, items = _document(stdout, stderr, fact, call, "Users")
    users: list[WindowsUser] = []
    for item in items:
        if not isinstance(item, dict):
            raise FactParseError(fact, call, "a user is not a JSON object", repr(item))
        users.append(
            WindowsUser(
                name=_text(item, "Name", fact, call),
                sid=_sid(item, fact, call),
                enabled=_flag(item, "Enabled", fact, call),
                password_required=_flag(item, "PasswordRequired", fact, call),
                password_last_set=_time(item, "PasswordLastSet", fact, call),
                password_expires=_time(item, "PasswordExpires", fact, call),
                account_expires=_time(item, "AccountExpires", fact, call),
                last_logon=_time(item, "LastLogon", fact, call),
                source=_text(item, "PrincipalSource", fact, call, empty=True),
            )
        )
    if not any(u.rid == BUILTIN_ADMINISTRATOR_RID for u in users):
        # Every Windows has the RID 500 account, disabled or not: an answer without it
        # is not a complete list of local users.
        raise FactParseError(fact, call, "no built-in Administrator (RID 500) in the list", stdout)
    return WindowsUsers(computer, tuple(users))


def _member_name(name: str, computer: str) -> str:
    prefix, sep, rest = name.partition("\\")
    return rest if sep and prefix.upper() == computer.upper() else name


def parse_groups(stdout: str, stderr: str, call: str) -> WindowsGroups:
    fact = GROUPS_FACT
    computer, items = _document(stdout, stderr, fact, call, "Groups")
    groups: dict[str, WindowsGroup] = {}
    for item in items:
        if not isinstance(item, dict):
            raise FactParseError(fact, call, "a group is not a JSON object", repr(item))
        sid = _sid(item, fact, call)
        if sid not in PRIVILEGED_GROUPS or sid in groups:
            raise FactParseError(fact, call, f"unexpected or repeated group {sid}", stdout)
        error = item.get("Error")
        if error is not None:
            error_id = item.get("ErrorId")
            absent = (
                sid in OPTIONAL_GROUPS
                and isinstance(error_id, str)
                and error_id.startswith("GroupNotFound,")
            )
            groups[sid] = WindowsGroup(
                sid, PRIVILEGED_GROUPS[sid], None, (), str(error) or "?", absent
            )
            continue
        members = []
        for raw in _items(item.get("Members")):
            if not isinstance(raw, dict):
                raise FactParseError(fact, call, "a member is not a JSON object", repr(raw))
            members.append(
                GroupMember(
                    name=_member_name(_text(raw, "Name", fact, call), computer),
                    sid=_sid(raw, fact, call),
                    object_class=_text(raw, "ObjectClass", fact, call, empty=True),
                    source=_text(raw, "PrincipalSource", fact, call, empty=True),
                )
            )
        local_name = _text(item, "Name", fact, call)
        groups[sid] = WindowsGroup(sid, PRIVILEGED_GROUPS[sid], local_name, tuple(members), None)
    missing = [s for s in PRIVILEGED_GROUPS if s not in groups]
    if missing:
        raise FactParseError(fact, call, f"no answer for {', '.join(missing)}", stdout)
    return WindowsGroups(computer, tuple(groups[s] for s in PRIVILEGED_GROUPS))


def group_error_reason(error: str) -> str:
    """Why a group could not be listed, with the orphaned-SID cause named when it is that."""
    said = error.strip().splitlines()[0] if error.strip() else "no message"
    if any(marker in error for marker in ORPHANED_SID):
        return (
            f"Get-LocalGroupMember failed ({said}): a member SID no longer resolves to a "
            "name (an orphaned SID of a deleted account or an unreachable domain, "
            "PowerShell/PowerShell#2996); remove it with Remove-LocalGroupMember -Member "
            "<SID> or list the group with net localgroup"
        )
    return f"Get-LocalGroupMember failed: {said}"
