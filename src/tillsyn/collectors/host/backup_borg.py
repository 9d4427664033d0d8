"""borg facts: the newest archive of a borg repository.

``borg list --json --last 1 REPO`` names the newest archive with its start time. Borg 1.x
writes archive times as ISO 8601 *local* time without a zone ("Dates are formatted
according to ISO 8601 in local time. No explicit time zone is specified at this time",
borg's JSON documentation); borg 2 adds the offset. The collector runs borg with
``TZ=UTC``, so a time without a zone is UTC by construction, and a time with one is
converted. Checkpoint archives (interrupted backups) are left out by borg itself.

The passphrase reaches borg through its environment only: ``BORG_PASSCOMMAND`` reading
the configured file (borg runs the command itself, so the secret never enters this
process), or ``BORG_PASSPHRASE`` copied from a named variable. It is never on the
command line, in a fact, an error or evidence.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from tillsyn.collectors.errors import FactParseError, FactUnavailable
from tillsyn.collectors.parsing import load_json

#: The agent reads metadata only; it usually runs as another user than the backup job,
#: for which every repository is "previously unknown" and borg would stop to ask.
BORG_READ_ENV = {
    "TZ": "UTC",
    "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
    "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
}


@dataclass(frozen=True)
class BorgArchive:
    """The newest archive of a repository and what borg said about the repository."""

    name: str
    time: datetime
    encryption: str = ""


def borg_env(
    fact_name: str, env: dict[str, str], password_file: str, password_env: str
) -> dict[str, str]:
    """The environment borg needs for one repository (passphrase source included)."""
    out = dict(BORG_READ_ENV)
    if password_file:
        out["BORG_PASSCOMMAND"] = f"cat {shlex.quote(password_file)}"
    elif password_env:
        if password_env not in env:
            raise FactUnavailable(
                fact_name,
                f"${password_env}",
                "the environment variable holding the passphrase is not set",
            )
        out["BORG_PASSPHRASE"] = env[password_env]
    return out


def parse_borg_time(text: str) -> datetime:
    """A borg archive time: zone-less means UTC (borg ran with TZ=UTC)."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_borg_list(stdout: str, call: str) -> BorgArchive | None:
    """Strict parse of ``borg list --json``: the newest archive, or None when there is none."""
    fact = "host.backup.borg_newest"
    data = load_json(fact, call, stdout)
    if not isinstance(data, dict) or not isinstance(data.get("archives"), list):
        raise FactParseError(fact, call, "expected an object with an 'archives' list", stdout)
    encryption = data.get("encryption")
    mode = str(encryption.get("mode", "")) if isinstance(encryption, dict) else ""
    newest: BorgArchive | None = None
    for index, item in enumerate(data["archives"]):
        stamp = item.get("start") or item.get("time") if isinstance(item, dict) else None
        if not isinstance(stamp, str):
            raise FactParseError(
                fact, call, f"archive {index} has no 'start' or 'time'", json.dumps(item)[:120]
            )
        try:
            when = parse_borg_time(stamp)
        except ValueError as exc:
            raise FactParseError(fact, call, f"archive {index}: {exc}", stamp) from exc
        if newest is None or when > newest.time:
            newest = BorgArchive(str(item.get("name") or item.get("archive", "")), when, mode)
    return newest
