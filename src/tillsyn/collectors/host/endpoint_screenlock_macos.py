"""macOS screen lock: the configuration profile first, the console user's own settings after.

Why these sources (the same split as on Linux: policy an administrator enforces, and
otherwise what the session gets, not enforced):

- **Enforced** is what a configuration profile sets in the ``com.apple.screensaver``
  payload: ``idleTime`` (seconds before the screen saver starts), ``askForPassword``
  and ``askForPasswordDelay`` (seconds between the screen saver starting and the lock).
  The CIS macOS benchmark (2.11.1, 2.11.2) and the macOS Security Compliance Project
  (rules ``system_settings_screensaver_timeout_enforce``, ``..._password_enforce``,
  ``..._ask_for_password_delay_enforce``) audit exactly these keys and say they are
  "implemented by a Configuration Profile". macOS writes the forced values of the
  device's profiles to ``/Library/Managed Preferences/com.apple.screensaver.plist``
  (binary or XML plist, readable without root), which this module reads with plistlib;
  users cannot change them. Profiles scoped to one user
  (``/Library/Managed Preferences/<user>/``) are not read.
- **Not enforced** is what the person at the screen chose, read only for the keys the
  profile leaves unset. Since macOS 10.13 the per-user ``askForPassword`` keys are no
  longer what System Settings writes; on macOS 13 and later ``sysadminctl -screenLock
  status`` is the authoritative answer for "Require password after screen saver begins
  or display is turned off". It prints one line to **stderr** after a log prefix
  (``2024-05-02 10:11:12.345 sysadminctl[812:9101] ``): ``screenLock delay is
  immediate``, ``screenLock delay is N seconds`` or ``screenLock is off``; anything else
  (an older macOS printing its usage, another wording) is a parse error. The idle time is
  ``defaults -currentHost read com.apple.screensaver idleTime`` (seconds, 0 = never);
  exit 1 with "The domain/default pair of (com.apple.screensaver, idleTime) does not
  exist" means the user never set it, and macOS does not document the default it then
  uses, so it is reported as unknown, never assumed.
- Both commands answer for the user who runs them, and the agent runs as root: run
  plainly they would describe root's account, not the person at the screen. So they run
  as the console user (``stat -f "%Su %u" /dev/console``; ``root`` there means the
  login window, nobody is logged in), through ``launchctl asuser UID sudo -n -u USER``
  as Jamf and MDM scripts do; ``-n`` makes a missing privilege an error, not a prompt.

Not read: display sleep (``pmset displaysleep``), which also leads to the lock when it
comes before the screen saver, so a Mac judged here may in practice lock earlier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.endpoint_screenlock import Desktop, Setting
from tillsyn.collectors.host.plists import load_dict

FACT = "host.endpoint.macos_screen_lock"

#: A Mac always has a desktop: loginwindow and the Aqua session are part of macOS.
MAC_DESKTOP = Desktop(("loginwindow",), (("macOS (Aqua)", "macos"),), "")

MANAGED_PLIST = "/Library/Managed Preferences/com.apple.screensaver.plist"
KEYS = ("idleTime", "askForPassword", "askForPasswordDelay")

CONSOLE_USER = ["stat", "-f", "%Su %u", "/dev/console"]
IDLE_TIME = ["defaults", "-currentHost", "read", "com.apple.screensaver", "idleTime"]
SCREEN_LOCK_STATUS = ["sysadminctl", "-screenLock", "status"]

_IDLE_UNSET = "does not exist"
_CONSOLE = re.compile(r"^(?P<user>[^\s:/]+) (?P<uid>\d+)$")
_LOCK = re.compile(
    r"screenLock (?:delay is (?:(?P<immediate>immediate)|(?P<seconds>\d+) seconds?)"
    r"|(?P<off>is off))\s*$"
)


@dataclass(frozen=True)
class ScreenLockStatus:
    """``sysadminctl -screenLock status``: password required, and after how long."""

    password: bool
    delay: int | None  # seconds; None when the lock is off


@dataclass(frozen=True)
class MacScreenLock:
    """The three screen-saver keys as the console session gets them, and from where."""

    settings: dict[str, Setting]  # idleTime, askForPassword, askForPasswordDelay
    profile: str | None  # the managed plist, when a profile installed one
    console_user: str | None  # None: nobody is logged in at the console

    def seconds(self, key: str) -> int | None:
        value = self.settings[key].value
        return int(value) if value.isdigit() else None

    def flag(self, key: str) -> bool | None:
        return {"true": True, "false": False}.get(self.settings[key].value)


def parse_managed_plist(data: bytes, where: str) -> dict[str, int | bool]:
    """The screen-saver keys a profile forces; other keys are ignored, wrong types raise."""
    loaded = load_dict(data, FACT, where)
    values: dict[str, int | bool] = {}
    for key in KEYS:
        if key not in loaded:
            continue
        value = loaded[key]
        if key == "askForPassword" and isinstance(value, bool | int) and value in (0, 1):
            values[key] = bool(value)
        elif key != "askForPassword" and isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise FactParseError(FACT, where, f"{key} is negative", repr(value))
            values[key] = value
        else:
            raise FactParseError(FACT, where, f"{key} has an unexpected type", repr(value))
    return values


def parse_console_user(stdout: str, call: str) -> tuple[str, int] | None:
    """``alice 501`` as (alice, 501); root (the login window) as None."""
    match = _CONSOLE.match(stdout.strip())
    if match is None:
        raise FactParseError(FACT, call, "expected '<user> <uid>'", stdout)
    if match["user"] == "root" or match["uid"] == "0":
        return None
    return match["user"], int(match["uid"])


def as_user(user: str, uid: int, argv: list[str]) -> list[str]:
    """``argv`` run in the console user's context (the agent runs as root)."""
    return ["launchctl", "asuser", str(uid), "sudo", "-n", "-u", user, *argv]


def parse_idle_time(returncode: int, stdout: str, stderr: str, argv: list[str]) -> int | None:
    """``defaults -currentHost read ... idleTime``: seconds, or None when never set."""
    if returncode == 1 and _IDLE_UNSET in stderr:
        return None
    if returncode != 0:
        raise FactCommandFailed(FACT, argv, returncode, stderr)
    text = stdout.strip()
    if not text.isdigit():
        raise FactParseError(FACT, " ".join(argv), "idleTime is not a number of seconds", text)
    return int(text)


def parse_screen_lock_status(stdout: str, stderr: str, call: str) -> ScreenLockStatus:
    """The one ``screenLock ...`` line sysadminctl logs (on stderr), prefix or not."""
    lines = [ln.strip() for ln in f"{stderr}\n{stdout}".splitlines() if ln.strip()]
    found = [m for m in (_LOCK.search(ln) for ln in lines) if m is not None]
    if len(found) != 1 or len(lines) != 1:
        raise FactParseError(
            FACT,
            call,
            "expected one 'screenLock delay is ...' or 'screenLock is off' line",
            "\n".join(lines),
        )
    match = found[0]
    if match["off"]:
        return ScreenLockStatus(False, None)
    return ScreenLockStatus(True, 0 if match["immediate"] else int(match["seconds"]))


def _text(value: int | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def collect(host: HostBase) -> MacScreenLock:
    """The profile's keys, then the console user's own settings for the keys it leaves."""
    path = host.path(MANAGED_PLIST)
    forced: dict[str, int | bool] = {}
    profile: str | None = MANAGED_PLIST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        profile = None
    except PermissionError as exc:
        raise FactPermissionDenied(FACT, MANAGED_PLIST, "permission denied") from exc
    except OSError as exc:  # a directory in its place, an I/O error ...
        raise FactUnavailable(FACT, MANAGED_PLIST, exc.strerror or str(exc)) from exc
    else:
        forced = parse_managed_plist(data, MANAGED_PLIST)
    settings = {
        key: Setting(key, _text(forced[key]), f"configuration profile ({MANAGED_PLIST})", True)
        for key in KEYS
        if key in forced
    }
    missing = [key for key in KEYS if key not in settings]
    console: tuple[str, int] | None = None
    if missing:
        console = parse_console_user(
            host.command(FACT, CONSOLE_USER).stdout, " ".join(CONSOLE_USER)
        )
    if missing and console is None:
        for key in missing:
            settings[key] = Setting(key, "", "nobody is logged in at the console", False)
    elif console is not None:
        user, uid = console
        if "idleTime" in missing:
            argv = as_user(user, uid, IDLE_TIME)
            result = host.command(FACT, argv, ok_codes=(0, 1))
            idle = parse_idle_time(result.returncode, result.stdout, result.stderr, argv)
            settings["idleTime"] = Setting(
                "idleTime",
                "" if idle is None else str(idle),
                f"{user}'s own setting (defaults -currentHost)"
                if idle is not None
                else f"not set by {user}: macOS's default is not documented",
                False,
            )
        if "askForPassword" in missing or "askForPasswordDelay" in missing:
            argv = as_user(user, uid, SCREEN_LOCK_STATUS)
            result = host.command(FACT, argv)
            lock = parse_screen_lock_status(result.stdout, result.stderr, " ".join(argv))
            source = f"{user}'s own setting (sysadminctl -screenLock status)"
            if "askForPassword" in missing:
                settings["askForPassword"] = Setting(
                    "askForPassword", _text(lock.password), source, False
                )
            if "askForPasswordDelay" in missing:
                delay = "" if lock.delay is None else str(lock.delay)
                settings["askForPasswordDelay"] = Setting(
                    "askForPasswordDelay", delay, source + (" (off)" if not delay else ""), False
                )
    return MacScreenLock(
        {key: settings[key] for key in KEYS}, profile, console[0] if console else None
    )
