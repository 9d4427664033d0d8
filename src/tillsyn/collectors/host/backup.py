"""Backup facts: restic snapshot lists and the newest file matching a glob.

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
from datetime import UTC, datetime
from pathlib import Path

from tillsyn.collectors._facts import fact
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host._base import HostBase


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
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise FactParseError(
            fact,
            call,
            f"output is not JSON ({exc.msg} at char {exc.pos})",
            stdout[max(0, exc.pos - 40) : exc.pos + 40],
        ) from exc
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
    @fact("host.backup.restic_snapshots")
    def restic_snapshots(
        self, repository: str, password_file: str = "", password_env: str = ""
    ) -> tuple[Snapshot, ...]:
        """Snapshots in a restic repository, read without taking a lock."""
        fact_name = "host.backup.restic_snapshots"
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
