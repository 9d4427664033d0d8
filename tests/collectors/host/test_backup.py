"""Backup facts against recorded restic output and real files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import FactCommandFailed, FactParseError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.backup import parse_restic_snapshots, parse_timestamp, redact_location

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
