"""Backups of this host's data.

``host.backup.recency`` passes for a configured source when its newest completed backup
is younger than the RPO (``max_age_hours``). Sources are restic repositories (newest
snapshot), borg repositories (newest archive, checkpoints excluded), Time Machine on
macOS (``tmutil latestbackup``; no destination configured is a failure) and plain
paths (newest file matching a glob). It keeps the newest backup's time, its age and
what was counted as evidence; the repository location is kept with any password in it
redacted. No source configured is a failure: no evidence of a backup is not evidence
of one.

``host.backup.restore_test`` passes for a source when its last restore or integrity
test succeeded and is younger than ``max_age_days``. The evidence is either a marker
file the operator's own restore test writes (``marker_file``: its mtime, and an optional
first line ``ok``/``failed``), or, for restic and borg, an integrity check the agent
runs itself (``restic check --read-data-subset``, ``borg check``) when the one it
remembers is older than ``rerun_after_days`` or failed, and remembers between runs. A
failed last test fails; no test ever fails; a test that could not run is ``error``. The
evidence keeps the test's time, method and verdict line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tillsyn.checks._format import age_text
from tillsyn.checks._result import TARGET, Resource, Result
from tillsyn.checks._spec import check
from tillsyn.collectors.errors import FactError
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.backup import redact_location
from tillsyn.collectors.host.backup_integrity import RestoreTest

#: How far in the future a backup may claim to be before the clocks are suspect.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class BackupSource:
    """Where one backup lands. Passwords come from a file or an environment variable."""

    name: str
    kind: Literal["restic", "borg", "path", "timemachine"]
    repository: str = ""  # restic/borg: repository location (path, sftp:, ssh://, rest: ...)
    password_file: str = ""  # restic/borg: file holding the repository password
    password_env: str = ""  # restic/borg: name of the environment variable holding it
    path: str = ""  # path: absolute glob of the backup files, e.g. /var/backups/db-*.gz
    #: restore_test: the file the operator's restore test writes (mtime = when it ran;
    #: optional first line "ok" or "failed"); preferred over the agent's own check.
    marker_file: str = ""

    def __post_init__(self) -> None:
        if self.kind in ("restic", "borg") and not self.repository:
            raise ValueError(f"a {self.kind} source needs 'repository'")
        if self.kind == "path" and not self.path.startswith("/"):
            raise ValueError("a path source needs an absolute 'path' glob")
        if self.password_file and self.password_env:
            raise ValueError("give password_file or password_env, not both")
        if self.marker_file and not self.marker_file.startswith("/"):
            raise ValueError("'marker_file' must be an absolute path")

    @property
    def location(self) -> str:
        if self.kind in ("restic", "borg"):
            return redact_location(self.repository)
        return "Time Machine" if self.kind == "timemachine" else self.path


@dataclass(frozen=True)
class RecencyParams:
    #: The recovery point objective: the newest backup may be at most this old.
    max_age_hours: float = 26.0
    sources: tuple[BackupSource, ...] = ()


def _newest(facts: HostFacts, source: BackupSource) -> tuple[datetime | None, dict[str, object]]:
    """When the newest backup of ``source`` completed, and what was seen (raises FactError)."""
    if source.kind == "restic":
        snapshots = facts.restic_snapshots(
            source.repository, source.password_file, source.password_env
        )
        if not snapshots:
            return None, {"snapshots": 0}
        newest = max(snapshots, key=lambda s: s.time)
        return newest.time, {
            "snapshots": len(snapshots),
            "newest_id": newest.id,
            "newest_hostname": newest.hostname,
        }
    if source.kind == "borg":
        archive = facts.borg_newest(source.repository, source.password_file, source.password_env)
        if archive is None:
            return None, {"archives": 0}
        return archive.time, {"newest_archive": archive.name, "encryption": archive.encryption}
    if source.kind == "timemachine":
        destinations = facts.timemachine_destinations()
        if not destinations:
            return None, {"destinations": 0, "reason": "no Time Machine destination is configured"}
        latest = facts.timemachine_latest()
        seen: dict[str, object] = {"destinations": [f"{d.name} ({d.kind})" for d in destinations]}
        if latest is None:
            return None, seen
        return latest.time, seen | {"newest_backup": latest.path}
    found = facts.newest_file(source.path)
    if found is None:
        return None, {"matched_files": 0}
    return found.modified_at, {"matched_files": found.matched, "newest_file": found.path}


@check(
    id="host.backup.recency",
    title="Newest backup is within the recovery point objective",
    target="host",
    controls=(
        "iso27001:2022/A.8.13",
        "nis2/4.2.1",
        "nis2/4.2.3",
        "nis2/4.2.6",
    ),
    severity="high",
    interval="1h",
    params=RecencyParams,
    facts=(
        "host.backup.restic_snapshots",
        "host.backup.borg_newest",
        "host.backup.timemachine_destinations",
        "host.backup.timemachine_latest",
        "host.backup.newest_file",
    ),
    needs=(
        "read access to each restic or borg repository (its password) or backup directory",
        "macOS: tmutil latestbackup needs Full Disk Access",
    ),
    remediation="Fix the backup job (see its unit or cron log) or configure the sources this "
    "host is backed up to under checks.host.backup.recency.params.sources.",
)
def recency(facts: HostFacts, p: RecencyParams) -> Iterator[Result]:
    expected = {"max_age_hours": p.max_age_hours}
    if not p.sources:
        yield Result.failed(
            TARGET, "no backup source is configured, so no backup is evidenced", expected=expected
        )
        return
    limit = timedelta(hours=p.max_age_hours)
    for source in p.sources:
        resource = Resource("backup_source", source.name)
        observed: dict[str, object] = {"kind": source.kind, "location": source.location}
        try:
            newest_at, seen = _newest(facts, source)
        except FactError as exc:
            yield Result.errored(
                resource,
                f"{source.name}: could not read backups: {exc}",
                observed=observed,
                expected=expected,
            )
            continue
        observed |= seen
        if newest_at is None:
            reason = str(seen.pop("reason", "")) or f"no backup found at {source.location}"
            yield Result.failed(
                resource,
                f"{source.name}: {reason}",
                observed=observed,
                expected=expected,
            )
            continue
        age = facts.now - newest_at
        observed |= {"newest_at": newest_at, "age_hours": round(age.total_seconds() / 3600, 2)}
        if age < -CLOCK_SKEW:
            yield Result.errored(
                resource,
                f"{source.name}: newest backup is {age_text(age)} in "
                "the future; the clocks disagree",
                observed=observed,
                expected=expected,
            )
            continue
        yield Result.judge(
            age <= limit,
            resource,
            f"{source.name}: newest backup is {age_text(age)} old (RPO {p.max_age_hours:g} h)",
            observed=observed,
            expected=expected,
        )


@dataclass(frozen=True)
class RestoreTestParams:
    #: The last successful restore or integrity test may be at most this old.
    max_age_days: float = 30.0
    #: The agent runs its own integrity check when the remembered one is older than this
    #: (or failed); keep it well under max_age_days so a due check has time to run.
    rerun_after_days: float = 7.0
    #: restic: how much of the data to read and decrypt (a partial restore): "1%", "5G"...
    restic_read_data_subset: str = "1%"
    #: borg: decrypt and verify every chunk (--verify-data) instead of segment CRCs only.
    borg_verify_data: bool = False
    #: Integrity checks read the repository and run far longer than a metadata query.
    check_timeout_minutes: float = 120.0
    sources: tuple[BackupSource, ...] = ()

    def __post_init__(self) -> None:
        if self.rerun_after_days >= self.max_age_days:
            raise ValueError("rerun_after_days must be shorter than max_age_days")


def _last_test(facts: HostFacts, source: BackupSource, p: RestoreTestParams) -> RestoreTest | None:
    """The last restore or integrity test of ``source`` (raises FactError)."""
    if source.marker_file:
        return facts.restore_marker(source.marker_file)
    return facts.restore_test(
        source.name,
        source.kind,
        source.repository,
        source.password_file,
        source.password_env,
        p.rerun_after_days * 24,
        p.restic_read_data_subset,
        p.borg_verify_data,
        p.check_timeout_minutes * 60,
    )


@check(
    id="host.backup.restore_test",
    title="Backups were restore- or integrity-tested recently and the test passed",
    target="host",
    controls=(
        "iso27001:2022/A.8.13",
        "nis2/4.2.3",
        "nis2/4.2.6",
        "nis2/4.2.1",
    ),
    severity="high",
    interval="1d",
    params=RestoreTestParams,
    facts=("host.backup.restore_test", "host.backup.restore_marker"),
    needs=(
        "read access to each restic or borg repository (its password), and the right to "
        "take its lock for the duration of a check; or read access to each marker file",
    ),
    remediation="Run a restore test (restic check --read-data-subset, borg check "
    "--verify-data, or a real restore) and have it write the source's marker_file; repair "
    "a damaged repository (restic repair / borg check --repair) and take a fresh backup.",
)
def restore_test(facts: HostFacts, p: RestoreTestParams) -> Iterator[Result]:
    expected = {"max_age_days": p.max_age_days, "outcome": "ok"}
    if not p.sources:
        yield Result.failed(
            TARGET,
            "no backup source is configured, so no restore test is evidenced",
            expected=expected,
        )
        return
    limit = timedelta(days=p.max_age_days)
    for source in p.sources:
        resource = Resource("backup_source", source.name)
        observed: dict[str, object] = {"kind": source.kind, "location": source.location}
        if not source.marker_file and source.kind not in ("restic", "borg"):
            yield Result.failed(
                resource,
                f"{source.name}: no restore test is evidenced: a {source.kind} source needs "
                "a marker_file written by its restore test",
                observed=observed,
                expected=expected,
            )
            continue
        try:
            test = _last_test(facts, source, p)
        except FactError as exc:
            yield Result.errored(
                resource,
                f"{source.name}: could not run or read the restore test: {exc}",
                observed=observed,
                expected=expected,
            )
            continue
        if test is None:
            yield Result.failed(
                resource,
                f"{source.name}: no restore test was ever recorded ({source.marker_file} "
                "does not exist)",
                observed=observed,
                expected=expected,
            )
            continue
        age = facts.now - test.at
        observed |= {
            "tested_at": test.at,
            "age_days": round(age.total_seconds() / 86400, 2),
            "method": test.method,
            "outcome": "ok" if test.ok else "failed",
            "detail": test.detail,
            "exit_status": test.returncode,
            "ran_this_run": test.ran_now,
        }
        if not test.ok:
            yield Result.failed(
                resource,
                f"{source.name}: the last restore test ({age_text(age)} ago) failed: "
                f"{test.detail or 'marked failed'}",
                observed=observed,
                expected=expected,
            )
        elif age < -CLOCK_SKEW:
            yield Result.errored(
                resource,
                f"{source.name}: the last restore test is {age_text(age)} in the future; "
                "the clocks disagree",
                observed=observed,
                expected=expected,
            )
        else:
            yield Result.judge(
                age <= limit,
                resource,
                f"{source.name}: the last restore test passed {age_text(age)} ago "
                f"(limit {p.max_age_days:g} d)",
                observed=observed,
                expected=expected,
            )
