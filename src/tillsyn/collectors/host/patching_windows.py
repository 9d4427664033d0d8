"""Windows patching: the Windows Update Agent's search, and two registry keys.

Pending updates come from a PowerShell script of our own (:data:`WU_SCRIPT`) that asks
the Windows Update Agent COM API (``Microsoft.Update.Session``) for software updates not
installed and not hidden, and prints them as JSON in a shape we define: a list of
``{Title, KBArticleIDs, MsrcSeverity, Categories, LastDeploymentChangeTime}``. An update
is a security update when Microsoft rates it (``MsrcSeverity`` set) or files it under the
"Security Updates" category. ``LastDeploymentChangeTime`` (when Microsoft last released
it) is kept as an upper bound on its first sighting: it was available from then on.

``reg query`` answers whether the RebootRequired key exists (exit 0) or not (exit 1 with
"unable to find"), and which Automatic Updates policy (``...\\WindowsUpdate\\AU``) is set;
its output is read by :mod:`.windows_registry`, shared with the screen-lock facts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host.patching_model import PendingUpdate
from tillsyn.collectors.host.windows_registry import reg_dword

PENDING_FACT = "host.patch.pending_security_updates"
AUTO_FACT = "host.patch.auto_updates"

WU_CRITERIA = "IsInstalled=0 and Type='Software' and IsHidden=0"
WU_SCRIPT = (
    "$ErrorActionPreference = 'Stop'; "
    "$searcher = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher(); "
    f'$result = $searcher.Search("{WU_CRITERIA}"); '
    "$out = @(foreach ($u in $result.Updates) { [pscustomobject]@{ "
    "Title = $u.Title; "
    "KBArticleIDs = @($u.KBArticleIDs); "
    "MsrcSeverity = $u.MsrcSeverity; "
    "Categories = @($u.Categories | ForEach-Object { $_.Name }); "
    "LastDeploymentChangeTime = "
    "$u.LastDeploymentChangeTime.ToUniversalTime().ToString(\"yyyy-MM-dd'T'HH:mm:ss'Z'\") "
    "} }); "
    "ConvertTo-Json -InputObject $out -Depth 3 -Compress"
)
POWERSHELL_WU = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", WU_SCRIPT]
WU_CALL = "powershell.exe -NoProfile -NonInteractive -Command <Windows Update search script>"

REBOOT_KEY = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
)
AU_KEY = r"HKLM\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU"

SEVERITIES = {
    "Critical": "critical",
    "Important": "important",
    "Moderate": "moderate",
    "Low": "low",
}
SECURITY_CATEGORY = "Security Updates"

#: AUOptions values (Configure Automatic Updates policy) and what they mean.
AU_OPTIONS = {
    2: "notify before download and install",
    3: "download automatically, notify before install",
    4: "download automatically and install on a schedule",
    5: "the local administrator chooses",
    7: "download automatically, notify before install and restart",
}


def _fields(item: object, call: str) -> dict[str, object]:
    if not isinstance(item, dict):
        raise FactParseError(PENDING_FACT, call, "an update is not a JSON object", repr(item))
    missing = {"Title", "KBArticleIDs", "MsrcSeverity", "Categories", "LastDeploymentChangeTime"}
    missing -= set(item)
    if missing:
        raise FactParseError(PENDING_FACT, call, f"update without {sorted(missing)}", repr(item))
    return item


def _strings(value: object, what: str, call: str) -> tuple[str, ...]:
    """A JSON list of strings (or null, or one string: PowerShell unwraps single items)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise FactParseError(PENDING_FACT, call, f"{what} is not a list of strings", repr(value))


def parse_wu_search(stdout: str, stderr: str, call: str) -> tuple[PendingUpdate, ...]:
    """The security updates in the script's JSON; empty output (exit 0) means none.

    Anything on stderr (a COM error such as HRESULT 0x8024402C printed without failing)
    is an error, never "nothing pending".
    """
    if stderr.strip() or "HRESULT" in stdout:
        raise FactParseError(PENDING_FACT, call, "Windows Update search reported", stderr or stdout)
    text = stdout.strip()
    if not text:
        return ()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactParseError(PENDING_FACT, call, f"not JSON ({exc.msg})", text) from exc
    items = data if isinstance(data, list) else [data]
    updates = []
    for raw in items:
        item = _fields(raw, call)
        title = item["Title"]
        if not isinstance(title, str) or not title.strip():
            raise FactParseError(PENDING_FACT, call, "update without a title", repr(item))
        kbs = _strings(item["KBArticleIDs"], "KBArticleIDs", call)
        categories = _strings(item["Categories"], "Categories", call)
        severity_text = item["MsrcSeverity"]
        if severity_text is not None and severity_text not in SEVERITIES:
            raise FactParseError(PENDING_FACT, call, "unknown MsrcSeverity", repr(severity_text))
        if severity_text is None and SECURITY_CATEGORY not in categories:
            continue
        changed = item["LastDeploymentChangeTime"]
        try:
            deployed = datetime.strptime(str(changed), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError as exc:
            raise FactParseError(
                PENDING_FACT, call, "LastDeploymentChangeTime is not a UTC time", repr(changed)
            ) from exc
        updates.append(
            PendingUpdate(
                package="+".join(f"KB{kb}" for kb in kbs) if kbs else title,
                candidate=title,
                origins=categories,
                advisories=tuple(f"KB{kb}" for kb in kbs),
                severity=SEVERITIES[severity_text] if isinstance(severity_text, str) else None,
                first_seen=deployed,
            )
        )
    return tuple(updates)


def _dword(values: dict[str, tuple[str, str]], name: str, call: str) -> int | None:
    return reg_dword(values, name, call, AUTO_FACT)


def au_policy_problems(
    values: dict[str, tuple[str, str]] | None, call: str
) -> tuple[dict[str, str], list[str]]:
    """The Automatic Updates policy and what keeps updates from installing by themselves.

    No policy key, or a key that sets neither value, leaves Windows Update's defaults
    (download and install automatically) in force.
    """
    if values is None:
        return {"policy": "no policy: Windows Update defaults apply"}, []
    no_auto = _dword(values, "NoAutoUpdate", call)
    options = _dword(values, "AUOptions", call)
    settings = {
        "NoAutoUpdate": "unset" if no_auto is None else hex(no_auto),
        "AUOptions": "unset" if options is None else hex(options),
    }
    problems = []
    if no_auto not in (None, 0):
        problems.append(f"NoAutoUpdate is {no_auto:#x}: automatic updates are turned off")
    if options is not None and options != 4:
        meaning = AU_OPTIONS.get(options, "an unknown option")
        problems.append(f"AUOptions is {options:#x} ({meaning})")
    if not problems and options is None:
        settings["policy"] = "no AUOptions policy: Windows Update defaults apply"
    return settings, problems
