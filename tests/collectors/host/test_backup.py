"""Backup facts against recorded restic output and real files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.checks.host.backup import BackupSource, RestoreTestParams, restore_test
from tillsyn.collectors.errors import FactCommandFailed, FactParseError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.backup import parse_restic_snapshots, parse_timestamp, redact_location
from tillsyn.collectors.host.backup_borg import parse_borg_list, parse_borg_time
from tillsyn.collectors.host.backup_integrity import (
    MEMORY_NAMESPACE,
    judge_borg_check,
    judge_restic_check,
)
from tillsyn.collectors.host.backup_timemachine import (
    parse_destinationinfo,
    parse_latestbackup,
)
from tillsyn.collectors.memory import FactMemory

SNAPSHOTS = COMMANDS / "restic-snapshots"


def _recording(name: str) -> dict[str, object]:
    return json.loads((SNAPSHOTS / f"{name}.json").read_text())


def test_recorded_snapshots_parse_with_nanosecond_times() -> None:
    recording = _recording("several-snapshots")
    snapshots = parse_restic_snapshots(str(recording["stdout"]), "restic snapshots")
    assert len(snapshots) == 3
    newest = max(snapshots, key=lambda s: s.time)
    assert newest.tags == ("weekly",)
    assert newest.hostname == "laptop-01"
    assert newest.time.tzinfo is not None


def test_empty_repository_is_an_empty_list_not_an_error() -> None:
    assert parse_restic_snapshots(str(_recording("empty-repo")["stdout"]), "x") == ()


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        (str(_recording("truncated-output")["stdout"]), "output is not JSON"),
        ("", "output is not JSON"),
        ('{"time": "2026-01-01T00:00:00Z"}', "expected a JSON array"),
        ('[{"id": "abc"}]', "snapshot 0 has no 'time' string"),
        ('[{"time": "yesterday"}]', "snapshot 0"),
        ('[{"time": "2026-01-01T00:00:00"}]', "has no time zone"),
    ],
)
def test_malformed_output_is_a_parse_error_never_an_empty_result(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_restic_snapshots(stdout, "restic snapshots")


def test_timestamps_from_go_are_read_to_the_microsecond() -> None:
    assert parse_timestamp("2026-11-23T01:35:48.624024228+01:00") == datetime(
        2026, 11, 23, 0, 35, 48, 624024, tzinfo=UTC
    )


def test_password_travels_in_the_environment_never_on_the_command_line() -> None:
    runner = RecordedRunner.from_files([SNAPSHOTS / "several-snapshots.json"])
    facts = HostFacts(
        root="/nonexistent", runner=runner, env={"PW": "s3cret"}, platform="linux", now=PINNED_NOW
    )
    facts.restic_snapshots("/tmp/tillsyn-rec/repo-main", password_env="PW")
    ((argv, env),) = runner.calls
    assert "s3cret" not in " ".join(argv)
    assert env == {"RESTIC_PASSWORD": "s3cret"}


def test_a_fact_read_by_two_checks_runs_the_command_once() -> None:
    runner = RecordedRunner.from_files([SNAPSHOTS / "several-snapshots.json"])
    facts = HostFacts(root="/nonexistent", runner=runner, env={}, platform="linux")
    for _ in range(3):
        facts.restic_snapshots("/tmp/tillsyn-rec/repo-main", "/pw")
    assert len(runner.calls) == 1


def test_credentials_in_a_repository_url_are_redacted_in_errors() -> None:
    url = "rest:https://backup:hunter2@backup.example:8000/laptop"
    recording = {
        "argv": ["restic", "snapshots", "--json", "--no-lock", "--repo", url],
        "returncode": 1,
        "stdout": "",
        "stderr": f"Fatal: unable to open {url}\n",
    }
    facts = HostFacts(root="/", runner=RecordedRunner([recording]), env={}, platform="linux")
    with pytest.raises(FactCommandFailed) as caught:
        facts.restic_snapshots(url, "/pw")
    assert "hunter2" not in str(caught.value)
    assert "backup:***@backup.example:8000" in str(caught.value)
    assert redact_location("/srv/restic") == "/srv/restic"


def test_newest_matching_file_reads_real_mtimes(tmp_path: Path) -> None:
    (tmp_path / "dumps").mkdir()
    for name, mtime in (
        ("db-1.gz", 1_700_000_000),
        ("db-2.gz", 1_700_100_000),
        ("other.txt", 1_800_000_000),
    ):
        (tmp_path / "dumps" / name).write_text("x")
        os.utime(tmp_path / "dumps" / name, (mtime, mtime))
    facts = HostFacts(root=tmp_path, env={}, platform="linux")
    found = facts.newest_file("/dumps/db-*.gz")
    assert found is not None
    assert (found.path, found.matched) == ("/dumps/db-2.gz", 2)
    assert found.modified_at == datetime.fromtimestamp(1_700_100_000, UTC)
    assert facts.newest_file("/dumps/none-*.gz") is None
    with pytest.raises(FactUnavailable, match="directory does not exist"):
        facts.newest_file("/absent/db-*.gz")
    with pytest.raises(FactUnavailable, match="must be absolute"):
        facts.newest_file("dumps/*.gz")


# -- borg ------------------------------------------------------------------------------


def _command(name: str) -> dict[str, object]:
    return json.loads((COMMANDS / name).read_text())


def test_recorded_borg_list_gives_the_newest_archive_in_utc() -> None:
    archive = parse_borg_list(str(_command("borg-list/several-archives.json")["stdout"]), "x")
    assert archive is not None
    assert archive.name == "laptop-2026-11-23T03"
    assert archive.time == datetime(2026, 11, 23, 2, 4, 40, tzinfo=UTC)
    assert archive.encryption == "repokey"
    assert parse_borg_list(str(_command("borg-list/empty-repo.json")["stdout"]), "x") is None


def test_borg_times_with_an_offset_are_converted() -> None:
    assert parse_borg_time("2026-11-23T03:04:40.000000+01:00") == datetime(
        2026, 11, 23, 2, 4, 40, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        (str(_command("borg-list/truncated-output.json")["stdout"]), "output is not JSON"),
        ("[]", "expected an object with an 'archives' list"),
        ('{"archives": [{"name": "a"}]}', "archive 0 has no 'start' or 'time'"),
        ('{"archives": [{"name": "a", "time": "soon"}]}', "archive 0"),
    ],
)
def test_malformed_borg_output_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_borg_list(stdout, "borg list")


def test_borg_passphrase_travels_in_the_environment_with_tz_utc() -> None:
    runner = RecordedRunner.from_files([COMMANDS / "borg-list/several-archives.json"])
    facts = HostFacts(root="/nonexistent", runner=runner, env={"BPW": "s3cret"}, platform="linux")
    facts.borg_newest("/tmp/tillsyn-rec-backup/borg-main", password_env="BPW")
    ((argv, env),) = runner.calls
    assert "s3cret" not in " ".join(argv)
    assert env["BORG_PASSPHRASE"] == "s3cret" and env["TZ"] == "UTC"
    runner = RecordedRunner.from_files([COMMANDS / "borg-list/several-archives.json"])
    facts = HostFacts(root="/nonexistent", runner=runner, env={}, platform="linux")
    facts.borg_newest("/tmp/tillsyn-rec-backup/borg-main", password_file="/etc/my pw")
    ((_, env),) = runner.calls
    assert env["BORG_PASSCOMMAND"] == "cat '/etc/my pw'"
    assert "BORG_PASSPHRASE" not in env


# -- Time Machine ----------------------------------------------------------------------


def test_tmutil_destinations_and_none() -> None:
    rec = _command("tmutil-destinationinfo/local-disk.json")
    (dest,) = parse_destinationinfo(str(rec["stdout"]), "", "tmutil")
    assert (dest.name, dest.kind) == ("TimeMachine_T5", "Local")
    none = _command("tmutil-destinationinfo/none.json")
    assert parse_destinationinfo(str(none["stdout"]), "", "tmutil") == ()
    with pytest.raises(FactParseError):
        parse_destinationinfo("Name: x\n", "", "tmutil")


def test_tmutil_latestbackup_local_time_is_converted() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Stockholm")
    apfs = parse_latestbackup(str(_command("tmutil-latestbackup/apfs.json")["stdout"]), zone, "x")
    assert apfs is not None and apfs.time == datetime(2026, 11, 23, 8, 30, 12, tzinfo=UTC)
    assert parse_latestbackup("", zone, "x") is None
    with pytest.raises(FactParseError, match="does not end in a backup time"):
        parse_latestbackup("/Volumes/Backups/Latest\n", zone, "x")
    with pytest.raises(FactParseError, match="expected one backup path"):
        parse_latestbackup("Failed to mount\n", zone, "x")


# -- restore tests ---------------------------------------------------------------------

RESTIC_MAIN = "/tmp/tillsyn-rec-backup/restic-main"


def test_recorded_check_outcomes_are_read_from_exit_status_and_words() -> None:
    ok = _command("restic-check/ok.json")
    assert judge_restic_check(0, str(ok["stdout"]), "", "f", ["restic"]) == (
        True,
        "no errors were found",
    )
    bad = _command("restic-check/corrupt-pack.json")
    passed, detail = judge_restic_check(1, str(bad["stdout"]), str(bad["stderr"]), "f", ["r"])
    assert not passed and detail.startswith("Fatal: repository contains errors")
    wrong = _command("restic-check/wrong-password.json")
    with pytest.raises(FactCommandFailed, match="wrong password"):
        judge_restic_check(1, "", str(wrong["stderr"]), "f", ["restic"])
    segment = _command("borg-check/corrupt-segment.json")
    passed, detail = judge_borg_check(1, str(segment["stderr"]), "f", ["borg"])
    assert not passed and "checksum mismatch" in detail and "errors found" in detail
    borg_wrong = _command("borg-check/wrong-passphrase.json")
    with pytest.raises(FactCommandFailed):
        judge_borg_check(2, str(borg_wrong["stderr"]), "f", ["borg"])


def test_a_check_run_is_remembered_and_not_rerun_before_it_is_due() -> None:
    memory = FactMemory()
    runner = RecordedRunner.from_files([COMMANDS / "restic-check/ok.json"])
    facts = HostFacts(
        root="/nonexistent", runner=runner, env={}, platform="linux", now=PINNED_NOW, memory=memory
    )
    first = facts.restore_test("laptop", "restic", RESTIC_MAIN, "/pw")
    assert first.ok and first.ran_now
    stored = memory.get(MEMORY_NAMESPACE, "laptop")
    assert stored is not None and stored[0]["ok"] is True
    later = HostFacts(
        root="/nonexistent",
        runner=RecordedRunner(),  # any command would fail the test
        env={},
        platform="linux",
        now=PINNED_NOW + timedelta(days=3),
        memory=memory,
    )
    again = later.restore_test("laptop", "restic", RESTIC_MAIN, "/pw")
    assert again.ok and not again.ran_now and again.at == PINNED_NOW


def test_a_test_that_could_not_run_is_not_remembered() -> None:
    memory = FactMemory()
    runner = RecordedRunner.from_files([COMMANDS / "restic-check/wrong-password.json"])
    facts = HostFacts(root="/nonexistent", runner=runner, env={}, platform="linux", memory=memory)
    with pytest.raises(FactCommandFailed):
        facts.restore_test("laptop", "restic", RESTIC_MAIN, "/pw")
    assert memory.get(MEMORY_NAMESPACE, "laptop") is None


def test_marker_file_time_and_outcome(tmp_path: Path) -> None:
    marker = tmp_path / "var/lib/restore-test/db.ok"
    marker.parent.mkdir(parents=True)
    marker.write_text("")
    os.utime(marker, (1_790_000_000, 1_790_000_000))
    facts = HostFacts(root=tmp_path, env={}, platform="linux")
    test = facts.restore_marker("/var/lib/restore-test/db.ok")
    assert test is not None and test.ok
    assert test.at == datetime.fromtimestamp(1_790_000_000, UTC)
    marker.write_text("FAILED\n")
    assert (
        HostFacts(root=tmp_path, env={}, platform="linux")
        .restore_marker("/var/lib/restore-test/db.ok")
        .ok
        is False
    )  # type: ignore[union-attr]
    assert facts.restore_marker("/var/lib/restore-test/none.ok") is None


def test_marker_age_decides_between_pass_and_fail(tmp_path: Path) -> None:
    marker = tmp_path / "srv/restore.ok"
    marker.parent.mkdir(parents=True)
    marker.write_text("ok\n")
    source = BackupSource(
        name="db", kind="path", path="/srv/db-*.gz", marker_file="/srv/restore.ok"
    )
    params = RestoreTestParams(sources=(source,))
    for days, status in ((10, "pass"), (45, "fail")):
        stamp = (PINNED_NOW - timedelta(days=days)).timestamp()
        os.utime(marker, (stamp, stamp))
        facts = HostFacts(root=tmp_path, env={}, platform="linux", now=PINNED_NOW)
        (result,) = restore_test(facts, params)
        assert str(result.status) == status, result.message
        assert f"{days} d" in result.message


def test_rerun_interval_must_be_shorter_than_the_limit() -> None:
    with pytest.raises(ValueError, match="rerun_after_days must be shorter"):
        RestoreTestParams(max_age_days=7, rerun_after_days=7)
