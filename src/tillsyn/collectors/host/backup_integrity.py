"""Restore and integrity tests of backups: run by the agent and remembered, or marked.

Two kinds of evidence say a backup can be restored:

* an integrity check the agent runs itself and remembers in its memory (namespace
  ``backup.restore_test``, key = source name): ``restic check --read-data-subset=N``
  reads and decrypts a random subset of the data packs, i.e. a partial restore (plain
  ``restic check`` only checks the structure); ``borg check --repository-only`` reads
  every segment and verifies its CRC, ``--verify-data`` decrypts and verifies every
  chunk too. Both are slow and take the repository's exclusive lock (a concurrent prune
  would make ``restic check --no-lock`` report errors that are not there), so the agent
  runs one only when the remembered one is older than ``rerun_after`` (or failed);
* a marker file the operator's own restore test writes: its modification time is the
  test's time, and its optional first line ``ok`` or ``failed`` the outcome (an empty
  file means the test script only touches it on success).

A test that ran and found damage is a *failed test* (a fact, with the tool's own
words); a test that could not run (tool missing, wrong password, lock held, timeout)
raises a FactError, and nothing is remembered for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tillsyn.collectors.errors import FactCommandFailed, FactParseError, FactPermissionDenied
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.backup_borg import borg_env

#: Memory namespace of the remembered tests.
MEMORY_NAMESPACE = "backup.restore_test"
#: What the tools print when the check ran and found damage (restic 0.14+, borg 1.2).
RESTIC_DAMAGE = "Fatal: repository contains errors"
BORG_DAMAGE = ("errors found", "problems found")


@dataclass(frozen=True)
class RestoreTest:
    """The last restore or integrity test of one source."""

    at: datetime
    ok: bool
    method: str  # the command line without secrets, or "marker file /path"
    detail: str = ""  # the tool's verdict line, or the marker's first line
    returncode: int | None = None
    ran_now: bool = False  # the agent ran it during this run

    def as_memory(self, location: str) -> dict[str, Any]:
        return {
            "at": self.at.astimezone(UTC).isoformat(),
            "ok": self.ok,
            "method": self.method,
            "detail": self.detail,
            "returncode": self.returncode,
            "location": location,
        }


def remembered(value: Any, location: str, method: str) -> RestoreTest | None:
    """A remembered test, if it is about the same repository with the same method."""
    if not isinstance(value, dict) or value.get("location") != location:
        return None
    if value.get("method") != method:
        return None
    return RestoreTest(
        datetime.fromisoformat(str(value["at"])),
        bool(value["ok"]),
        method,
        str(value.get("detail", "")),
        value.get("returncode"),
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def judge_restic_check(
    returncode: int, stdout: str, stderr: str, fact: str, argv: list[str]
) -> tuple[bool, str]:
    """(ok, detail) of a finished ``restic check``; raises when it could not run."""
    if returncode == 0:
        return True, _last_line(stdout) or "no errors were found"
    if RESTIC_DAMAGE in stderr:
        damage = [line for line in stderr.splitlines() if line.strip() and "Fatal:" not in line]
        return False, "; ".join([RESTIC_DAMAGE, *damage[:2]])[:300]
    raise FactCommandFailed(fact, argv, returncode, stderr)


def judge_borg_check(returncode: int, stderr: str, fact: str, argv: list[str]) -> tuple[bool, str]:
    """(ok, detail) of a finished ``borg check``; raises when it could not run."""
    if returncode == 0:
        return True, _last_line(stderr) or "no problems found"
    if returncode == 1 and any(words in stderr for words in BORG_DAMAGE):
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        verdict = next(line for line in lines if any(words in line for words in BORG_DAMAGE))
        return False, "; ".join(dict.fromkeys([lines[0], verdict]))[:300]
    raise FactCommandFailed(fact, argv, returncode, stderr)


def read_marker(host: HostBase, path: str) -> RestoreTest | None:
    """The operator's restore-test marker, or None when it was never written."""
    fact = "host.backup.restore_marker"
    target = host.path(path)
    try:
        stat = target.stat()
        with target.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline().strip()
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise FactPermissionDenied(fact, path, "permission denied") from exc
    if first.lower() not in ("", "ok", "failed"):
        raise FactParseError(fact, path, "first line must be 'ok', 'failed' or nothing", first)
    when = datetime.fromtimestamp(stat.st_mtime, UTC)
    return RestoreTest(when, first.lower() != "failed", f"marker file {path}", first)


class IntegrityRunner:
    """Runs one integrity check with a long timeout; the caller remembers the outcome."""

    def __init__(self, host: HostBase, timeout: float) -> None:
        self.host = host
        self.timeout = timeout

    def restic(
        self, repository: str, shown_repo: str, env: dict[str, str], subset: str
    ) -> RestoreTest:
        fact = "host.backup.restore_test"
        argv = ["restic", "check", f"--read-data-subset={subset}", "--repo", repository]
        shown = [*argv[:-1], shown_repo]
        started = self.host.now
        result = self.host.command(
            fact, argv, env=env, timeout=self.timeout, shown=" ".join(shown), check=False
        )
        stderr = result.stderr.replace(repository, shown_repo)
        ok, detail = judge_restic_check(result.returncode, result.stdout, stderr, fact, shown)
        return RestoreTest(started, ok, " ".join(shown), detail, result.returncode, ran_now=True)

    def borg(
        self, repository: str, shown_repo: str, env: dict[str, str], verify_data: bool
    ) -> RestoreTest:
        fact = "host.backup.restore_test"
        mode = ["--verify-data"] if verify_data else ["--repository-only"]
        argv = ["borg", "check", *mode, repository]
        shown = [*argv[:-1], shown_repo]
        started = self.host.now
        result = self.host.command(
            fact, argv, env=env, timeout=self.timeout, shown=" ".join(shown), check=False
        )
        stderr = result.stderr.replace(repository, shown_repo)
        ok, detail = judge_borg_check(result.returncode, stderr, fact, shown)
        return RestoreTest(started, ok, " ".join(shown), detail, result.returncode, ran_now=True)


def is_due(last: RestoreTest | None, now: datetime, rerun_after: timedelta) -> bool:
    """Run a new check when none is remembered, the last failed, or it is old enough."""
    return last is None or not last.ok or now - last.at >= rerun_after


__all__ = [
    "MEMORY_NAMESPACE",
    "IntegrityRunner",
    "RestoreTest",
    "borg_env",
    "is_due",
    "read_marker",
    "remembered",
]
