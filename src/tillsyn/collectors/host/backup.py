"""Backup facts: restic snapshot lists, borg archives, Time Machine, the newest file
matching a glob, and restore/integrity tests (see :mod:`.backup_integrity`).

Repository passwords reach restic through its environment (``RESTIC_PASSWORD_FILE``
or ``RESTIC_PASSWORD`` copied from a named variable), never its command line, and
never appear in a fact, an error or evidence. Repository locations can carry
credentials (``rest:https://user:secret@host/``), so they are shown redacted.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tillsyn.collectors._facts import fact
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host._base import MACOS, HostBase
from tillsyn.collectors.host.backup_borg import BorgArchive, borg_env, parse_borg_list
from tillsyn.collectors.host.backup_integrity import (
    MEMORY_NAMESPACE,
    IntegrityRunner,
    RestoreTest,
    is_due,
    read_marker,
    remembered,
)
from tillsyn.collectors.parsing import load_json

# macOS modules are imported where used, so a Linux agent never loads them.
if TYPE_CHECKING:
    from tillsyn.collectors.host.backup_timemachine import TimeMachineDestination, TimeMachineLatest


@dataclass(frozen=True)
class Snapshot:
    """One backup that completed: when, and what it was called."""

    id: str
    time: datetime
    hostname: str = ""
    paths: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewestFile:
    """The most recently modified file matching a glob, and how many matched."""

    path: str
    modified_at: datetime
    matched: int


_URL_PASSWORD = re.compile(r"(://[^/@:\s]*):[^@/\s]*@")


def redact_location(location: str) -> str:
    """A repository location with any URL password replaced by ``***``.

    ``rest:https://user:secret@host:8000/repo`` becomes ``rest:https://user:***@host:8000/repo``.
    """
    return _URL_PASSWORD.sub(r"\1:***@", location)


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 with up to nanoseconds (restic and Go write nine digits) as aware UTC."""
    value = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return value.astimezone(UTC)


def parse_restic_snapshots(stdout: str, call: str) -> tuple[Snapshot, ...]:
    """Strict parse of ``restic snapshots --json``: a JSON array of snapshot objects."""
    fact = "host.backup.restic_snapshots"
    data = load_json(fact, call, stdout)
    if not isinstance(data, list):
        raise FactParseError(fact, call, "expected a JSON array of snapshots", stdout)
    snapshots: list[Snapshot] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("time"), str):
            raise FactParseError(
                fact, call, f"snapshot {index} has no 'time' string", json.dumps(item)[:120]
            )
        try:
            when = parse_timestamp(item["time"])
        except ValueError as exc:
            raise FactParseError(fact, call, f"snapshot {index}: {exc}", item["time"]) from exc
        snapshots.append(
            Snapshot(
                id=str(item.get("short_id") or item.get("id", ""))[:16],
                time=when,
                hostname=str(item.get("hostname", "")),
                paths=tuple(str(p) for p in item.get("paths") or ()),
                tags=tuple(str(t) for t in item.get("tags") or ()),
            )
        )
    return tuple(snapshots)


_GLOB_MAGIC = re.compile(r"[*?\[]")


def newest_matching_file(root: Path, pattern: str) -> NewestFile | None:
    """The newest regular file matching ``pattern`` (``**`` allowed) under ``root``.

    Python's glob silently yields nothing for a directory it may not read; that would
    turn "could not look" into "no backup", so the fixed directory the pattern starts
    from is opened first and a denial is raised.
    """
    fact = "host.backup.newest_file"
    if not pattern.startswith("/"):
        raise FactUnavailable(fact, pattern, "the path pattern must be absolute")
    fixed_parts: list[str] = []
    for part in pattern.split("/")[1:-1]:
        if _GLOB_MAGIC.search(part):
            break
        fixed_parts.append(part)
    base = root.joinpath(*fixed_parts) if fixed_parts else root
    try:
        with os.scandir(base):
            pass
    except PermissionError as exc:
        raise FactPermissionDenied(fact, str(base), "permission denied") from exc
    except FileNotFoundError as exc:
        raise FactUnavailable(
            fact, "/" + "/".join(fixed_parts), "directory does not exist"
        ) from exc
    except NotADirectoryError as exc:
        raise FactUnavailable(fact, "/" + "/".join(fixed_parts), "not a directory") from exc
    newest: tuple[float, str] | None = None
    matched = 0
    for found in glob.iglob(str(root) + pattern if str(root) != "/" else pattern, recursive=True):
        try:
            stat = os.stat(found)
        except PermissionError as exc:
            raise FactPermissionDenied(fact, found, "permission denied") from exc
        except FileNotFoundError:  # removed while we looked (rotation): not a match
            continue
        if not os.path.isfile(found):
            continue
        matched += 1
        if newest is None or stat.st_mtime > newest[0]:
            newest = (stat.st_mtime, found)
    if newest is None:
        return None
    shown = newest[1] if str(root) == "/" else "/" + os.path.relpath(newest[1], root)
    return NewestFile(shown, datetime.fromtimestamp(newest[0], UTC), matched)


class BackupFacts(HostBase):
    def _restic_env(
        self, fact_name: str, repository: str, password_file: str, password_env: str
    ) -> dict[str, str]:
        """restic's password source as environment variables (never the command line)."""
        env: dict[str, str] = {}
        if password_file:
            env["RESTIC_PASSWORD_FILE"] = password_file
        elif password_env:
            if password_env not in self.env:
                raise FactUnavailable(
                    fact_name,
                    f"${password_env}",
                    "the environment variable holding the password is not set",
                )
            env["RESTIC_PASSWORD"] = self.env[password_env]
        elif not (
            {"RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND"} & self.env.keys()
        ):
            raise FactUnavailable(
                fact_name,
                redact_location(repository),
                "no password source: set password_file or password_env",
            )
        return env

    @fact("host.backup.restic_snapshots")
    def restic_snapshots(
        self, repository: str, password_file: str = "", password_env: str = ""
    ) -> tuple[Snapshot, ...]:
        """Snapshots in a restic repository, read without taking a lock."""
        fact_name = "host.backup.restic_snapshots"
        env = self._restic_env(fact_name, repository, password_file, password_env)
        argv = ["restic", "snapshots", "--json", "--no-lock", "--repo", repository]
        shown = " ".join([*argv[:-1], redact_location(repository)])
        try:
            result = self.command(fact_name, argv, env=env, shown=shown)
        except FactCommandFailed as exc:
            stderr = exc.stderr.replace(repository, redact_location(repository))
            raise FactCommandFailed(fact_name, shown.split(" "), exc.returncode, stderr) from None
        return parse_restic_snapshots(result.stdout, shown)

    @fact("host.backup.newest_file")
    def newest_file(self, pattern: str) -> NewestFile | None:
        """Newest file matching an absolute glob, or None when nothing matches."""
        return newest_matching_file(self.root, pattern)

    @fact("host.backup.borg_newest")
    def borg_newest(
        self, repository: str, password_file: str = "", password_env: str = ""
    ) -> BorgArchive | None:
        """The newest archive of a borg repository, or None when it holds none."""
        fact_name = "host.backup.borg_newest"
        shown_repo = redact_location(repository)
        env = borg_env(fact_name, self.env, password_file, password_env)
        argv = ["borg", "list", "--json", "--last", "1", repository]
        shown = " ".join([*argv[:-1], shown_repo])
        try:
            result = self.command(fact_name, argv, env=env, shown=shown)
        except FactCommandFailed as exc:
            stderr = exc.stderr.replace(repository, shown_repo)
            raise FactCommandFailed(fact_name, shown.split(" "), exc.returncode, stderr) from None
        return parse_borg_list(result.stdout, shown)

    @fact("host.backup.timemachine_destinations")
    def timemachine_destinations(self) -> tuple[TimeMachineDestination, ...]:
        """Time Machine destinations configured on this Mac (none is an empty tuple)."""
        from tillsyn.collectors.host.backup_timemachine import (
            DESTINATIONINFO_ARGV,
            parse_destinationinfo,
        )

        fact_name = "host.backup.timemachine_destinations"
        self.require_platform(fact_name, MACOS)
        result = self.command(fact_name, DESTINATIONINFO_ARGV)
        return parse_destinationinfo(result.stdout, result.stderr, " ".join(DESTINATIONINFO_ARGV))

    @fact("host.backup.timemachine_latest")
    def timemachine_latest(self) -> TimeMachineLatest | None:
        """The newest completed Time Machine backup, or None when there is none yet."""
        from tillsyn.collectors.host.backup_timemachine import (
            LATESTBACKUP_ARGV,
            local_zone,
            parse_latestbackup,
        )

        fact_name = "host.backup.timemachine_latest"
        self.require_platform(fact_name, MACOS)
        result = self.command(fact_name, LATESTBACKUP_ARGV)
        return parse_latestbackup(result.stdout, local_zone(self.env), " ".join(LATESTBACKUP_ARGV))

    @fact("host.backup.restore_marker")
    def restore_marker(self, path: str) -> RestoreTest | None:
        """The restore-test marker file an operator's test writes, or None when absent."""
        return read_marker(self, path)

    @fact("host.backup.restore_test")
    def restore_test(
        self,
        name: str,
        kind: str,
        repository: str,
        password_file: str = "",
        password_env: str = "",
        rerun_after_hours: float = 168.0,
        restic_subset: str = "1%",
        borg_verify_data: bool = False,
        timeout_seconds: float = 7200.0,
    ) -> RestoreTest:
        """The last integrity check of a restic or borg repository, run now when due.

        The remembered check is reported unless it is older than ``rerun_after_hours``
        or failed; then the check runs (with its own timeout) and its outcome is
        remembered. A check that could not run raises and is not remembered.
        """
        fact_name = "host.backup.restore_test"
        shown_repo = redact_location(repository)
        runner = IntegrityRunner(self, timeout_seconds)
        if kind == "restic":
            method = f"restic check --read-data-subset={restic_subset} --repo {shown_repo}"
        elif kind == "borg":
            mode = "--verify-data" if borg_verify_data else "--repository-only"
            method = f"borg check {mode} {shown_repo}"
        else:
            raise FactUnavailable(fact_name, name, f"no integrity check for {kind} sources")
        stored = self.memory.get(MEMORY_NAMESPACE, name)
        last = remembered(stored[0], shown_repo, method) if stored else None
        if last is not None and not is_due(last, self.now, timedelta(hours=rerun_after_hours)):
            return last
        if kind == "restic":
            env = self._restic_env(fact_name, repository, password_file, password_env)
            test = runner.restic(repository, shown_repo, env, restic_subset)
        else:
            env = borg_env(fact_name, self.env, password_file, password_env)
            test = runner.borg(repository, shown_repo, env, borg_verify_data)
        self.memory.put(MEMORY_NAMESPACE, name, test.as_memory(shown_repo), self.now)
        return test
