"""Logging facts against recorded real outputs, real Debian configuration and malformed input."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, HOSTS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import FactParseError, FactPermissionDenied, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.logs_journald import (
    parse_birth_time,
    parse_disk_usage,
    parse_list_boots,
    resolve_settings,
)
from tillsyn.collectors.host.logs_logrotate import LogrotateReader
from tillsyn.collectors.host.logs_shipping import rsyslog_forwarders, syslog_ng_forwarders
from tillsyn.collectors.host.logs_systemd import (
    ParsedConfig,
    config_files,
    parse_assignments,
    parse_size,
    parse_timespan,
)
from tillsyn.collectors.host.logs_time import (
    parse_chronyc_tracking,
    parse_ntpq_peers,
    parse_timedatectl_show,
    parse_timesync_status,
)

DEBIAN = HOSTS / "logging-debian12-defaults"


def _out(name: str, stream: str = "stdout") -> str:
    return str(json.loads((COMMANDS / f"{name}.json").read_text())[stream])


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# -- systemd configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("4G", 4 << 30), ("512M", 512 << 20), ("1.5G", 3 << 29), ("100", 100), ("1G 512M", 3 << 29)],
)
def test_systemd_sizes_are_base_1024(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "10%", "4g", "lots", "4 GB extra"])
def test_sizes_systemd_refuses_are_none(text: str) -> None:
    assert parse_size(text) is None


@pytest.mark.parametrize(
    ("text", "days"),
    [("180d", 180), ("6month", 182.625), ("1y", 365.25), ("2w 3d", 17), ("86400", 1)],
)
def test_systemd_time_spans(text: str, days: float) -> None:
    assert parse_timespan(text) == pytest.approx(days * 86400)


def test_bad_time_span_is_refused() -> None:
    assert parse_timespan("soon") is None
    assert parse_timespan("5 fortnights") is None


def test_dropins_sort_by_name_across_directories_and_etc_masks(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "etc/systemd/journald.conf": "[Journal]\n",
            "etc/systemd/journald.conf.d/20-a.conf": "",
            "run/systemd/journald.conf.d/10-b.conf": "",
            "run/systemd/journald.conf.d/20-a.conf": "",
            "usr/lib/systemd/journald.conf.d/30-c.conf": "",
            "usr/lib/systemd/journald.conf.d/40-masked.conf": "",
            "usr/lib/systemd/journald.conf.d/.hidden.conf": "",
            "usr/lib/systemd/journald.conf.d/50-notes.txt": "",
        },
    )
    os.symlink("/dev/null", tmp_path / "etc/systemd/journald.conf.d/40-masked.conf")
    files, masked = config_files(tmp_path, "journald.conf")
    assert files == [
        "/etc/systemd/journald.conf",
        "/run/systemd/journald.conf.d/10-b.conf",
        "/etc/systemd/journald.conf.d/20-a.conf",
        "/usr/lib/systemd/journald.conf.d/30-c.conf",
    ]
    assert masked == ["/etc/systemd/journald.conf.d/40-masked.conf"]


def test_later_assignment_wins_and_invalid_values_are_ignored_like_journald() -> None:
    parsed = ParsedConfig(files=["/a", "/b"])
    parse_assignments("[Journal]\nStorage=persistent\nSystemMaxUse=2G\n", "/a", parsed)
    parse_assignments(
        "# comment\n[Journal]\nSystemMaxUse=10%\nMaxRetentionSec=1y\nStorage=sometimes\n"
        "Bare line\n",
        "/b",
        parsed,
    )
    settings = resolve_settings(parsed)
    assert settings.storage == "persistent"
    assert settings.system_max_use == 2 << 30  # 10% refused: the earlier value stays
    assert settings.max_retention_seconds == pytest.approx(31557600)
    assert any("SystemMaxUse='10%'" in line for line in settings.ignored)
    assert any("not an assignment" in line for line in settings.ignored)
    assert dict(settings.set_at)["Storage"] == "/a:2"


def test_debian_shipped_journald_conf_is_all_defaults() -> None:
    parsed = ParsedConfig(files=["/etc/systemd/journald.conf"])
    text = (DEBIAN / "etc/systemd/journald.conf").read_text()
    parse_assignments(text, "/etc/systemd/journald.conf", parsed)
    settings = resolve_settings(parsed)
    assert (settings.storage, settings.max_retention_seconds, settings.system_max_use) == (
        "auto",
        None,
        None,
    )


# -- journalctl ---------------------------------------------------------------------------


def test_list_boots_json_gives_the_oldest_entry() -> None:
    boots = parse_list_boots(_out("journalctl-list-boots/old"), "journalctl --list-boots")
    assert len(boots) == 3
    assert min(b.first_entry for b in boots) == datetime(2026, 4, 1, 6, 12, 9, tzinfo=UTC)


def test_list_boots_table_of_older_journalctl_is_read_in_utc() -> None:
    boots = parse_list_boots(_out("journalctl-list-boots/table-systemd252"), "x")
    assert [b.first_entry for b in boots] == [
        datetime(2026, 11, 10, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 20, 7, 30, tzinfo=UTC),
    ]


def test_empty_journal_has_no_boots() -> None:
    assert parse_list_boots(_out("journalctl-list-boots/empty"), "x") == ()


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ('[{"index":0,"boot_id":"ab"', "output is not JSON"),
        ('{"boot_id": "x"}', "neither JSON nor the boot table"),
        ('[{"index":0}]', "boot without a boot_id"),
        ('[{"index":0,"boot_id":"a","first_entry":"today","last_entry":1}]', "not a positive"),
        ("IDX BOOT ID FIRST ENTRY LAST ENTRY\n  0 zz garbage\n", "unrecognised boot line"),
    ],
)
def test_malformed_list_boots_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_list_boots(stdout, "journalctl --list-boots")


def test_disk_usage() -> None:
    assert parse_disk_usage(_out("journalctl-disk-usage/old"), "x") == 8 << 20
    assert parse_disk_usage(_out("journalctl-disk-usage/empty"), "x") == 0
    with pytest.raises(FactParseError, match="unrecognised disk usage"):
        parse_disk_usage("Journals take up a lot.\n", "x")
    with pytest.raises(FactParseError, match="expected one line"):
        parse_disk_usage("", "x")


def test_unprivileged_journal_read_is_permission_denied_not_empty() -> None:
    runner = RecordedRunner.from_files([COMMANDS / "journalctl-list-boots/unprivileged.json"])
    facts = HostFacts(root=DEBIAN, runner=runner, env={}, platform="linux", now=PINNED_NOW)
    with pytest.raises(FactPermissionDenied, match="cannot read the system journal"):
        facts.journal_boots()
    ((_, env),) = runner.calls
    assert env == {"TZ": "UTC"}


def test_partial_view_hint_with_exit_zero_is_still_denied() -> None:
    recording = json.loads((COMMANDS / "journalctl-disk-usage/old.json").read_text())
    recording["stderr"] = _out("journalctl-disk-usage/unprivileged", "stderr")
    facts = HostFacts(
        root=DEBIAN, runner=RecordedRunner([recording]), env={}, platform="linux", now=PINNED_NOW
    )
    with pytest.raises(FactPermissionDenied):
        facts.journal_usage()


def test_birth_time() -> None:
    assert parse_birth_time(_out("stat-birth/unknown"), "stat") is None
    young = parse_birth_time(_out("stat-birth/young-host"), "stat")
    assert young == datetime(2026, 11, 9, 12, tzinfo=UTC)
    with pytest.raises(FactParseError):
        parse_birth_time("?\n", "stat")


# -- logrotate ----------------------------------------------------------------------------

_DEBUG = re.compile(
    r"rotating pattern: (.*?)\s+(hourly|weekly|monthly|yearly|after 1 days|(\d+) bytes) "
    r"\((?:(\d+) rotations|no old logs will be kept)\)",
    re.S,
)


def test_parser_agrees_with_logrotate_debug_output_on_debian12() -> None:
    """logrotate -d's own reading of the same configuration is the oracle."""
    oracle = {}
    for m in _DEBUG.finditer(_out("logrotate-debug/debian12", "stderr")):
        name = " ".join(m.group(1).split())
        criterion = {"after 1 days": "daily"}.get(m.group(2), m.group(2))
        if m.group(3):
            criterion = "size"
        oracle[name] = (criterion, int(m.group(4) or 0))
    config = LogrotateReader(DEBIAN).read()
    ours = {s.name: (s.rotation.criterion, s.rotation.rotate) for s in config.stanzas}
    assert len(oracle) >= 20
    assert ours == oracle


def test_stanza_retention_days() -> None:
    config = LogrotateReader(DEBIAN).read()
    by_name = {s.name: s for s in config.stanzas}
    assert by_name["/var/log/dpkg.log"].retention_days()[0] == 372
    assert by_name["/var/log/btmp"].retention_days()[0] == 31
    days, why = by_name["/var/log/mosquitto/mosquitto.log"].retention_days()
    assert days is None and "rotated by size" in why


def test_maxage_caps_and_rotate_minus_one(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "etc/logrotate.conf": "/var/log/a.log {\n daily\n rotate -1\n maxage 30\n}\n"
            "/var/log/b.log {\n weekly\n rotate -1\n}\n/var/log/c {\n monthly\n rotate 0\n}\n"
            "/var/log/d {\n}\n",
        },
    )
    stanzas = {s.name: s.retention_days()[0] for s in LogrotateReader(tmp_path).read().stanzas}
    assert stanzas == {
        "/var/log/a.log": 30,
        "/var/log/b.log": float("inf"),
        "/var/log/c": 0,
        "/var/log/d": None,  # no frequency: logrotate rotates by size (1 MiB)
    }


def test_taboo_tabooext_and_group_writable_files(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "etc/logrotate.conf": "tabooext + .local\ninclude /etc/logrotate.d\n",
            "etc/logrotate.d/a": "/var/log/a {\n weekly\n}\n",
            "etc/logrotate.d/a.local": "/var/log/x {\n weekly\n}\n",
            "etc/logrotate.d/a.rpmsave": "/var/log/y {\n weekly\n}\n",
            "etc/logrotate.d/open": "/var/log/z {\n weekly\n}\n",
        },
    )
    (tmp_path / "etc/logrotate.d/open").chmod(0o664)
    config = LogrotateReader(tmp_path).read()
    assert [s.name for s in config.stanzas] == ["/var/log/a"]
    assert any("writable by group" in line for line in config.ignored)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/var/log/a {\n rotate 4\n", "never closed"),
        ("/var/log/a {\n rotate four\n}\n", "bad rotate count"),
        ("/var/log/a {\n size 10X\n}\n", "bad size"),
        ("{\n weekly\n}\n", "without log file patterns"),
        ("/var/log/a {\n include /etc/x\n}\n", "include inside"),
    ],
)
def test_malformed_logrotate_is_a_parse_error(tmp_path: Path, text: str, says: str) -> None:
    _write(tmp_path, {"etc/logrotate.conf": text})
    with pytest.raises(FactParseError, match=says):
        LogrotateReader(tmp_path).read()


def test_missing_logrotate_conf_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(FactUnavailable):
        LogrotateReader(tmp_path).read()


# -- shipping -----------------------------------------------------------------------------


def test_rsyslog_forwarding_forms_and_comments() -> None:
    text = (
        "#*.* @@commented:514\n*.* @@(z9)loghost:10514\nauth.* @10.0.0.5\n"
        "/* *.* @block-commented */\n*.* :omrelp:relp.example:2514\n"
        'if $programname == "x" then {\n action(type="omfwd" Target="collector" Port="6514"\n'
        ' protocol="tcp")\n}\n*.* action(type="omfile" file="/var/log/x")\n'
    )
    found = [(f.target, f.how) for f in rsyslog_forwarders(text, "/etc/rsyslog.conf", True)]
    assert found == [
        ("loghost:10514", "@@ (TCP)"),
        ("10.0.0.5", "@ (UDP)"),
        ("relp.example:2514", "omrelp"),
        ("collector:6514", "omfwd"),
    ]


def test_debian_rsyslog_conf_forwards_nothing() -> None:
    text = (DEBIAN / "etc/rsyslog.conf").read_text()
    assert rsyslog_forwarders(text, "/etc/rsyslog.conf", True) == []


def test_syslog_ng_destination_counts_only_when_a_log_path_uses_it() -> None:
    text = (
        'destination d_remote { network("logs.example" port(6514) transport("tcp")); };\n'
        'destination d_unused { udp("old.example"); };\n'
        'destination d_file { file("/var/log/messages"); };\n'
        "log { source(s_src); destination(d_remote); destination(d_file); };\n"
    )
    found = [(f.target, f.how) for f in syslog_ng_forwarders(text, "/etc/syslog-ng.conf", None)]
    assert found == [("logs.example", "network()")]


# -- time ---------------------------------------------------------------------------------


def test_chrony_recordings() -> None:
    synced = parse_chronyc_tracking(_out("chronyc-tracking/synced"), "x")
    assert synced.synchronised and synced.offset_ms == pytest.approx(0.001367)
    slow = parse_chronyc_tracking(_out("chronyc-tracking/offset-2s"), "x")
    assert slow.offset_ms == pytest.approx(-2000.019073)
    unsynced = parse_chronyc_tracking(_out("chronyc-tracking/unsynced"), "x")
    assert not unsynced.synchronised and unsynced.offset_ms is None


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        (_out("chronyc-tracking/not-running"), "unrecognised line"),
        ("Reference ID    : 7F000001 (127.0.0.1)\n", "no 'System time' line"),
        (
            _out("chronyc-tracking/synced").replace("seconds fast", "secs quick"),
            "unrecognised System time",
        ),
        (_out("chronyc-tracking/synced").replace("Normal", "Weird"), "unknown Leap status"),
    ],
)
def test_malformed_chronyc_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_chronyc_tracking(stdout, "chronyc -n tracking")


def test_ntpq_selected_peer_and_none() -> None:
    peer = parse_ntpq_peers(_out("ntpq-peers/synced"), "x")
    # ntpq's offset is NTP's (source minus clock): +0.011 printed means the clock is behind.
    assert (peer.synchronised, peer.source, peer.offset_ms) == (True, "192.0.2.53", -0.011)
    assert not parse_ntpq_peers(_out("ntpq-peers/none-selected"), "x").synchronised
    with pytest.raises(FactParseError, match="not an ntpq peer table"):
        parse_ntpq_peers("***Socket error; probably ntpd is not running\n", "x")
    cut = "\n".join(_out("ntpq-peers/synced").splitlines()[:3])[:-20]
    with pytest.raises(FactParseError, match="short peer line"):
        parse_ntpq_peers(cut, "x")


def test_timedatectl_outputs() -> None:
    assert parse_timedatectl_show(_out("timedatectl-show/timesyncd-synced"), "x") == {
        "NTP": "yes",
        "NTPSynchronized": "yes",
    }
    with pytest.raises(FactParseError):
        parse_timedatectl_show("NTP=maybe\n", "x")
    status = parse_timesync_status(_out("timedatectl-timesync-status/debian-offset-1s"), "x")
    # timesyncd prints NTP's offset (source minus clock); reports keep clock minus source.
    assert status.offset_ms == pytest.approx(1087.495)
    assert parse_timesync_status(
        _out("timedatectl-timesync-status/synced"), "x"
    ).offset_ms == pytest.approx(-1.234)
    with pytest.raises(FactParseError, match="unreadable Offset"):
        parse_timesync_status("Server: a\nOffset: soon\n", "x")


def test_time_daemons_missing_and_silent_are_told_apart() -> None:
    runner = RecordedRunner.from_files(
        [COMMANDS / "chronyc-tracking/not-running.json"], missing=["ntpq", "timedatectl"]
    )
    facts = HostFacts(root=DEBIAN, runner=runner, env={}, platform="linux", now=PINNED_NOW)
    sync = facts.time_sync()
    assert sync.reports == ()
    assert sync.silent == ("chronyc: exit 1: 506 Cannot talk to daemon",)
