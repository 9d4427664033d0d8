"""macOS patching: ``softwareupdate --list`` and the Software Update preferences.

Apple does not mark updates as "security" in ``softwareupdate``: security fixes ship inside
the recommended macOS, Safari and Rapid Security Response updates. So every item marked
``Recommended: YES`` counts as a pending security update, and the evidence says so.
Items without it (a new major macOS offered as an upgrade) are not counted.

Automatic updates are read from ``defaults read /Library/Preferences/com.apple.SoftwareUpdate``
(readable without root). Apple documents what each key switches (System Settings >
Software Update > Automatic updates; the keys are the ones Apple's MDM payload
``com.apple.SoftwareUpdate`` manages) but not which value a missing key stands for: it
differs between releases and with MDM. So a missing key is read as *not enabled*, never
as on; a setting pushed by a configuration profile (``/Library/Managed Preferences``) is
not read by this collector and shows up as unset.
"""

from __future__ import annotations

import re

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host.patching_model import PendingUpdate

PENDING_FACT = "host.patch.pending_security_updates"
AUTO_FACT = "host.patch.auto_updates"

SOFTWAREUPDATE_LIST = ["softwareupdate", "--list"]
PREFS_DOMAIN = "/Library/Preferences/com.apple.SoftwareUpdate"
DEFAULTS_READ = ["defaults", "read", PREFS_DOMAIN]
ORIGIN = "Apple Software Update (recommended; Apple does not flag security updates separately)"

#: Every one of these must be 1 for automatic security updates to count as on:
#: check for updates, download them, install macOS updates (security fixes ship in them),
#: install Rapid Security Responses and system data files, install XProtect/Gatekeeper data.
REQUIRED_KEYS = (
    "AutomaticCheckEnabled",
    "AutomaticDownload",
    "AutomaticallyInstallMacOSUpdates",
    "CriticalUpdateInstall",
    "ConfigDataInstall",
)

_HEADER = "Software Update found the following new or updated software:"
_NOTHING = "No new software available."
_NOISE = ("Software Update Tool", "Finding available software")
_LABEL = re.compile(r"^\* Label: (?P<label>\S.*?)\s*$")
_DETAILS = re.compile(
    r"^\s+Title: (?P<title>.+?), Version: (?P<version>[^,]*), Size: (?P<size>[^,]*),"
    r"(?: Recommended: (?P<recommended>YES|NO),)?(?: Action: (?P<action>[^,]*),)?\s*$"
)


def parse_softwareupdate_list(stdout: str, stderr: str, call: str) -> tuple[PendingUpdate, ...]:
    """The recommended items of ``softwareupdate --list``; "No new software" means none.

    Empty output without Apple's "No new software available." is not "nothing pending",
    and neither is the "found the following" header with no item after it (truncated).
    """
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if not lines:
        if _NOTHING in stderr:
            return ()
        raise FactParseError(
            PENDING_FACT, call, "no updates listed and no 'No new software available.'", stderr
        )
    updates: list[PendingUpdate] = []
    label: str | None = None
    seen_header = False
    items = 0
    for line in lines:
        if line.strip() in _NOISE or line.strip() == _NOTHING:
            continue
        if line.strip() == _HEADER:
            seen_header = True
            continue
        if not seen_header:
            raise FactParseError(PENDING_FACT, call, "unexpected line before the list", line)
        if match := _LABEL.match(line):
            if label is not None:
                raise FactParseError(PENDING_FACT, call, "label without details", label)
            label = match["label"]
            continue
        match = _DETAILS.match(line)
        if match is None or label is None:
            raise FactParseError(PENDING_FACT, call, "unexpected line", line)
        items += 1
        if match["recommended"] == "YES":
            updates.append(
                PendingUpdate(
                    package=label,
                    candidate=match["version"].strip() or None,
                    origins=(ORIGIN,),
                )
            )
        label = None
    if label is not None:
        raise FactParseError(PENDING_FACT, call, "output cut off after a label", label)
    if not seen_header:
        raise FactParseError(PENDING_FACT, call, "no update list", stdout)
    if not items:
        # The header promises at least one item: without one the output was cut off.
        raise FactParseError(
            PENDING_FACT, call, "the update list's header with no item after it (truncated)", stdout
        )
    return tuple(updates)


_KEY_VALUE = re.compile(r'^\s*"?(?P<key>[A-Za-z0-9_.\-]+)"?\s*=\s*(?P<value>.*?)\s*$')


def _depth_change(text: str) -> int:
    """How many brackets a line opens minus closes, outside quoted strings."""
    change, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "({":
            change += 1
        elif not quoted and char in ")}":
            change -= 1
    return change


def parse_defaults(stdout: str, call: str) -> dict[str, str]:
    """The top-level scalar keys of ``defaults read`` output (old-style plist text).

    Nested arrays and dictionaries (RecommendedUpdates ...) are skipped; anything that is
    not ``{ Key = value; ... }`` is a parse error.
    """
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if len(lines) < 2 or lines[0].strip() != "{" or lines[-1].strip() != "}":
        raise FactParseError(AUTO_FACT, call, "not a plist dictionary", stdout)
    values: dict[str, str] = {}
    depth = 0
    for line in lines[1:-1]:
        if depth == 0:
            match = _KEY_VALUE.match(line)
            if match is None:
                raise FactParseError(AUTO_FACT, call, "unexpected line", line)
            value = match["value"]
            if value.endswith(";") and _depth_change(value) == 0:
                values[match["key"]] = value[:-1].strip().strip('"')
                continue
            depth = _depth_change(value)
            if depth <= 0:
                raise FactParseError(AUTO_FACT, call, "unterminated value", line)
        else:
            depth += _depth_change(line)
            if depth < 0:
                raise FactParseError(AUTO_FACT, call, "unbalanced brackets", line)
    if depth != 0:
        raise FactParseError(AUTO_FACT, call, "output cut off inside a value", lines[-2])
    return values


def auto_update_problems(values: dict[str, str], call: str) -> tuple[dict[str, str], list[str]]:
    """The required keys as read (``unset`` when missing) and what keeps updates manual."""
    settings: dict[str, str] = {}
    problems: list[str] = []
    for key in REQUIRED_KEYS:
        value = values.get(key)
        if value is None:
            settings[key] = "unset"
            problems.append(f"{key} is not set (read as not enabled)")
        elif value in ("1", "0"):
            settings[key] = value
            if value == "0":
                problems.append(f"{key} is 0")
        else:
            raise FactParseError(AUTO_FACT, call, f"{key} is neither 0 nor 1", value)
    return settings, problems
