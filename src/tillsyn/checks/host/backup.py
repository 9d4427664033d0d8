"""Backups of this host's data.

``host.backup.recency`` passes for a configured source when its newest completed backup
is younger than the RPO (``max_age_hours``). It keeps the newest backup's time, its
age and how many backups exist as evidence; the repository location is kept with any
password in it redacted. No source configured is a failure: no evidence of a backup is
not evidence of one.
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

#: How far in the future a backup may claim to be before the clocks are suspect.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class BackupSource:
    """Where one backup lands. Passwords come from a file or an environment variable."""

    name: str
    kind: Literal["restic", "path"]
    repository: str = ""  # restic: repository location (path, sftp:, rest:, s3: ...)
    password_file: str = ""  # restic: file holding the repository password
    password_env: str = ""  # restic: name of the environment variable holding it
    path: str = ""  # path: absolute glob of the backup files, e.g. /var/backups/db-*.gz

    def __post_init__(self) -> None:
        if self.kind == "restic" and not self.repository:
            raise ValueError("a restic source needs 'repository'")
        if self.kind == "path" and not self.path.startswith("/"):
            raise ValueError("a path source needs an absolute 'path' glob")
        if self.password_file and self.password_env:
            raise ValueError("give password_file or password_env, not both")

    @property
    def location(self) -> str:
        return redact_location(self.repository) if self.kind == "restic" else self.path


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
    found = facts.newest_file(source.path)
    if found is None:
        return None, {"matched_files": 0}
    return found.modified_at, {"matched_files": found.matched, "newest_file": found.path}


@check(
    id="host.backup.recency",
    title="Newest backup is within the recovery point objective",
    target="host",
    controls=("iso27001:2022/A.8.13", "nis2/4.2.1"),
    severity="high",
    interval="1h",
    params=RecencyParams,
    facts=("host.backup.restic_snapshots", "host.backup.newest_file"),
    needs=("read access to each restic repository (its password) or backup directory",),
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
            yield Result.failed(
                resource,
                f"{source.name}: no backup found at {source.location}",
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
