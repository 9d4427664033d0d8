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
DisplayName, DisplayVersion}]}``), whereas ``reg query /s`` prints a localised
"End of search: N match(es) found." footer, needs one call per hive and breaks its
line format on values that hold line breaks. The script escapes every non-ASCII
character (``\\uXXXX``), so the output decodes the same under any console code page.

Per-user installs are read through ``HKEY_USERS``, not ``HKCU``: the agent runs as a
service whose HKCU is the service account's. Only hives that are loaded (users logged
in) are visible; software of users not logged in is found when it runs (the process
list). A 32-bit PowerShell on 64-bit Windows would be redirected to the 32-bit view and
miss 64-bit programs, so that answer is refused. Anything PowerShell writes to stderr,
output that is not our JSON, or an entry of another shape is an error, never "nothing
installed".
"""

from __future__ import annotations

import json

from tillsyn.collectors.errors import FactParseError, FactUnavailable
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.endpoint_software import (
    FACT,
    Program,
    ProgramList,
    SoftwareInventory,
)

UNINSTALL = r"Microsoft\Windows\CurrentVersion\Uninstall"
SCOPES = {
    "machine": rf"HKLM:\SOFTWARE\{UNINSTALL}\*",
    "machine-32bit": rf"HKLM:\SOFTWARE\WOW6432Node\{UNINSTALL}\*",
    "user": rf"Registry::HKEY_USERS\*\Software\{UNINSTALL}\*",
}
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
    "$json = ConvertTo-Json -Compress -Depth 3 -InputObject ([pscustomobject]@{ "
    "Is64BitProcess = [Environment]::Is64BitProcess; "
    "Is64BitOperatingSystem = [Environment]::Is64BitOperatingSystem; "
    "Entries = $entries }); "
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


def parse_uninstall_inventory(stdout: str, stderr: str, call: str) -> tuple[Program, ...]:
    """The script's JSON as programs; an empty list is possible, empty output is not."""
    if stderr.strip():
        raise FactParseError(FACT, call, "PowerShell reported an error", stderr)
    text = stdout.strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactParseError(FACT, call, f"not JSON ({exc.msg})", text) from exc
    if not isinstance(data, dict) or not {"Is64BitProcess", "Entries"} <= set(data):
        raise FactParseError(FACT, call, "not the inventory object", text)
    if data.get("Is64BitOperatingSystem") is True and data["Is64BitProcess"] is not True:
        raise FactUnavailable(
            FACT, call, "a 32-bit PowerShell on 64-bit Windows sees only the 32-bit registry"
        )
    entries = data["Entries"]
    if entries is None:
        entries = []
    elif isinstance(entries, dict):
        entries = [entries]  # PowerShell unwraps a one-element array
    if not isinstance(entries, list):
        raise FactParseError(FACT, call, "Entries is not a list", repr(entries))
    return tuple(_entry(item, call) for item in entries)


def collect(host: HostBase) -> SoftwareInventory:
    """The uninstall entries of the machine and of every loaded user hive."""
    result = host.command(FACT, POWERSHELL_INVENTORY, shown=CALL)
    programs = parse_uninstall_inventory(result.stdout, result.stderr, CALL)
    listed = ProgramList("uninstall-registry", "installed program", CALL, programs, host.now)
    return SoftwareInventory((), (), (), (listed,))
