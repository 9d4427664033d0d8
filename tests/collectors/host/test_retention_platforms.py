"""Windows and macOS log-retention readers against reconstructed outputs and damaged input.

The fixtures under ``tests/fixtures/commands/{wevtutil-*,reg-query-install-date,
reg-query-event-forwarding,reg-query-winrm-start,log-stats-overview,stat-data-volume-birth}``
are reconstructed from public outputs (their provenance says which, and where the layout
is a guess); the strings below are the same layouts damaged on purpose: empty, garbage,
truncated, another language. None of them may parse into something that could pass.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.checks.host import _logging_retention
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactError,
    FactParseError,
    FactPermissionDenied,
    FactTimeout,
    FactUnavailable,
)
from tillsyn.collectors.host import HostFacts, logs_windows
from tillsyn.collectors.host.logs_asl import AslReader, parse_asl
from tillsyn.collectors.host.logs_macos import (
    LOG_STATS,
    parse_log_stats,
    syslogd_forwarders,
)
from tillsyn.collectors.host.logs_newsyslog import NewsyslogReader, parse_line, parse_when
from tillsyn.collectors.host.logs_windows import (
    EventLogConfig,
    parse_get_log,
    parse_install_date,
    parse_log_info,
    parse_oldest_event,
    parse_subscription_managers,
    parse_winrm_start,
    wevtutil_failure,
)

GL = "wevtutil gl Security"
QE = "wevtutil qe Security /c:1 /rd:false /f:xml"
STATS = " ".join(LOG_STATS)
NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value.\r\n"


def _rec(name: str) -> dict[str, object]:
    return dict(json.loads((COMMANDS / f"{name}.json").read_text()))


def _out(name: str) -> str:
    return str(_rec(name)["stdout"])


def _host(
    platform: str,
    *recordings: str,
    root: Path | None = None,
    missing: tuple[str, ...] = (),
    hanging: tuple[str, ...] = (),
) -> tuple[HostFacts, RecordedRunner]:
    runner = RecordedRunner.from_files(
        [COMMANDS / f"{r}.json" for r in recordings], missing=list(missing), hanging=list(hanging)
    )
    facts = HostFacts(
        root=root or Path("/nonexistent-root"),
        runner=runner,
        env={},
        platform=platform,
        now=PINNED_NOW,
    )
    return facts, runner


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# -- Windows: wevtutil gl ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "enabled", "mode", "size"),
    [
        ("security-overwrite-1g", True, "overwrite", 1 << 30),
        ("security-overwrite-20m", True, "overwrite", 20 << 20),
        ("application-archive", True, "archive", 20 << 20),
        ("system-disabled", False, "overwrite", 20 << 20),
    ],
)
def test_get_log_reads_mode_and_size(fixture: str, enabled: bool, mode: str, size: int) -> None:
    config = parse_get_log(_out(f"wevtutil-gl/{fixture}"), "X", GL)
    assert (config.enabled, config.mode, config.max_size) == (enabled, mode, size)
    assert config.log_file.startswith("%SystemRoot%\\System32\\Winevt\\Logs\\")


def test_modes_follow_event_viewer() -> None:
    def mode(retention: bool, backup: bool) -> str:
        return EventLogConfig("S", True, retention, backup, 1, "f").mode

    assert mode(False, False) == "overwrite"
    assert mode(True, True) == "archive"
    assert mode(True, False) == "retain"
    assert mode(False, True) == "overwrite"  # autoBackup needs retention: events are overwritten


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no 'enabled' line"),
        (_out("wevtutil-gl/security-truncated"), "no 'retention' line"),
        ("The specified channel could not be found.\r\n", "not a 'key: value' line"),
        (
            _out("wevtutil-gl/security-overwrite-20m").replace("retention: false", "retention: no"),
            "retention is neither true nor false",
        ),
        (
            _out("wevtutil-gl/security-overwrite-20m").replace("maxSize: 20971520", "maxSize: 20M"),
            "maxSize is not a number of bytes",
        ),
        ("名前: Security\r\n有効: true\r\n", "not a 'key: value' line"),
    ],
)
def test_get_log_garbage_is_an_error(text: str, why: str) -> None:
    with pytest.raises(FactParseError, match=why):
        parse_get_log(text, "Security", GL)


# -- Windows: wevtutil qe ------------------------------------------------------------------


def test_oldest_event_time_is_utc_with_ticks_truncated() -> None:
    oldest = parse_oldest_event(_out("wevtutil-qe/security-oldest-2026-03-01"), QE)
    assert oldest == datetime(2026, 3, 1, 8, 15, 2, 482917, tzinfo=UTC)


def test_empty_log_has_no_oldest_event() -> None:
    assert parse_oldest_event("", QE) is None
    assert parse_oldest_event("\r\n", QE) is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (_out("wevtutil-qe/system-text-not-xml"), "not an <Event> element"),
        ("<Event><System><EventID>1</EventID></System></Event>", "no <TimeCreated"),
        ("<Event><System><TimeCreated SystemTime='01.03.2026 08:15'/></System></Event>", "ISO"),
        ("<Event><System><TimeCreated SystemTime='2026-03-01T08:15:02'/></System></Event>", "ISO"),
        (
            "<Event><System><TimeCreated SystemTime='2026-02-30T08:15:02.1Z'/></System></Event>",
            "not a valid time",
        ),
        (
            "<Event><System><TimeCreated SystemTime='2026-03-01T24:15:02.1Z'/></System></Event>",
            "not a valid time",
        ),
    ],
)
def test_oldest_event_garbage_is_an_error(text: str, why: str) -> None:
    with pytest.raises(FactParseError, match=why):
        parse_oldest_event(text, QE)


def test_exit_status_five_is_access_denied_in_any_language() -> None:
    argv = QE.split(" ")
    for said in ("Failed to read events. Access is denied.", "アクセスが拒否されました。"):
        with pytest.raises(FactPermissionDenied, match="needs administrator rights"):
            wevtutil_failure("f", argv, 5, "", said)


def test_other_wevtutil_failures_are_errors() -> None:
    argv = QE.split(" ")
    with pytest.raises(FactCommandFailed, match="status 15007"):
        wevtutil_failure("f", argv, 15007, "", "The specified channel could not be found.")
    with pytest.raises(FactCommandFailed, match="no output"):
        wevtutil_failure("f", argv, 1, "", "")
    wevtutil_failure("f", argv, 0, "<Event/>", "")  # exit 0 is left to the parser


def test_log_info() -> None:
    info = parse_log_info(_out("wevtutil-gli/security-young"), "gli")
    assert (info.file_size, info.records) == (3211264, 5127)
    with pytest.raises(FactParseError):
        parse_log_info("creationTime: 2026-11-09T12:40:51.118Z\r\n", "gli")


# -- Windows: registry ---------------------------------------------------------------------


def test_install_date_is_unix_seconds() -> None:
    when = parse_install_date(0, _out("reg-query-install-date/win11-2026-11-09"), "")
    assert when == datetime(2026, 11, 9, 12, 0, tzinfo=UTC)
    assert parse_install_date(1, "", NOT_FOUND) is None


def test_install_date_of_wrong_type_or_odd_exit_is_an_error() -> None:
    text = _out("reg-query-install-date/win11-2026-11-09").replace(
        "REG_DWORD    0x6af1b5c0", "REG_SZ    09.11.2026"
    )
    with pytest.raises(FactParseError, match="not a REG_DWORD"):
        parse_install_date(0, text, "")
    with pytest.raises(FactCommandFailed):
        parse_install_date(
            1, "", "FEHLER: Der angegebene Registrierungsschlüssel wurde nicht gefunden."
        )


def test_subscription_managers() -> None:
    found = parse_subscription_managers(_out("reg-query-event-forwarding/wec01-configured"))
    assert found == [("1", "http://wec01.corp.example.org:5985/wsman/SubscriptionManager/WEC")]
    key = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\EventLog\\EventForwarding"
    https = (
        f"\r\n{key}\\SubscriptionManager\r\n    2    REG_SZ    Server=https://wec02:5986/wsman\r\n"
    )
    assert parse_subscription_managers(https) == [("2", "https://wec02:5986/wsman")]
    dword = f"\r\n{key}\\SubscriptionManager\r\n    1    REG_DWORD    0x1\r\n"
    with pytest.raises(FactParseError, match="not a string"):
        parse_subscription_managers(dword)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("    1    REG_SZ    ", "REG_SZ (empty)"),
        ("    1    REG_SZ", "REG_SZ (empty)"),
        ("    2    REG_SZ    https://wec02:5986/wsman", "https://wec02"),
        ("    3    REG_SZ    Server=wec02.corp.example.org", "Server=wec02"),
        ("    4    REG_SZ    Refresh=60", "Refresh=60"),
    ],
)
def test_subscription_manager_without_a_server_url_is_an_error(value: str, shown: str) -> None:
    key = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\EventLog\\EventForwarding"
    text = f"\r\n{key}\\SubscriptionManager\r\n{value}\r\n"
    name = value.split()[0]
    with pytest.raises(FactParseError, match=f"value '{name}' .* names no collector") as caught:
        parse_subscription_managers(text)
    assert shown in caught.value.snippet


def test_winrm_start_type() -> None:
    assert parse_winrm_start(0, _out("reg-query-winrm-start/automatic"), "") == 2
    assert parse_winrm_start(0, _out("reg-query-winrm-start/manual"), "") == 3
    assert parse_winrm_start(1, "", NOT_FOUND) is None


# -- Windows: the facts --------------------------------------------------------------------


def test_windows_facts_read_recorded_outputs() -> None:
    facts, _ = _host(
        "win32",
        "wevtutil-gl/application-archive",
        "wevtutil-qe/application-oldest-2026-10-01",
        "reg-query-install-date/win11-2024-05-02",
    )
    assert facts.windows_event_log("Application").mode == "archive"
    assert facts.windows_oldest_event("Application") == datetime(
        2026, 10, 1, 0, 0, 12, 700000, tzinfo=UTC
    )
    assert facts.installed_at() == datetime(2024, 5, 2, 9, 30, tzinfo=UTC)


def test_security_without_admin_is_permission_denied() -> None:
    facts, _ = _host("win32", "wevtutil-qe/security-access-denied")
    with pytest.raises(FactPermissionDenied, match="administrator"):
        facts.windows_oldest_event("Security")


def test_missing_or_hanging_wevtutil_is_an_error() -> None:
    facts, _ = _host("win32", missing=("wevtutil",))
    with pytest.raises(FactUnavailable, match="not installed"):
        facts.windows_event_log("System")
    facts, _ = _host("win32", hanging=("wevtutil",))
    with pytest.raises(FactTimeout):
        facts.windows_oldest_event("System")


def test_windows_event_forwarding_enabled_only_when_winrm_starts_automatically() -> None:
    wef = "reg-query-event-forwarding/wec01-configured"
    facts, _ = _host("win32", wef, "reg-query-winrm-start/automatic")
    (forwarder,) = facts.shipping().forwarders
    assert forwarder.enabled is True
    assert forwarder.target.startswith("http://wec01.corp.example.org:5985/")
    facts, _ = _host("win32", wef, "reg-query-winrm-start/manual")
    assert [f.enabled for f in facts.shipping().forwarders] == [False]


def test_no_forwarding_policy_does_not_ask_about_winrm() -> None:
    facts, runner = _host("win32", "reg-query-event-forwarding/not-configured")
    config = facts.shipping()
    assert config.forwarders == () and config.daemons_found == ()
    assert config.looked_for == ("Windows Event Forwarding",)
    assert len(runner.calls) == 1


def test_windows_facts_refuse_other_platforms() -> None:
    facts, _ = _host("darwin")
    with pytest.raises(FactUnavailable, match="not implemented for platform darwin"):
        facts.windows_event_log("Security")


# -- macOS: log stats ----------------------------------------------------------------------


def test_log_stats_span_iso_and_ctime() -> None:
    rec = _rec("log-stats-overview/reaches-back-200-days")
    span = parse_log_stats(str(rec["stdout"]), "", 0, STATS)
    assert span.start == datetime(2026, 5, 7, 9, 14, 31, tzinfo=UTC)
    assert span.end == datetime(2026, 11, 23, 11, 58, 2, tzinfo=UTC)
    ctime = parse_log_stats(_out("log-stats-overview/reaches-back-12-days"), "", 0, STATS)
    assert ctime.start == datetime(2026, 11, 11, 3, 20, 45, tzinfo=UTC)


def test_log_stats_times_with_a_zone_are_converted() -> None:
    text = "start: 2026-05-07 11:14:31.250000+0200\nend: 2026-11-23 12:58:02+01:00\n"
    span = parse_log_stats(text, "", 0, STATS)
    assert span.start == datetime(2026, 5, 7, 9, 14, 31, 250000, tzinfo=UTC)
    assert span.end == datetime(2026, 11, 23, 11, 58, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "start: 2026-06-01 00:00:00\nend: 2026-11-23 00:00:00\nstart: 2026-05-01 00:00:00\n",
        "start: 2026-06-01 00:00:00\nend: 2026-11-23 00:00:00\nend: 2026-11-22 00:00:00\n",
        _out("log-stats-overview/reaches-back-200-days") * 2,
    ],
)
def test_log_stats_needs_exactly_one_start_and_one_end(text: str) -> None:
    with pytest.raises(FactParseError, match="where the overview has one of each"):
        parse_log_stats(text, "", 0, STATS)


@pytest.mark.parametrize(
    ("stdout", "why"),
    [
        ("", "no 'start:' and 'end:' lines"),
        (_out("log-stats-overview/truncated"), "no 'start:' and 'end:' lines"),
        ('{"overview": {"start": "2026-05-07", "end": "2026-11-23"}}\n', "no 'start:'"),
        ("start: gestern\nend: heute\n", "unrecognised time"),
        ("start: 2026-02-30 00:00:00\nend: 2026-11-23 00:00:00\n", "impossible time"),
        ("start: 2026-05-07 25:14:31\nend: 2026-11-23 00:00:00\n", "impossible time"),
        ("start: 2026-05-07 11:14:31+9999\nend: 2026-11-23 00:00:00\n", "impossible time"),
        ("start: Mon Feb 30 03:20:45 2026\nend: 2026-11-23 00:00:00\n", "unrecognised time"),
        ("start: 2026-11-23 00:00:00\nend: 2026-05-07 00:00:00\n", "starts after it ends"),
    ],
)
def test_log_stats_garbage_is_an_error(stdout: str, why: str) -> None:
    with pytest.raises(FactParseError, match=why):
        parse_log_stats(stdout, "", 0, STATS)


def test_log_stats_refusal_and_odd_exits() -> None:
    rec = _rec("log-stats-overview/needs-root")
    with pytest.raises(FactPermissionDenied, match="needs root"):
        parse_log_stats("", str(rec["stderr"]), 1, STATS)
    with pytest.raises(FactCommandFailed, match="status 64"):
        parse_log_stats("", "log: unknown option --overview", 64, STATS)


def test_log_stats_runs_in_utc() -> None:
    facts, runner = _host("darwin", "log-stats-overview/young-mac")
    assert facts.unified_log_span().start == datetime(2026, 11, 9, 12, 7, 12, tzinfo=UTC)
    assert runner.calls == [(tuple(LOG_STATS), {"TZ": "UTC"})]


def test_mac_setup_date_is_the_data_volume_birth() -> None:
    facts, _ = _host("darwin", "stat-data-volume-birth/2026-11-09")
    assert facts.installed_at() == datetime(2026, 11, 9, 12, 0, tzinfo=UTC)
    assert PINNED_NOW - datetime(2026, 11, 9, 12, 0, tzinfo=UTC) == timedelta(days=14)


# -- macOS: syslogd forwarding -------------------------------------------------------------


def test_syslog_conf_loopback_is_not_shipping(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "etc/syslog.conf": "install.*\t\t@127.0.0.1:32376\n"
            "*.err\t@[::1]:514\n"
            "auth.*\t@localhost\n"
            "*.notice\t@loghost.example.org\n"
            "# *.*\t@old.example.org\n"
        },
    )
    found, read = syslogd_forwarders(tmp_path)
    assert [(f.daemon, f.target, f.enabled) for f in found] == [
        ("syslogd", "loghost.example.org", None)
    ]
    assert read == ["/etc/syslog.conf"]
    assert syslogd_forwarders(tmp_path / "empty") == ([], [])


# -- newsyslog -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "days"),
    [
        ("24", 1.0),
        ("168", 7.0),
        ("@T00", 1.0),
        ("@", 1.0),
        ("@01T05", 31.0),
        ("@0101T", 365.0),
        ("$D0", 1.0),
        ("$W0D23", 7.0),
        ("$M1D0", 31.0),
        ("$ML", 31.0),
        ("168@T00", 7.0),
        ("12@T00", 1.0),
        ("*", None),
        ("@990122T000000", None),
    ],
)
def test_when_periods(when: str, days: float | None) -> None:
    parsed = parse_when(when)
    assert parsed is not None and parsed[0] == days


@pytest.mark.parametrize("when", ["@X", "@1T", "$Q1", "$W9", "daily", "24h", "@T1"])
def test_malformed_when_is_refused(when: str) -> None:
    assert parse_when(when) is None


@pytest.mark.parametrize(
    ("line", "days", "basis"),
    [
        ("/var/log/wtmp 644 3 * @01T05 B", 93.0, "3 × monthly"),
        ("/var/log/a.log root:admin 640 26 * $W0D0 J", 182.0, "26 × weekly"),
        ("/var/log/ftp.log 640 5 1000 * J", None, "rotated by size (1000 KB)"),
        ("/var/log/b.log 640 30 1000 $D0 J", None, "size 1000 KB may rotate it"),
        ("/var/log/c.log 640 0 * $D0", 0.0, "count 0"),
        ("/var/log/d.log 640 5 * *", float("inf"), "never rotated"),
        ("/var/log/e.log 640 5 * @20270101T", None, "single moment"),
        ("/var/log/f.log 640 7 1M 24 J", None, "size 1024 KB"),
    ],
)
def test_entry_retention(line: str, days: float | None, basis: str) -> None:
    kept, how = parse_line(line, "x:1").retention_days()
    assert kept == days and basis in how


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("/var/log/daily.out 640", "missing fields"),
        ("/var/log/a.log 999 5 * $D0", "missing fields"),
        ("/var/log/a.log root:wheel 0x640 5 * $D0", "not octal"),
        ("/var/log/a.log 640 five * $D0", "count"),
        ("/var/log/a.log 640 5 big $D0", "size"),
        ("/var/log/a.log 640 5 * weekly", "when"),
    ],
)
def test_malformed_newsyslog_lines(line: str, why: str) -> None:
    with pytest.raises(FactParseError, match=why):
        parse_line(line, "x:1")


def test_newsyslog_reader_order_includes_and_comments(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "etc/newsyslog.conf": "# logfilename mode count size when flags\n"
            "<compress> gzip\n"
            "/var/log/wtmp 644 3 * @01T05 B # monthly\n"
            "/var/log/odd\\#name.log 640 5 * $D0 N\n"
            "<include> /etc/newsyslog.extra/*.conf\n",
            "etc/newsyslog.extra/x.conf": "/var/log/x.log 640 10 * $W0 J\n",
            "etc/newsyslog.d/b.conf": "/var/log/wtmp 644 12 * @01T05 B\n",
            "etc/newsyslog.d/a.conf": "<default> 640 5 1000 * J\n/var/log/a.log 640 1 * $D0\n",
            "etc/newsyslog.d/readme.txt": "not a configuration file\n",
        },
    )
    config = NewsyslogReader(tmp_path).read()
    assert [e.path for e in config.entries] == [
        "/var/log/wtmp",
        "/var/log/odd#name.log",
        "/var/log/x.log",
        "/var/log/a.log",
    ]
    assert config.entries[0].count == 3  # the first line for a file wins
    assert config.files == (
        "/etc/newsyslog.conf",
        "/etc/newsyslog.extra/x.conf",
        "/etc/newsyslog.d/a.conf",
        "/etc/newsyslog.d/b.conf",
    )
    assert any("already configured" in i for i in config.ignored)
    assert any("<default>" in i for i in config.ignored)


def test_no_newsyslog_configuration_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(FactUnavailable, match="does not exist"):
        NewsyslogReader(tmp_path).read()


# -- ASL -----------------------------------------------------------------------------------


def test_asl_lines_quotes_and_relative_paths() -> None:
    text = (
        "> system.log mode=0640 format=bsd rotate=seq compress file_max=5M all_max=50M\n"
        "? [= Sender kernel] file system.log\n"
        "* file /var/log/install.log format='$((Time)(JZ)) $Host $(Sender): $Message' ttl=365\n"
        "= store_ttl 30\n"
        "? [= Facility auth] [<= Level info] notify com.apple.auth\n"
    )
    found = parse_asl(text, "/etc/asl.conf")
    assert [(path, where, by_rule) for path, where, _, by_rule in found] == [
        ("/var/log/system.log", "/etc/asl.conf:1", False),
        ("/var/log/system.log", "/etc/asl.conf:2", True),
        ("/var/log/install.log", "/etc/asl.conf:3", True),
    ]
    assert found[2][2]["format"] == "$((Time)(JZ)) $Host $(Sender): $Message"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("? [= Sender kernel file system.log", "unterminated"),
        ("* file /var/log/x.log format='$Time $Message", "cannot split"),
    ],
)
def test_asl_garbage_is_an_error(line: str, why: str) -> None:
    with pytest.raises(FactParseError, match=why):
        parse_asl(line, "/etc/asl.conf")


def test_asl_reader_judges_what_rules_write(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "etc/asl.conf": "> /var/log/asl/Logs/aslmanager external style=lcl-b ttl=2\n"
            "> system.log mode=0640 format=bsd rotate=seq compress file_max=5M all_max=50M\n"
            "? [<= Level notice] file system.log\n"
            "? [= Facility mail] file mail.log\n"
            "? [= Facility com.apple.alf.logging] file appfirewall.log file_max=5M\n",
            "etc/asl/com.apple.install": "* file /var/log/install.log rotate=utc ttl=365\n",
            "etc/asl/com.apple.forever": "* file /var/log/forever.log rotate=utc ttl=0\n",
        },
    )
    config = AslReader(tmp_path).read()
    kept = {o.path: o.retention_days() for o in config.outputs}
    assert kept == {
        "/var/log/system.log": (None, "all_max=52428800 bytes deletes the oldest by size"),
        "/var/log/appfirewall.log": (7.0, "no ttl: aslmanager's default 7 d"),
        "/var/log/forever.log": (float("inf"), "ttl=0: no time limit"),
        "/var/log/install.log": (365.0, "ttl=365"),
    }
    assert config.files[0] == "/etc/asl.conf"


def test_asl_bad_ttl_and_missing_configuration(tmp_path: Path) -> None:
    with pytest.raises(FactUnavailable):
        AslReader(tmp_path).read()
    _write(tmp_path, {"etc/asl.conf": "* file /var/log/x.log rotate=utc ttl=a-year\n"})
    with pytest.raises(FactParseError, match="ttl"):
        AslReader(tmp_path).read()


# -- the Windows judgements on inline variations of the recordings --------------------------


def _variant(name: str, argv: list[str] | None = None, **changes: object) -> dict[str, object]:
    record = _rec(name)
    if argv is not None:
        record["argv"] = argv
    for key, value in changes.items():
        record[key] = value
    return record


def _judge(*records: dict[str, object], root: Path | None = None) -> dict[str, tuple[str, str]]:
    return {
        r.resource.id: (str(r.status), r.message) for r in _windows_results(*records, root=root)
    }


def _windows_results(
    *records: dict[str, object], root: Path | None = None
) -> list[_logging_retention.Result]:
    runner = RecordedRunner(records)
    facts = HostFacts(
        root=root or Path("/nonexistent-root"),
        runner=runner,
        env={},
        platform="win32",
        now=PINNED_NOW,
    )
    return list(_logging_retention.windows(facts, 180))


def _gl(log: str, fixture: str, replace: dict[str, str] | None = None) -> dict[str, object]:
    text = _out(f"wevtutil-gl/{fixture}").replace("Security", log)
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return _variant(f"wevtutil-gl/{fixture}", ["wevtutil", "gl", log], stdout=text)


def _qe(log: str, fixture: str) -> dict[str, object]:
    qe = ["wevtutil", "qe", log, "/c:1", "/rd:false", "/f:xml"]
    return _variant(f"wevtutil-qe/{fixture}", qe)


def _newest(log: str, fixture: str) -> dict[str, object]:
    newest = ["wevtutil", "qe", log, "/c:1", "/rd:true", "/f:xml"]
    return _variant(f"wevtutil-qe/{fixture}", newest)


def _gli(log: str, fixture: str) -> dict[str, object]:
    return _variant(f"wevtutil-gli/{fixture}", ["wevtutil", "gli", log])


RETAIN = {"retention: false": "retention: true"}


def test_windows_retain_mode_young_host_keeps_all_and_old_host_was_cleared() -> None:
    logs = (
        _gl("Security", "security-overwrite-20m", RETAIN),
        _qe("Security", "security-oldest-2026-11-09"),
        _gli("Security", "security-half-full"),
        _newest("Security", "security-newest-2026-11-23"),
        _gl("System", "security-overwrite-20m", RETAIN),
        _variant("wevtutil-qe/system-oldest-2026-04-10", stdout=""),
        _gl("Application", "security-overwrite-20m", RETAIN),
        _qe("Application", "security-oldest-2026-10-30"),
        _gli("Application", "security-half-full"),
        _newest("Application", "security-newest-2026-11-23"),
    )
    young = _judge(*logs, _rec("reg-query-install-date/win11-2026-11-09"))
    assert young["Security"][0] == "pass" and "do not overwrite events" in young["Security"][1]
    assert young["System"] == ("fail", "System: the log holds no events")
    # older than the (possibly reset) install date: the log reaches back past it
    assert young["Application"][0] == "pass"
    old = _judge(*logs, _rec("reg-query-install-date/win11-2024-05-02"))
    assert old["Security"][0] == "fail" and "older events were cleared" in old["Security"][1]
    assert old["Application"][0] == "fail"


def _retain_security(*extra: dict[str, object]) -> tuple[str, str]:
    found = _judge(
        _gl("Security", "security-overwrite-20m", RETAIN),
        _qe("Security", "security-oldest-2026-03-01"),
        *extra,
        _gl("System", "system-disabled"),
        _gl("Application", "system-disabled"),
    )
    return found["Security"]


def test_windows_retain_mode_fails_when_the_log_stopped_recording() -> None:
    status, message = _retain_security(
        _gli("Security", "security-half-full"), _newest("Security", "security-newest-2026-11-14")
    )
    assert status == "fail"
    assert message == (
        "Security: the newest event is 9 d 5 h old (at most 1 d expected) and do not "
        "overwrite events is set: the log has stopped recording"
    )
    full, _ = _retain_security(
        _gli("Security", "security-full"), _newest("Security", "security-newest-2026-11-23")
    )
    assert full == "fail"  # full even though something was written a moment ago


def test_windows_retain_mode_within_one_chunk_of_maxsize_is_full() -> None:
    nearly = _variant(
        "wevtutil-gli/security-full",
        ["wevtutil", "gli", "Security"],
        stdout=_out("wevtutil-gli/security-full").replace("20971520", "20910080"),
    )
    status, message = _retain_security(nearly, _newest("Security", "security-newest-2026-11-23"))
    assert status == "fail" and "the log is full" in message


def test_windows_retain_mode_unreadable_fullness_is_an_error() -> None:
    denied = _variant("wevtutil-qe/security-access-denied", ["wevtutil", "gli", "Security"])
    status, message = _retain_security(denied, _newest("Security", "security-newest-2026-11-23"))
    assert status == "error"
    assert "whether the log is full or still records could not be read" in message
    garbage = _variant(
        "wevtutil-qe/security-newest-2026-11-23", stdout="Ereignis 4624 um 11:58\r\n"
    )
    status, message = _retain_security(_gli("Security", "security-half-full"), garbage)
    assert status == "error" and "not an <Event> element" in message
    empty = _variant("wevtutil-qe/security-newest-2026-11-23", stdout="")
    status, message = _retain_security(_gli("Security", "security-half-full"), empty)
    assert status == "error" and "newest event could not be read" in message


def test_windows_young_host_with_a_small_maxsize_fails() -> None:
    small = {"maxSize: 20971520": "maxSize: 4194304"}
    gli = _variant(
        "wevtutil-gli/security-young",
        stdout=_out("wevtutil-gli/security-young").replace("3211264", "4194304"),
    )
    found = _judge(
        _gl("Security", "security-overwrite-20m", small),
        _qe("Security", "security-oldest-2026-11-09"),
        gli,
        _gl("System", "system-disabled"),
        _gl("Application", "system-disabled"),
        _rec("reg-query-install-date/win11-2026-11-09"),
    )
    assert found["Security"][0] == "fail"
    assert "maxSize 4.0M holds only 14 d (policy 180 d)" in found["Security"][1]
    assert found["System"] == ("fail", "System: the log is disabled")


# -- Windows: archived logs ----------------------------------------------------------------

LOGS = "C/Windows/System32/Winevt/Logs"


def _archive_tree(root: Path, *names: str) -> Path:
    folder = root / LOGS
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def _application_archived(*extra: dict[str, object], root: Path) -> tuple[str, str]:
    found = _judge(
        _gl("Security", "system-disabled"),
        _gl("System", "system-disabled"),
        _rec("wevtutil-gl/application-archive"),
        _rec("wevtutil-qe/application-oldest-2026-10-01"),
        *extra,
        root=root,
    )
    return found["Application"]


def test_archive_listing_reads_names_in_utc_and_falls_back_to_mtime(tmp_path: Path) -> None:
    folder = _archive_tree(
        tmp_path,
        "Archive-Application-2026-07-30-14-22-41-117.evtx",
        "archive-application-2026-04-20-08-00-00-000.EVTX",  # Windows ignores case
        "Archive-Application-copy.evtx",
        "Archive-Security-2025-01-01-00-00-00-000.evtx",  # another log's
        "Archive-Application-2026-02-30-00-00-00-000.evtx",  # no such day: mtime
        "Application.evtx",
    )
    copied = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()
    os.utime(folder / "Archive-Application-copy.evtx", (copied, copied))
    os.utime(folder / "Archive-Application-2026-02-30-00-00-00-000.evtx", (copied, copied))
    facts, _ = _host("win32", "wevtutil-gl/application-archive", root=tmp_path)
    listing = facts.windows_event_archives("Application")
    assert listing.directory == "C:\\Windows\\System32\\Winevt\\Logs"
    assert listing.pattern == "Archive-Application-*.evtx"
    assert [(a.path.rsplit("\\", 1)[1], a.created, a.basis) for a in listing.archives] == [
        (
            "Archive-Application-2026-02-30-00-00-00-000.evtx",
            datetime.fromtimestamp(copied, UTC),
            "modification time",
        ),
        ("Archive-Application-copy.evtx", datetime.fromtimestamp(copied, UTC), "modification time"),
        (
            "archive-application-2026-04-20-08-00-00-000.EVTX",
            datetime(2026, 4, 20, 8, tzinfo=UTC),
            "file name",
        ),
        (
            "Archive-Application-2026-07-30-14-22-41-117.evtx",
            datetime(2026, 7, 30, 14, 22, 41, 117000, tzinfo=UTC),
            "file name",
        ),
    ]


def test_archives_that_reach_back_pass(tmp_path: Path) -> None:
    _archive_tree(tmp_path, "Archive-Application-2026-04-20-08-00-00-000.evtx")
    status, message = _application_archived(root=tmp_path)
    assert status == "pass"
    assert "the archives reach back 217 d 4 h (policy 180 d; 1 Archive-Application" in message


def test_archives_too_recent_fail_and_a_young_host_passes(tmp_path: Path) -> None:
    _archive_tree(tmp_path, "Archive-Application-2026-09-01-00-00-00-000.evtx")
    install = "reg-query-install-date/win11-2024-05-02"
    status, message = _application_archived(_rec(install), root=tmp_path)
    assert status == "fail" and "reach back only 83 d 12 h, below the policy" in message
    young = _variant(
        install,
        stdout=_out(install).replace(
            "0x66335d18", hex(int(datetime(2026, 8, 31, tzinfo=UTC).timestamp()))
        ),
    )
    status, message = _application_archived(young, root=tmp_path)
    assert status == "pass" and "keeps all of it (Windows never deletes archives" in message


def test_unlistable_archive_directory_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _archive_tree(tmp_path, "Archive-Application-2026-04-20-08-00-00-000.evtx")

    def refuse(path: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(logs_windows.os, "scandir", refuse)
    status, message = _application_archived(root=tmp_path)
    assert status == "error"
    assert "archives could not be listed" in message and "permission denied" in message
    assert "C:\\Windows\\System32\\Winevt\\Logs" in message


def test_archive_directory_of_an_unplaceable_log_file_is_an_error(tmp_path: Path) -> None:
    config = EventLogConfig("Application", True, True, True, 1, "%NOSUCHVAR%\\App.evtx")
    facts, _ = _host("win32", root=tmp_path)
    with pytest.raises(FactParseError, match="cannot tell where the log file is"):
        logs_windows.read_archives(facts, config)
    config = EventLogConfig("Application", True, True, True, 1, "\\\\server\\logs\\App.evtx")
    with pytest.raises(FactParseError, match="not a drive-letter path"):
        logs_windows.read_archives(facts, config)


# -- the install date's failure is said, not swallowed --------------------------------------


def test_unreadable_install_date_is_named_in_a_failure() -> None:
    denied = _variant(
        "reg-query-install-date/win11-2026-11-09",
        returncode=1,
        stdout="",
        stderr="ERROR: Access is denied.\r\n",
    )
    results = _windows_results(
        _rec("wevtutil-gl/security-overwrite-20m"),
        _rec("wevtutil-qe/security-oldest-2026-10-30"),
        denied,
        _gl("System", "system-disabled"),
        _gl("Application", "system-disabled"),
    )
    security = next(r for r in results if r.resource.id == "Security")
    assert str(security.status) == "fail"
    assert "the install date could not be read" in security.message
    assert "Access is denied" in security.message
    assert "Access is denied" in str(security.observed["installed_at_error"])
    assert security.observed["installed_at"] is None


def test_unreadable_setup_date_is_named_in_the_unified_log_failure() -> None:
    facts, _ = _host("darwin", "log-stats-overview/reaches-back-12-days", missing=("stat",))
    result = _logging_retention._unified_log(facts, 180)
    assert str(result.status) == "fail"
    assert "the install date could not be read" in result.message
    assert "stat is not installed" in str(result.observed["installed_at_error"])


# -- unreadable configuration is an error naming the file, never "not configured" -----------


def test_asl_file_that_cannot_be_read_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "etc/asl.conf").mkdir(parents=True)  # a directory where the file belongs
    with pytest.raises(FactError) as caught:
        AslReader(tmp_path).read()
    assert not isinstance(caught.value, FactUnavailable)  # would read as "not configured"
    assert caught.value.call == "/etc/asl.conf" and "cannot read" in caught.value.reason


def test_asl_modules_that_cannot_be_listed_are_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"etc/asl.conf": "* file /var/log/x.log rotate=utc ttl=365\n"})
    (tmp_path / "etc/asl").mkdir()

    def refuse(self: Path) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(FactPermissionDenied) as caught:
        AslReader(tmp_path).read()
    assert caught.value.call == "/etc/asl"


def test_newsyslog_file_that_cannot_be_read_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"etc/newsyslog.conf": "/var/log/wtmp 644 3 * @01T05 B\n"})

    def fail(self: Path, *args: object, **kwargs: object) -> str:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Path, "read_text", fail)
    with pytest.raises(FactError) as caught:
        NewsyslogReader(tmp_path).read()
    assert not isinstance(caught.value, FactUnavailable)  # would read as "not configured"
    assert caught.value.call == "/etc/newsyslog.conf"
    assert "Input/output error" in caught.value.reason


def test_newsyslog_drop_in_folder_that_cannot_be_listed_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"etc/newsyslog.conf": "/var/log/wtmp 644 3 * @01T05 B\n"})
    (tmp_path / "etc/newsyslog.d").mkdir()
    listdir = os.listdir

    def refuse(path: object) -> list[str]:
        if str(path).endswith("newsyslog.d"):
            raise PermissionError(13, "Permission denied")
        return listdir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "listdir", refuse)
    with pytest.raises(FactPermissionDenied) as caught:
        NewsyslogReader(tmp_path).read()
    assert caught.value.call == "/etc/newsyslog.d/*.conf"
