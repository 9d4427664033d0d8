"""Windows screen lock: the machine inactivity limit, a machine-wide security policy.

Why this source and not the screen saver:

- "Interactive logon: Machine inactivity limit" (Security Options) is stored as
  ``InactivityTimeoutSecs`` (REG_DWORD, seconds) under
  ``HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System``. Windows locks
  any logon session idle for longer than that, whatever the user's screen saver says;
  0 means no limit and the value is absent ("not enforced") unless a GPO, Intune or the
  local security policy sets it. It is the setting the CIS Windows benchmarks audit
  (2.3.7.3: 900 seconds or fewer, but not 0) and the Microsoft security baseline sets.
  Users cannot change HKLM policies, so a value here is always enforced.
- The screen-saver policy (``ScreenSaveActive``, ``ScreenSaverIsSecure``,
  ``ScreenSaveTimeOut`` under ``Software\\Policies\\Microsoft\\Windows\\Control
  Panel\\Desktop``) is a *user* policy in each user's hive. The agent runs as a service
  (LocalSystem): its ``HKCU`` is the service account's hive, not the hive of the person
  at the screen, and users who are not logged in have no hive loaded at all. Reading it
  would judge the wrong account, so it is not read: a machine that relies only on the
  user screen-saver policy fails here, with the message saying so.

Windows Server Core has no Explorer desktop but still has interactive (console and
remote desktop) logon sessions that this limit locks, so it is judged like any other
Windows; no Windows host is "not applicable".

``reg query KEY /v InactivityTimeoutSecs`` prints the key and the one value; a value that
is not set is exit 1 with "unable to find" (the System key itself always exists), read
by :mod:`.windows_registry`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.endpoint_screenlock import Desktop
from tillsyn.collectors.host.windows_registry import key_exists, parse_reg_query, reg_dword

FACT = "host.endpoint.windows_screen_lock"

#: Every Windows has interactive logon sessions (winlogon), Server Core included.
WINDOWS_DESKTOP = Desktop(("winlogon",), (("Windows logon sessions", "windows"),), "")

SYSTEM_POLICY_KEY = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System"
VALUE = "InactivityTimeoutSecs"
REG_QUERY = ["reg", "query", SYSTEM_POLICY_KEY, "/v", VALUE]


@dataclass(frozen=True)
class InactivityLimit:
    """The machine inactivity limit in seconds; None when no policy sets it."""

    seconds: int | None
    source: str = f"{SYSTEM_POLICY_KEY}\\{VALUE}"


def parse_inactivity_limit(returncode: int, stdout: str, stderr: str) -> InactivityLimit:
    """``reg query ... /v InactivityTimeoutSecs``: the DWORD, or None when it is not set."""
    call = " ".join(REG_QUERY)
    if not key_exists(returncode, stderr, REG_QUERY, FACT):
        return InactivityLimit(None)
    values = parse_reg_query(stdout, SYSTEM_POLICY_KEY, call, FACT)
    seconds = reg_dword(values, VALUE, call, FACT)
    if seconds is None:
        raise FactParseError(FACT, call, f"exit 0 but no {VALUE} value listed", stdout)
    return InactivityLimit(seconds)


def collect(host: HostBase) -> InactivityLimit:
    result = host.command(FACT, REG_QUERY, ok_codes=(0, 1))
    return parse_inactivity_limit(result.returncode, result.stdout, result.stderr)
