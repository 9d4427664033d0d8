"""Windows installed software: the uninstall registry keys, as "Apps & features" lists them.

Every installer that registers with Windows (MSI or not) writes a subkey under
``SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall`` with a ``DisplayName``:
in ``HKLM`` for the machine (64-bit programs), in ``HKLM\\SOFTWARE\\WOW6432Node`` for
32-bit programs on 64-bit Windows, and in a user's own hive for per-user installs
(Dropbox, AnyDesk, Zoom and many others install per user). An entry without a
DisplayName is not shown to people and is skipped; entries marked ``SystemComponent``
are kept: hidden from the list is still installed.

Why PowerShell and not ``reg query ... /s``: one call reads all three places into JSON
in a shape we define (``{Is64BitProcess, Is64BitOperatingSystem, Entries: [{Scope, Key,
DisplayName, DisplayVersion}], Profiles: [{Sid, Path, Loaded}], UserProgramFolders:
[{Sid, Path, Name}]}``), whereas ``reg query /s`` prints a localised
"End of search: N match(es) found." footer, needs one call per hive and breaks its
line format on values that hold line breaks. The script escapes every non-ASCII
character (``\\uXXXX``), so the output decodes the same under any console code page.

Per-user installs are read through ``HKEY_USERS``, not ``HKCU``: the agent runs as a
service whose HKCU is the service account's. Only hives that are loaded (users logged
in) are visible. So the script also lists the profiles Windows knows
(``HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList``: SID and
``ProfileImagePath``) and whether each one's hive is loaded; the user profiles whose hive
is not loaded are named in the inventory (:attr:`SoftwareInventory.unread`), so a pass
says whose per-user installs it did not see (the service accounts S-1-5-18/19/20 install
nothing per user and are left out). For every profile it also lists the folders in
``<profile>\\AppData\\Local\\Programs`` (where per-user installers put programs, hidden
ones included), which it can read whether the user is logged in or not; their names are
matched like DisplayNames. A Programs folder that does not exist is nothing installed
there; one that cannot be read stops the script, which is an error. Software of users
not logged in is also found when it runs (the process list). A 32-bit PowerShell on
64-bit Windows would be redirected to the 32-bit view and miss 64-bit programs, so that
answer is refused. Anything PowerShell writes to stderr, output that is not our JSON, or
an entry of another shape is an error, never "nothing installed".
"""

from __future__ import annotations

from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError, FactUnavailable
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.endpoint_software import (
    FACT,
    Program,
    ProgramList,
    SoftwareInventory,
)
from tillsyn.collectors.host.powershell import script_json

UNINSTALL = r"Microsoft\Windows\CurrentVersion\Uninstall"
SCOPES = {
    "machine": rf"HKLM:\SOFTWARE\{UNINSTALL}\*",
    "machine-32bit": rf"HKLM:\SOFTWARE\WOW6432Node\{UNINSTALL}\*",
    "user": rf"Registry::HKEY_USERS\*\Software\{UNINSTALL}\*",
}
PROFILE_LIST = r"HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList"
USER_PROGRAMS = r"AppData\Local\Programs"
#: LocalSystem, LocalService, NetworkService: profiles that install nothing per user.
SERVICE_SIDS = ("S-1-5-18", "S-1-5-19", "S-1-5-20")
INVENTORY_SCRIPT = (
    "$ErrorActionPreference = 'Stop'; "
    "$roots = [ordered]@{ "
    + "; ".join(f"'{scope}' = '{path}'" for scope, path in SCOPES.items())
    + " }; "
    "$entries = @(foreach ($scope in $roots.Keys) { "
    "Get-ItemProperty -Path $roots[$scope] | Where-Object { $_.DisplayName } | "
    "ForEach-Object { [pscustomobject]@{ "
    "Scope = $scope; "
    "Key = $_.PSPath -replace '^Microsoft\\.PowerShell\\.Core\\\\Registry::', ''; "
    "DisplayName = [string]$_.DisplayName; "
    "DisplayVersion = [string]$_.DisplayVersion "
    "} } }); "
    f"$profiles = @(Get-ChildItem -Path '{PROFILE_LIST}' | ForEach-Object {{ "
    "$sid = $_.PSChildName; "
    "[pscustomobject]@{ "
    "Sid = $sid; "
    "Path = [string](Get-ItemProperty -Path $_.PSPath).ProfileImagePath; "
    "Loaded = [bool](Test-Path -LiteralPath ('Registry::HKEY_USERS\\' + $sid)) "
    "} }); "
    "$folders = @(foreach ($p in $profiles) { if ($p.Path) { "
    f"$dir = Join-Path $p.Path '{USER_PROGRAMS}'; "
    "try { $found = @(Get-ChildItem -LiteralPath $dir -Directory -Force) } "
    "catch [System.Management.Automation.ItemNotFoundException] { $found = @() }; "
    "foreach ($f in $found) { "
    "[pscustomobject]@{ Sid = $p.Sid; Path = $f.FullName; Name = $f.Name } } } }); "
    "$json = ConvertTo-Json -Compress -Depth 3 -InputObject ([pscustomobject]@{ "
    "Is64BitProcess = [Environment]::Is64BitProcess; "
    "Is64BitOperatingSystem = [Environment]::Is64BitOperatingSystem; "
    "Entries = $entries; Profiles = $profiles; UserProgramFolders = $folders }); "
    "[regex]::Replace($json, '[^\\x00-\\x7F]', "
    "{ param($m) '\\u{0:x4}' -f [int][char]$m.Value })"
)
POWERSHELL_INVENTORY = [
    "powershell.exe",
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    INVENTORY_SCRIPT,
]
CALL = "powershell.exe -NoProfile -NonInteractive -Command <uninstall-registry inventory script>"


def _entry(item: object, call: str) -> Program:
    if not isinstance(item, dict):
        raise FactParseError(FACT, call, "an entry is not a JSON object", repr(item))
    scope, key = item.get("Scope"), item.get("Key")
    name, version = item.get("DisplayName"), item.get("DisplayVersion")
    if scope not in SCOPES or not isinstance(key, str) or not key:
        raise FactParseError(FACT, call, "entry without a known Scope and a Key", repr(item))
    if not isinstance(name, str) or not name.strip():
        raise FactParseError(FACT, call, "entry without a DisplayName", repr(item))
    if version is not None and not isinstance(version, str):
        raise FactParseError(FACT, call, "DisplayVersion is not a string", repr(item))
    return Program(name.strip(), (version or "").strip(), key, (name.strip(),))


@dataclass(frozen=True)
class Profile:
    """A user profile from ProfileList, and whether its registry hive is loaded."""

    sid: str
    path: str
    loaded: bool

    @property
    def shown(self) -> str:
        return f"{self.path} ({self.sid})" if self.path else self.sid


@dataclass(frozen=True)
class Inventory:
    """What the script found: uninstall entries, profiles, per-user Programs folders."""

    programs: tuple[Program, ...]
    profiles: tuple[Profile, ...]
    folders: tuple[Program, ...]

    @property
    def unloaded(self) -> tuple[Profile, ...]:
        """User profiles whose hive is not loaded (their uninstall keys were not read)."""
        return tuple(p for p in self.profiles if not p.loaded and p.sid not in SERVICE_SIDS)


def _list(data: dict[str, object], key: str, call: str) -> list[object]:
    value = data[key]
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]  # PowerShell unwraps a one-element array
    if not isinstance(value, list):
        raise FactParseError(FACT, call, f"{key} is not a list", repr(value))
    return value


def _profile(item: object, call: str) -> Profile:
    if not isinstance(item, dict):
        raise FactParseError(FACT, call, "a profile is not a JSON object", repr(item))
    sid, path, loaded = item.get("Sid"), item.get("Path"), item.get("Loaded")
    if not isinstance(sid, str) or not sid.startswith("S-1-"):
        raise FactParseError(FACT, call, "profile without a SID", repr(item))
    if path is not None and not isinstance(path, str):
        raise FactParseError(FACT, call, "profile Path is not a string", repr(item))
    if not isinstance(loaded, bool):
        raise FactParseError(FACT, call, "profile Loaded is not true or false", repr(item))
    return Profile(sid, (path or "").strip(), loaded)


def _folder(item: object, call: str) -> Program:
    if not isinstance(item, dict):
        raise FactParseError(FACT, call, "a program folder is not a JSON object", repr(item))
    path, name = item.get("Path"), item.get("Name")
    if not isinstance(path, str) or not path or not isinstance(name, str) or not name.strip():
        raise FactParseError(FACT, call, "program folder without a Path and a Name", repr(item))
    return Program(name.strip(), "", path, (name.strip(),))


def parse_inventory(stdout: str, stderr: str, call: str) -> Inventory:
    """The script's JSON; an empty list is possible, empty output is not."""
    data = script_json(stdout, stderr, FACT, call, "PowerShell reported an error")
    text = stdout.strip()
    needed = {"Is64BitProcess", "Entries", "Profiles", "UserProgramFolders"}
    if not isinstance(data, dict) or not needed <= set(data):
        raise FactParseError(FACT, call, "not the inventory object", text)
    if data.get("Is64BitOperatingSystem") is True and data["Is64BitProcess"] is not True:
        raise FactUnavailable(
            FACT, call, "a 32-bit PowerShell on 64-bit Windows sees only the 32-bit registry"
        )
    profiles = tuple(_profile(item, call) for item in _list(data, "Profiles", call))
    if not profiles:
        # Every Windows has at least LocalSystem's profile: none means the list was not read.
        raise FactParseError(FACT, call, "no profile in ProfileList", text)
    return Inventory(
        tuple(_entry(item, call) for item in _list(data, "Entries", call)),
        profiles,
        tuple(_folder(item, call) for item in _list(data, "UserProgramFolders", call)),
    )


def parse_uninstall_inventory(stdout: str, stderr: str, call: str) -> tuple[Program, ...]:
    """The uninstall entries of the script's JSON as programs."""
    return parse_inventory(stdout, stderr, call).programs


def collect(host: HostBase) -> SoftwareInventory:
    """The uninstall entries of the machine and of every loaded user hive, the per-user
    Programs folders of every profile, and the profiles whose hive was not read."""
    result = host.command(FACT, POWERSHELL_INVENTORY, shown=CALL)
    found = parse_inventory(result.stdout, result.stderr, CALL)
    listed = ProgramList("uninstall-registry", "installed program", CALL, found.programs, host.now)
    folders = ProgramList(
        "user-programs-folders",
        "per-user program folder",
        CALL,
        found.folders,
        host.now,
    )
    unread: tuple[str, ...] = ()
    if found.unloaded:
        count = len(found.unloaded)
        unread = (
            f"per-user installs of {count} logged-off profile{'s' if count > 1 else ''} not "
            f"read: {', '.join(p.shown for p in found.unloaded)} (hive not loaded; only "
            f"their {USER_PROGRAMS} folders were)",
        )
    return SoftwareInventory((), (), (), (listed, folders), unread)
