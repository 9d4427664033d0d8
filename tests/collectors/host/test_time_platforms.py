"""macOS and Windows clock readers against reconstructed outputs and malformed input.

The fixtures under ``tests/fixtures/commands/{systemsetup-*,sntp,w32tm-*}`` are reconstructed
from public outputs (their provenance says which); the strings below are the same layouts
damaged on purpose: empty, garbage, truncated, another language. None of them may parse
into a report that could pass.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactError,
    FactParseError,
    FactPermissionDenied,
)
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.logs_time_macos import (
    parse_network_time,
    parse_server,
    parse_sntp,
)
from tillsyn.collectors.host.logs_time_windows import (
    max_sync_age,
    parse_stripchart,
    parse_w32tm_status,
    w32tm_failure,
)

SNTP = "sntp -t 5 time.apple.com"
STATUS = "w32tm /query /status /verbose"
CHART = "w32tm /stripchart /computer:time.windows.com /samples:1 /dataonly"
#: w32tm's status head and stopped-service line in Korean, as rendered from w32tm.exe.mui
#: in a public test suite.
KOREAN_SYNCED_HEAD = "윤초 조정: 0(경고 없음)\n계층: 3(보조 참조 - (S)NTP로 동기화됨)\n"
KOREAN_STOPPED = "다음 오류가 발생했습니다. 서비스가 시작되지 않았습니다. (0x80070426)\r\n"


def _rec(name: str) -> dict[str, object]:
    return dict(json.loads((COMMANDS / f"{name}.json").read_text()))


def _out(name: str) -> str:
    return str(_rec(name)["stdout"])


def _sntp(name: str) -> tuple[str, str, int]:
    rec = _rec(f"sntp/{name}")
    return str(rec["stdout"]), str(rec["stderr"]), int(str(rec["returncode"]))


def _host(platform: str, *recordings: str, missing: tuple[str, ...] = ()) -> HostFacts:
    runner = RecordedRunner.from_files(
        [COMMANDS / f"{r}.json" for r in recordings], missing=list(missing)
    )
    return HostFacts(
        root=Path(tempfile.mkdtemp()), runner=runner, env={}, platform=platform, now=PINNED_NOW
    )


# -- macOS: systemsetup -------------------------------------------------------------------


def test_network_time_on_and_off() -> None:
    on = "systemsetup-getusingnetworktime/on"
    off = "systemsetup-getusingnetworktime/off"
    assert parse_network_time(_out(on), "", 0, "x") is True
    assert parse_network_time(_out(off), "", 0, "x") is False


def test_systemsetup_refusal_without_root_is_denied_not_off() -> None:
    refusal = _rec("systemsetup-getusingnetworktime/needs-root")
    assert refusal["returncode"] == 0  # the exit status does not tell
    with pytest.raises(FactPermissionDenied, match="systemsetup needs root"):
        parse_network_time(str(refusal["stdout"]), "", 0, "x")
    with pytest.raises(FactPermissionDenied):
        parse_server("", str(refusal["stdout"]), 0, "x")


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("", "expected one 'Network Time: ...' line"),
        ("garbage\n", "expected one 'Network Time: ...' line"),
        ("Network Time: Maybe\n", "neither On nor Off"),
        ("Network Time: On\nNetwork Time: Off\n", "expected one"),
        ("Netzwerkzeit: Ein\n", "expected one 'Network Time: ...' line"),
        ("Network Ti", "expected one"),
    ],
)
def test_unreadable_network_time_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_network_time(stdout, "", 0, "systemsetup -getusingnetworktime")


def test_server_first_of_a_list_and_refusals() -> None:
    assert parse_server(_out("systemsetup-getnetworktimeserver/time-apple-com"), "", 0, "x") == (
        "time.apple.com"
    )
    assert parse_server("Network Time Server: ntp.example.net,time.apple.com\n", "", 0, "x") == (
        "ntp.example.net"
    )
    for bad in ("Network Time Server: \n", "Network Time Server: two words\n", ""):
        with pytest.raises(FactParseError):
            parse_server(bad, "", 0, "x")
    with pytest.raises(FactCommandFailed, match="exited with status 1"):
        parse_server("", "systemsetup: unknown error", 1, "systemsetup -getnetworktimeserver")


# -- macOS: sntp --------------------------------------------------------------------------


def test_sntp_offset_is_the_clock_minus_the_server() -> None:
    behind = parse_sntp(*_sntp("time-apple-com-18ms"), SNTP, "time.apple.com")
    assert (behind.daemon, behind.synchronised, behind.offset_ms) == ("timed", True, -18.204)
    assert behind.source == "time.apple.com (17.253.14.125)"
    ahead = parse_sntp(*_sntp("time-apple-com-clock-2s-ahead"), SNTP, "time.apple.com")
    assert ahead.offset_ms == pytest.approx(2343.002)


def test_sntp_of_ntp_428_with_banner_and_timestamp() -> None:
    report = parse_sntp(*_sntp("mojave-ntp428"), SNTP, "time.apple.com")
    assert report.offset_ms == pytest.approx(-18.204)
    assert report.source == "time.apple.com (17.253.14.125)"


def test_sntp_without_an_answer_is_an_error_naming_the_server() -> None:
    with pytest.raises(FactError, match=r"no answer from time\.apple\.com: sntp: Exchange failed"):
        parse_sntp(*_sntp("no-answer"), SNTP, "time.apple.com")


@pytest.mark.parametrize(
    ("stdout", "returncode", "error", "says"),
    [
        ("", 0, FactParseError, "no '<offset> \\+/- <error> <server>' line"),
        ("hello world\n", 0, FactParseError, "no '<offset>"),
        ("+0.0182", 0, FactParseError, "no '<offset>"),  # truncated before the bound
        ("+0.018204 +/- ", 0, FactParseError, "unrecognised sntp result line"),
        ("+0,018204 +/- 0,021312 time.apple.com\n", 0, FactParseError, "unrecognised"),
        ("Zeitabweichung +0.018204 +/- 0.021312 time.apple.com\n", 0, FactParseError, "unrec"),
        ("+0.018204 +/- 0.021312 time.apple.com 17.253.14.125\n", 1, FactCommandFailed, "1"),
        ("", 2, FactCommandFailed, "exited with status 2"),
    ],
)
def test_sntp_garbage_truncation_and_odd_exits(
    stdout: str, returncode: int, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        parse_sntp(stdout, "", returncode, SNTP, "time.apple.com")


def test_macos_network_time_off_asks_nothing_more() -> None:
    facts = _host("darwin", "systemsetup-getusingnetworktime/off")
    sync = facts.time_sync()
    assert [r.detail for r in sync.reports] == ["Network Time: Off (systemsetup)"]
    assert not sync.reports[0].synchronised
    assert [call[0][0] for call in facts.runner.calls] == ["systemsetup"]  # type: ignore[attr-defined]


def test_macos_missing_systemsetup_is_an_error_not_no_daemon() -> None:
    facts = _host("darwin", missing=("systemsetup",))
    with pytest.raises(FactError, match="systemsetup is not installed"):
        facts.time_sync()


# -- Windows: w32tm /query /status --------------------------------------------------------


def test_synced_status_names_the_peer_to_measure() -> None:
    status = parse_w32tm_status(_out("w32tm-query-status/synced-time-windows-com"), STATUS)
    assert (status.why_not, status.peer) == ("", "time.windows.com")
    report = status.report((-8.4123, "time.windows.com (20.101.57.9)"))
    assert (report.synchronised, report.offset_ms) == (True, -8.4123)
    assert "State Machine: 2 (Sync)" in report.detail


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("local-cmos-clock", "Source: Local CMOS Clock"),
        ("free-running-system-clock", "Source: Free-running System Clock"),
    ],
)
def test_local_clocks_are_not_synchronised(name: str, why: str) -> None:
    status = parse_w32tm_status(_out(f"w32tm-query-status/{name}"), STATUS)
    assert status.why_not == why
    report = status.report(None)
    assert (report.synchronised, report.offset_ms) == (False, None)


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("Leap Indicator: 0(no warning)", "Leap Indicator: 3(not synchronized)", "Leap"),
        ("Stratum: 4 (secondary reference", "Stratum: 0 (secondary reference", "Stratum: 0"),
        ("Sync Time: 11/23/2026 11:42:07 AM", "Sync Time: unspecified", "unspecified"),
        ("Source: time.windows.com,0x9", "Source: local cmos clock,0x9", "local cmos"),
        ("Source: time.windows.com,0x9", "Source:", "Source: (none)"),
    ],
)
def test_each_unsynchronised_signal_alone(old: str, new: str, why: str) -> None:
    synced = _out("w32tm-query-status/synced-time-windows-com")
    assert old in synced
    assert why in parse_w32tm_status(synced.replace(old, new), STATUS).why_not


def test_hyperv_source_has_no_peer_and_uses_the_phase_offset() -> None:
    status = parse_w32tm_status(_out("w32tm-query-status/hyperv-vmic-provider"), STATUS)
    assert status.peer is None
    assert status.report(None).offset_ms == pytest.approx(-0.4215)
    header = "\n".join(_out("w32tm-query-status/hyperv-vmic-provider").splitlines()[:9])
    report = parse_w32tm_status(header, STATUS).report(None)
    assert report.offset_ms is None  # no tail: no measured offset, the check errs
    assert report.synchronised and "offset is unknown" in report.detail


def test_hyperv_phase_offset_counts_only_while_the_last_sync_is_recent() -> None:
    status = parse_w32tm_status(_out("w32tm-query-status/hyperv-vmic-provider"), STATUS)
    assert (status.sync_age, status.poll_seconds) == (pytest.approx(69.1503311), 64.0)
    assert "last good sync 69.1503 s ago (at most 3600 s)" in status.report(None).detail
    stale = parse_w32tm_status(_out("w32tm-query-status/hyperv-stale-sync"), STATUS)
    report = stale.report(None)
    assert (report.synchronised, report.offset_ms) == (False, None)
    assert "the Phase Offset is a stale estimate" in report.detail


def test_hyperv_without_the_sync_age_has_no_offset() -> None:
    text = "\n".join(
        line
        for line in _out("w32tm-query-status/hyperv-vmic-provider").splitlines()
        if not line.startswith("Time since Last Good Sync Time")
    )
    report = parse_w32tm_status(text, STATUS).report(None)
    assert report.offset_ms is None and "offset is unknown" in report.detail


@pytest.mark.parametrize(
    ("poll", "bound"),
    [(64.0, 3600.0), (1024.0, 3600.0), (32768.0, 65536.0), (None, 86400.0)],
)
def test_sync_age_bound(poll: float | None, bound: float) -> None:
    assert max_sync_age(poll) == bound


def test_a_named_source_is_measured_not_dated() -> None:
    """A stale sync with a host-named source is judged by the stripchart measurement."""
    synced = _out("w32tm-query-status/synced-time-windows-com").replace(
        "Time since Last Good Sync Time: 1072.9333552s",
        "Time since Last Good Sync Time: 999999.0s",
    )
    report = parse_w32tm_status(synced, STATUS).report((8.0, "time.windows.com (x)"))
    assert report.synchronised and report.offset_ms == 8.0


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("", "no 'Leap Indicator' line"),
        ("garbage", "unrecognised line"),
        (_out("w32tm-query-status/japanese-display-language"), "only English w32tm output"),
        (KOREAN_SYNCED_HEAD, "only English w32tm output"),
        (
            "\n".join(_out("w32tm-query-status/synced-time-windows-com").splitlines()[:4]),
            "no 'Last Successful Sync Time' line",
        ),
        (
            _out("w32tm-query-status/synced-time-windows-com").replace("0(no warning)", "none"),
            "unreadable Leap Indicator",
        ),
        (
            _out("w32tm-query-status/synced-time-windows-com").replace("0.0061517s", "soon"),
            "unreadable Phase Offset",
        ),
        (
            _out("w32tm-query-status/synced-time-windows-com").replace("1072.9333552s", "lang"),
            "unreadable Time since Last Good Sync Time",
        ),
        (
            _out("w32tm-query-status/synced-time-windows-com").replace("10 (1024s)", "zehn"),
            "unreadable Poll Interval",
        ),
    ],
)
def test_unreadable_status_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_w32tm_status(stdout, STATUS)


@pytest.mark.parametrize("returncode", [2147943462, -2147023834])
def test_stopped_service_is_a_report_whatever_the_exit_code_form(returncode: int) -> None:
    stdout = _out("w32tm-query-status/service-not-started")
    report = w32tm_failure(stdout, "", returncode, STATUS)
    assert report is not None and not report.synchronised
    assert "not running" in report.detail


def test_stopped_service_in_korean_is_read_by_its_hresult() -> None:
    report = w32tm_failure(KOREAN_STOPPED, "", 2147943462, STATUS)
    assert report is not None and not report.synchronised


def test_w32tm_refusals_and_unknown_failures_raise() -> None:
    denied = _rec("w32tm-query-status/access-denied")
    with pytest.raises(FactPermissionDenied, match="0x80070005"):
        w32tm_failure(str(denied["stdout"]), "", int(str(denied["returncode"])), STATUS)
    rpc = "The following error occurred: The RPC server is unavailable. (0x800706BA)\r\n"
    with pytest.raises(FactCommandFailed, match="0x800706BA"):
        w32tm_failure(rpc, "", 2147944122, STATUS)
    with pytest.raises(FactCommandFailed, match="exited with status 1"):
        w32tm_failure("", "something broke", 1, STATUS)
    assert w32tm_failure(_out("w32tm-query-status/synced-time-windows-com"), "", 0, STATUS) is None


# -- Windows: w32tm /stripchart -----------------------------------------------------------


def test_stripchart_sample_is_the_source_minus_this_clock() -> None:
    behind = _out("w32tm-stripchart/time-windows-com-8ms")
    assert parse_stripchart(behind, "", 0, CHART, "time.windows.com") == (
        -8.4123,
        "time.windows.com (20.101.57.9)",
    )
    ahead = _out("w32tm-stripchart/time-windows-com-clock-3s-ahead")
    assert parse_stripchart(ahead, "", 0, CHART, "time.windows.com")[0] == pytest.approx(3215.0467)
    comma = behind.replace("+00.0084123s", "+00,0084123s")  # a regional decimal comma
    assert parse_stripchart(comma, "", 0, CHART, "x")[0] == pytest.approx(-8.4123)


def test_stripchart_timeout_is_an_error() -> None:
    timeout = _out("w32tm-stripchart/time-windows-com-timeout")
    with pytest.raises(FactError, match=r"no answer from time.windows.com: error 0x800705b4"):
        parse_stripchart(timeout, "", 0, CHART, "time.windows.com")


@pytest.mark.parametrize(
    ("stdout", "returncode", "error", "says"),
    [
        ("", 0, FactParseError, "no 'Tracking NAME \\[ADDRESS\\].' line"),
        ("garbage\n", 0, FactParseError, "no 'Tracking"),
        (
            "Tracking time.windows.com [20.101.57.9:123].\r\nCollecting 1 samples.\r\n",
            0,
            FactParseError,
            "no offset sample",
        ),
        (
            "Tracking time.windows.com [20.101.57.9:123].\r\n12:00:00, +00.00",
            0,
            FactParseError,
            "no offset sample",
        ),
        (
            "Verfolge time.windows.com [20.101.57.9:123].\r\n12:00:00, +00.0084123s\r\n",
            0,
            FactParseError,
            "no 'Tracking",
        ),  # hypothetical translation: refused, not guessed
        (_out("w32tm-stripchart/time-windows-com-8ms"), 1, FactCommandFailed, "status 1"),
    ],
)
def test_unreadable_stripchart(
    stdout: str, returncode: int, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        parse_stripchart(stdout, "", returncode, CHART, "time.windows.com")


def test_windows_unsynchronised_source_is_not_measured() -> None:
    facts = _host("win32", "w32tm-query-status/local-cmos-clock")
    sync = facts.time_sync()
    assert sync.looked_for == ("w32tm",)
    assert [r.synchronised for r in sync.reports] == [False]
    assert len(facts.runner.calls) == 1  # type: ignore[attr-defined]


def test_windows_synced_source_is_measured_by_stripchart() -> None:
    facts = _host(
        "win32",
        "w32tm-query-status/synced-time-windows-com",
        "w32tm-stripchart/time-windows-com-8ms",
    )
    (report,) = facts.time_sync().reports
    assert (report.daemon, report.offset_ms, report.source) == (
        "w32time",
        -8.4123,
        "time.windows.com (20.101.57.9)",
    )
