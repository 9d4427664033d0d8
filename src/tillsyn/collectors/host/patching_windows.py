"""Windows patching: the Windows Update Agent's search, and the registry.

Pending updates come from a PowerShell script of our own (:data:`WU_SCRIPT`) that asks
the Windows Update Agent COM API (``Microsoft.Update.Session``) for software updates not
installed, hidden or not, and prints the search's ``ResultCode`` and the updates as JSON
in a shape we define: ``{ResultCode, Updates: [{Title, KBArticleIDs, MsrcSeverity,
Categories, CategoryIDs, IsHidden, LastDeploymentChangeTime}]}``.

- The script always prints that object (``Updates: []`` when nothing is pending), so empty
  output means PowerShell died or the output was cut off: an error, never "nothing
  pending". A ``ResultCode`` other than 2 (``orcSucceeded``; 3 is "succeeded with
  errors", 4 "failed", 5 "aborted") is an error too: the list may be incomplete.
- An update is a security update when Microsoft rates it (``MsrcSeverity`` set; an empty
  string counts as unrated) or files it under the "Security Updates" classification,
  compared by its category id (:data:`SECURITY_CATEGORY_ID`), because the category's
  ``Name`` is localised ("Sicherheitsupdates" on a German Windows).
- Hidden updates are searched for too (``IsHidden=1``): a user who hides a security
  update in Windows Update stops it from being offered, so it stays pending and is
  counted, with ``hidden`` set so the result says so.
- ``LastDeploymentChangeTime`` (when Microsoft last released it) is kept as an upper bound
  on its first sighting: it was available from then on. It is formatted with the
  invariant culture: the current culture would print Buddhist (Thai) or Hijri (Arabic)
  years. The script also turns off the progress stream and prints UTF-8, so neither a
  progress record nor the console code page can garble the JSON.

``reg query`` answers whether the RebootRequired key exists (exit 0) or not (exit 1 with
"unable to find"), which Automatic Updates policy (``...\\WindowsUpdate\\AU``) is set,
whether the Windows Update service (``wuauserv``) may start (``Start`` 4 is disabled) and
whether a user paused updates in Settings (``HKLM\\SOFTWARE\\Microsoft\\WindowsUpdate\\UX\\
Settings``: ``PauseUpdatesExpiryTime``, ``PauseQualityUpdatesStartTime`` /
``...EndTime`` and the feature-update pair, ISO 8601 UTC strings such as
``2026-12-01T10:00:00Z``); its output is read by :mod:`.windows_registry`, shared with
the screen-lock facts.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host.patching_model import PendingUpdate
from tillsyn.collectors.host.windows_registry import reg_dword

PENDING_FACT = "host.patch.pending_security_updates"
AUTO_FACT = "host.patch.auto_updates"

_NOT_INSTALLED = "IsInstalled=0 and Type='Software'"
#: OR is allowed only between AND groups at the top level (IUpdateSearcher::Search).
WU_CRITERIA = f"{_NOT_INSTALLED} and IsHidden=0 or {_NOT_INSTALLED} and IsHidden=1"
_INVARIANT_UTC = (
    "\"yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'\", [Globalization.CultureInfo]::InvariantCulture"
)
WU_SCRIPT = (
    "$ErrorActionPreference = 'Stop'; "
    "$ProgressPreference = 'SilentlyContinue'; "
    "[Console]::OutputEncoding = [Text.UTF8Encoding]::new($false); "
    "$searcher = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher(); "
    f'$result = $searcher.Search("{WU_CRITERIA}"); '
    "$out = @(foreach ($u in $result.Updates) { [pscustomobject]@{ "
    "Title = $u.Title; "
    "KBArticleIDs = @($u.KBArticleIDs); "
    "MsrcSeverity = $u.MsrcSeverity; "
    "Categories = @($u.Categories | ForEach-Object { $_.Name }); "
    "CategoryIDs = @($u.Categories | ForEach-Object { $_.CategoryID }); "
    "IsHidden = [bool]$u.IsHidden; "
    "LastDeploymentChangeTime = "
    f"$u.LastDeploymentChangeTime.ToUniversalTime().ToString({_INVARIANT_UTC}) "
    "} }); "
    "ConvertTo-Json -Depth 4 -Compress -InputObject ([pscustomobject]@{ "
    "ResultCode = [int]$result.ResultCode; Updates = $out })"
)
POWERSHELL_WU = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", WU_SCRIPT]
WU_CALL = "powershell.exe -NoProfile -NonInteractive -Command <Windows Update search script>"

REBOOT_KEY = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
)
AU_KEY = r"HKLM\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU"
WUAUSERV_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services\wuauserv"
WUAUSERV_START_QUERY = ["reg", "query", WUAUSERV_KEY, "/v", "Start"]
UX_SETTINGS_KEY = r"HKLM\SOFTWARE\Microsoft\WindowsUpdate\UX\Settings"
UX_SETTINGS_QUERY = ["reg", "query", UX_SETTINGS_KEY]

SEVERITIES = {
    "Critical": "critical",
    "Important": "important",
    "Moderate": "moderate",
    "Low": "low",
}
#: The "Security Updates" classification's id: the same in every display language.
SECURITY_CATEGORY_ID = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
#: ISearchResult.ResultCode (OperationResultCode): only 2 is a complete search.
RESULT_CODES = {
    0: "not started",
    1: "in progress",
    2: "succeeded",
    3: "succeeded with errors",
    4: "failed",
    5: "aborted",
}
RESULT_SUCCEEDED = 2
FIELDS = {
    "Title",
    "KBArticleIDs",
    "MsrcSeverity",
    "Categories",
    "CategoryIDs",
    "IsHidden",
    "LastDeploymentChangeTime",
}

#: AUOptions values (Configure Automatic Updates policy) and what they mean.
AU_OPTIONS = {
    2: "notify before download and install",
    3: "download automatically, notify before install",
    4: "download automatically and install on a schedule",
    5: "the local administrator chooses",
    7: "download automatically, notify before install and restart",
}
#: Service start types (``Start`` under a service's key).
START_TYPES = {0: "boot", 1: "system", 2: "automatic", 3: "manual", 4: "disabled"}
START_DISABLED = 4
#: Settings > Windows Update pauses quality updates for at most this long (Microsoft Learn,
#: "Pause Windows updates"); a start time without an end time is read with this bound.
MAX_PAUSE = timedelta(days=35)
PAUSE_VALUES = (
    "PauseUpdatesExpiryTime",
    "PauseQualityUpdatesStartTime",
    "PauseQualityUpdatesEndTime",
    "PauseFeatureUpdatesStartTime",
    "PauseFeatureUpdatesEndTime",
)
_UX_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?Z$")


def _fields(item: object, call: str) -> dict[str, object]:
    if not isinstance(item, dict):
        raise FactParseError(PENDING_FACT, call, "an update is not a JSON object", repr(item))
    missing = FIELDS - set(item)
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


def _search_result(stdout: str, stderr: str, call: str) -> list[object]:
    """The script's object, checked: output there, JSON, our shape, ResultCode 2."""
    if stderr.strip() or "HRESULT" in stdout:
        raise FactParseError(PENDING_FACT, call, "Windows Update search reported", stderr or stdout)
    text = stdout.strip()
    if not text:
        raise FactParseError(
            PENDING_FACT,
            call,
            "no output: the script always prints its result object, so PowerShell "
            "stopped or the output was cut off",
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactParseError(PENDING_FACT, call, f"not JSON ({exc.msg})", text) from exc
    if not isinstance(data, dict) or not {"ResultCode", "Updates"} <= set(data):
        raise FactParseError(PENDING_FACT, call, "not the search result object", text)
    code = data["ResultCode"]
    if not isinstance(code, int) or isinstance(code, bool):
        raise FactParseError(PENDING_FACT, call, "ResultCode is not a number", repr(code))
    if code != RESULT_SUCCEEDED:
        meaning = RESULT_CODES.get(code, "unknown")
        raise FactParseError(
            PENDING_FACT,
            call,
            f"the search ended with ResultCode {code} ({meaning}), not 2 (succeeded): "
            "the list of pending updates may be incomplete",
        )
    items = data["Updates"]
    if items is None:
        return []
    if isinstance(items, dict):
        return [items]  # PowerShell unwraps a one-element array
    if not isinstance(items, list):
        raise FactParseError(PENDING_FACT, call, "Updates is not a list", repr(items))
    return items


def parse_wu_search(stdout: str, stderr: str, call: str) -> tuple[PendingUpdate, ...]:
    """The security updates (hidden ones included) in the script's JSON.

    Anything on stderr (a COM error such as HRESULT 0x8024402C printed without failing),
    empty output or a search that did not succeed is an error, never "nothing pending".
    """
    updates = []
    for raw in _search_result(stdout, stderr, call):
        item = _fields(raw, call)
        title = item["Title"]
        if not isinstance(title, str) or not title.strip():
            raise FactParseError(PENDING_FACT, call, "update without a title", repr(item))
        kbs = _strings(item["KBArticleIDs"], "KBArticleIDs", call)
        categories = _strings(item["Categories"], "Categories", call)
        category_ids = {c.lower() for c in _strings(item["CategoryIDs"], "CategoryIDs", call)}
        hidden = item["IsHidden"]
        if not isinstance(hidden, bool):
            raise FactParseError(PENDING_FACT, call, "IsHidden is not true or false", repr(item))
        severity_text = item["MsrcSeverity"]
        if severity_text == "":
            severity_text = None  # the agent's way of saying "not rated"
        if severity_text is not None and severity_text not in SEVERITIES:
            raise FactParseError(PENDING_FACT, call, "unknown MsrcSeverity", repr(severity_text))
        if severity_text is None and SECURITY_CATEGORY_ID not in category_ids:
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
                hidden=hidden,
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


def service_problems(start: int | None) -> tuple[dict[str, str], list[str]]:
    """The wuauserv start type; disabled (4), or no such service, stops every update."""
    if start is None:
        return {"wuauserv": "not registered"}, [
            f"the Windows Update service (wuauserv) is not registered (no Start value "
            f"under {WUAUSERV_KEY})"
        ]
    meaning = START_TYPES.get(start, "unknown")
    settings = {"wuauserv": f"Start {start:#x} ({meaning})"}
    if start == START_DISABLED:
        return settings, ["the Windows Update service (wuauserv) is disabled (Start 0x4)"]
    return settings, []


def _ux_time(values: dict[str, tuple[str, str]], name: str, call: str) -> datetime | None:
    if name not in values:
        return None
    kind, data = values[name]
    match = _UX_TIME.match(data.strip())
    if kind != "REG_SZ" or match is None:
        raise FactParseError(AUTO_FACT, call, f"{name} is not an ISO 8601 UTC time", data)
    try:
        return datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise FactParseError(AUTO_FACT, call, f"{name} is not a valid time", data) from exc


def pause_problems(
    values: dict[str, tuple[str, str]] | None, now: datetime, call: str
) -> tuple[dict[str, str], list[str]]:
    """Whether a user paused updates in Settings (UX\\Settings), read against ``now``.

    Quality (security) updates are paused while ``PauseUpdatesExpiryTime`` or
    ``PauseQualityUpdatesEndTime`` lies in the future, or a ``PauseQualityUpdatesStartTime``
    without an end time is less than :data:`MAX_PAUSE` ago. Paused feature updates are
    kept as evidence only: feature updates are not security updates.
    """
    if values is None:
        return {"pause": f"{UX_SETTINGS_KEY} does not exist: not paused"}, []
    times = {name: _ux_time(values, name, call) for name in PAUSE_VALUES}
    settings = {name: f"{when:%Y-%m-%dT%H:%M:%SZ}" for name, when in times.items() if when}
    problems = []
    for name in ("PauseUpdatesExpiryTime", "PauseQualityUpdatesEndTime"):
        until = times[name]
        if until is not None and until > now:
            problems.append(f"updates are paused until {until:%Y-%m-%d %H:%M} UTC ({name})")
    started = times["PauseQualityUpdatesStartTime"]
    if (
        not problems
        and started is not None
        and times["PauseQualityUpdatesEndTime"] is None
        and started <= now < started + MAX_PAUSE
    ):
        problems.append(
            f"quality updates were paused on {started:%Y-%m-%d %H:%M} UTC "
            f"(PauseQualityUpdatesStartTime, no end time; a pause lasts up to "
            f"{MAX_PAUSE.days} d)"
        )
    if not problems:
        settings["pause"] = "not paused"
    return settings, problems
