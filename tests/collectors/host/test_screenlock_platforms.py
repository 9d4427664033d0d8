"""macOS and Windows screen lock: parsers and collector against reconstructed outputs.

No macOS or Windows machine was at hand: every output is reconstructed (each fixture's
provenance names its sources). These tests pin what the parsers accept, and that
anything else (a tool's usage text, another language, a wrong type) is an error rather
than a guess.
"""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import FactCommandFailed, FactParseError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host import endpoint_screenlock_macos as slm
from tillsyn.collectors.host import endpoint_screenlock_windows as slw
from tillsyn.collectors.host.windows_registry import full_key


def _rec(name: str) -> dict[str, object]:
    return dict(json.loads((COMMANDS / f"{name}.json").read_text()))


def _host(root: Path, platform: str, *recordings: str, **kwargs: list[str]) -> HostFacts:
    runner = RecordedRunner.from_files((COMMANDS / f"{r}.json" for r in recordings), **kwargs)
    return HostFacts(root=root, runner=runner, env={}, platform=platform, now=PINNED_NOW)


def _profile(root: Path, **values: object) -> None:
    path = root / slm.MANAGED_PLIST.lstrip("/")
    path.parent.mkdir(parents=True)
    path.write_bytes(plistlib.dumps(values, fmt=plistlib.FMT_BINARY))


# -- sysadminctl -screenLock status -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "password", "delay"),
    [
        ("macos14-immediate", True, 0),
        ("macos14-300-seconds", True, 300),
        ("macos14-off", False, None),
    ],
)
def test_sysadminctl_states(name: str, password: bool, delay: int | None) -> None:
    rec = _rec(f"sysadminctl-screenlock-status/{name}")
    assert rec["stdout"] == ""  # sysadminctl logs to stderr
    status = slm.parse_screen_lock_status(str(rec["stdout"]), str(rec["stderr"]), "sysadminctl")
    assert (status.password, status.delay) == (password, delay)


def test_sysadminctl_line_without_log_prefix_and_singular_second() -> None:
    status = slm.parse_screen_lock_status("", "screenLock delay is 1 second\n", "s")
    assert (status.password, status.delay) == (True, 1)


@pytest.mark.parametrize(
    "stderr",
    [
        "",
        str(_rec("sysadminctl-screenlock-status/macos12-usage")["stderr"]),
        "2026-11-23 11:58:02.114 sysadminctl[1:2] screenLock delay is soon\n",
        "2026-11-23 11:58:02.114 sysadminctl[1:2] Bildschirmsperre ist aus\n",
        "screenLock is off\nscreenLock delay is immediate\n",
        "screenLock delay is -1 seconds\n",
    ],
)
def test_unexpected_sysadminctl_output_is_a_parse_error(stderr: str) -> None:
    with pytest.raises(FactParseError, match="expected one 'screenLock delay is"):
        slm.parse_screen_lock_status("", stderr, "sysadminctl")


# -- defaults -currentHost read com.apple.screensaver idleTime --------------------------


def test_idle_time_values_and_unset() -> None:
    for name, seconds in (("macos14-600", 600), ("macos14-1800", 1800), ("macos14-unset", None)):
        rec = _rec(f"defaults-read-screensaver-idletime/{name}")
        got = slm.parse_idle_time(
            int(rec["returncode"]),  # type: ignore[call-overload]
            str(rec["stdout"]),
            str(rec["stderr"]),
            ["defaults"],
        )
        assert got == seconds
    assert slm.parse_idle_time(0, "0\n", "", ["defaults"]) == 0


def test_idle_time_garbage_and_other_failures_are_errors() -> None:
    with pytest.raises(FactParseError, match="not a number of seconds"):
        slm.parse_idle_time(0, "", "", ["defaults"])
    with pytest.raises(FactParseError, match="not a number of seconds"):
        slm.parse_idle_time(0, "ten minutes\n", "", ["defaults"])
    with pytest.raises(FactCommandFailed, match="a password is required"):
        slm.parse_idle_time(1, "", "sudo: a password is required\n", ["sudo"])


# -- console user and the managed profile -----------------------------------------------


def test_console_user() -> None:
    alice = _rec("stat-console-user/macos14-alice")
    assert slm.parse_console_user(str(alice["stdout"]), "stat") == ("alice", 501)
    window = _rec("stat-console-user/macos14-login-window")
    assert slm.parse_console_user(str(window["stdout"]), "stat") is None
    for garbage in ("", "alice\n", "stat: /dev/console: No such file or directory\n"):
        with pytest.raises(FactParseError):
            slm.parse_console_user(garbage, "stat")


def test_as_user_runs_in_the_console_session() -> None:
    assert slm.as_user("alice", 501, ["sysadminctl", "-screenLock", "status"]) == [
        "launchctl",
        "asuser",
        "501",
        "sudo",
        "-n",
        "-u",
        "alice",
        "sysadminctl",
        "-screenLock",
        "status",
    ]


@pytest.mark.parametrize("fmt", [plistlib.FMT_BINARY, plistlib.FMT_XML])
def test_managed_plist_in_both_formats(fmt: plistlib.PlistFormat) -> None:
    data = plistlib.dumps(
        {"idleTime": 600, "askForPassword": 1, "askForPasswordDelay": 5, "moduleName": "Flurry"},
        fmt=fmt,
    )
    assert slm.parse_managed_plist(data, "p") == {
        "idleTime": 600,
        "askForPassword": True,
        "askForPasswordDelay": 5,
    }


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"idleTime": "600"}, "idleTime has an unexpected type"),
        ({"idleTime": True}, "idleTime has an unexpected type"),
        ({"askForPassword": 2}, "askForPassword has an unexpected type"),
        ({"askForPasswordDelay": -5}, "askForPasswordDelay is negative"),
    ],
)
def test_managed_plist_with_wrong_types_is_a_parse_error(
    values: dict[str, object], says: str
) -> None:
    with pytest.raises(FactParseError, match=says):
        slm.parse_managed_plist(plistlib.dumps(values), "p")


@pytest.mark.parametrize("data", [b"", b"bplist00garbage", b"<plist><dict><key>idle", b"\x00\x01"])
def test_garbage_managed_plist_is_a_parse_error(data: bytes) -> None:
    with pytest.raises(FactParseError, match="not a property list"):
        slm.parse_managed_plist(data, "p")


def test_a_managed_plist_with_an_unmatched_date_is_a_parse_error() -> None:
    data = (
        b"<?xml version='1.0'?><plist version='1.0'><dict><key>idleTime</key>"
        b"<integer>600</integer><key>Installed</key><date>heute</date></dict></plist>"
    )
    with pytest.raises(FactParseError, match="not a property list"):
        slm.parse_managed_plist(data, "p")


def test_a_managed_plist_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    (tmp_path / slm.MANAGED_PLIST.lstrip("/")).mkdir(parents=True)  # a folder in its place
    with pytest.raises(FactUnavailable) as caught:
        _host(tmp_path, "darwin").macos_screen_lock()
    assert caught.value.call == slm.MANAGED_PLIST


def test_a_plist_that_is_not_a_dictionary_is_a_parse_error() -> None:
    with pytest.raises(FactParseError, match="not a dictionary"):
        slm.parse_managed_plist(plistlib.dumps([600]), "p")


# -- the macOS collector ------------------------------------------------------------------


def test_a_complete_profile_runs_no_command(tmp_path: Path) -> None:
    _profile(tmp_path, idleTime=300, askForPassword=True, askForPasswordDelay=0)
    host = _host(tmp_path, "darwin")
    lock = host.macos_screen_lock()
    assert host.runner.calls == []  # type: ignore[attr-defined]
    assert (lock.seconds("idleTime"), lock.flag("askForPassword")) == (300, True)
    assert all(s.enforced for s in lock.settings.values())
    assert lock.profile == slm.MANAGED_PLIST and lock.console_user is None


def test_a_partial_profile_asks_the_console_user_only_for_the_rest(tmp_path: Path) -> None:
    _profile(tmp_path, idleTime=600)
    host = _host(
        tmp_path,
        "darwin",
        "stat-console-user/macos14-alice",
        "sysadminctl-screenlock-status/macos14-300-seconds",
    )
    lock = host.macos_screen_lock()
    ran = [argv for argv, _ in host.runner.calls]  # type: ignore[attr-defined]
    assert ran == [
        tuple(slm.CONSOLE_USER),
        tuple(slm.as_user("alice", 501, slm.SCREEN_LOCK_STATUS)),
    ]
    assert lock.settings["idleTime"].enforced
    delay = lock.settings["askForPasswordDelay"]
    assert (delay.value, delay.enforced) == ("300", False)
    assert "alice's own setting" in delay.source


def test_without_profile_or_console_user_the_values_are_unknown(tmp_path: Path) -> None:
    host = _host(tmp_path, "darwin", "stat-console-user/macos14-login-window")
    lock = host.macos_screen_lock()
    assert lock.profile is None and lock.console_user is None
    assert {s.value for s in lock.settings.values()} == {""}
    assert lock.seconds("idleTime") is None and lock.flag("askForPassword") is None


def test_screen_lock_off_leaves_the_delay_empty(tmp_path: Path) -> None:
    host = _host(
        tmp_path,
        "darwin",
        "stat-console-user/macos14-alice",
        "defaults-read-screensaver-idletime/macos14-600",
        "sysadminctl-screenlock-status/macos14-off",
    )
    lock = host.macos_screen_lock()
    assert lock.flag("askForPassword") is False
    assert lock.seconds("askForPasswordDelay") is None
    assert lock.settings["askForPasswordDelay"].source.endswith("(off)")


def test_macos_screen_lock_is_refused_elsewhere(tmp_path: Path) -> None:
    with pytest.raises(FactUnavailable, match="not implemented for platform linux"):
        _host(tmp_path, "linux").macos_screen_lock()


@pytest.mark.parametrize(("platform", "kind"), [("darwin", "macos"), ("win32", "windows")])
def test_macs_and_windows_always_have_a_desktop(tmp_path: Path, platform: str, kind: str) -> None:
    desktop = _host(tmp_path, platform).desktop()
    assert desktop.present and desktop.kinds == (kind,)


def test_other_platforms_still_say_not_implemented(tmp_path: Path) -> None:
    with pytest.raises(FactUnavailable, match="freebsd14"):
        _host(tmp_path, "freebsd14").desktop()


# -- Windows: the machine inactivity limit ------------------------------------------------


def _limit(name: str) -> slw.InactivityLimit:
    rec = _rec(f"reg-query-inactivity-timeout/{name}")
    assert rec["argv"] == slw.REG_QUERY
    return slw.parse_inactivity_limit(
        int(rec["returncode"]),  # type: ignore[call-overload]
        str(rec["stdout"]),
        str(rec["stderr"]),
    )


@pytest.mark.parametrize(
    ("name", "seconds"),
    [("win11-900", 900), ("win11-1800", 1800), ("win11-zero", 0), ("win11-not-set", None)],
)
def test_inactivity_limit_values(name: str, seconds: int | None) -> None:
    assert _limit(name).seconds == seconds


def test_inactivity_limit_errors() -> None:
    with pytest.raises(FactCommandFailed, match="Access is denied"):
        _limit("win11-access-denied")
    with pytest.raises(FactCommandFailed, match="FEHLER"):
        _limit("win11-german-not-found")  # localised "not found": never read as "not set"
    with pytest.raises(FactParseError, match="not a REG_DWORD"):
        _limit("win11-reg-sz")
    head = (
        "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\r\n"
    )
    with pytest.raises(FactParseError, match="no InactivityTimeoutSecs value"):
        slw.parse_inactivity_limit(0, head + "\r\n", "")
    with pytest.raises(FactParseError, match="does not start with"):
        slw.parse_inactivity_limit(0, "\r\nHKEY_CURRENT_USER\\Other\r\n", "")
    with pytest.raises(FactParseError, match="unexpected line"):
        slw.parse_inactivity_limit(0, head + "Zugriff verweigert\r\n", "")


def test_windows_collector_runs_one_reg_query(tmp_path: Path) -> None:
    host = _host(tmp_path, "win32", "reg-query-inactivity-timeout/win11-900")
    assert host.windows_screen_lock().seconds == 900
    with pytest.raises(FactUnavailable, match="not implemented for platform darwin"):
        _host(tmp_path, "darwin").windows_screen_lock()


def test_reg_prints_full_root_key_names() -> None:
    assert full_key(r"HKLM\SOFTWARE\X") == r"HKEY_LOCAL_MACHINE\SOFTWARE\X"
    assert full_key(r"HKCU\Software\X") == r"HKEY_CURRENT_USER\Software\X"
    assert full_key(r"HKU\S-1-5-18\X") == r"HKEY_USERS\S-1-5-18\X"
    assert full_key(r"HKEY_LOCAL_MACHINE\X") == r"HKEY_LOCAL_MACHINE\X"
