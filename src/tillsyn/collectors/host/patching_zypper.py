"""Parsing ``zypper list-patches``: the table of needed patches, and what its exit says.

zypper exits 0 (or 100/101 when patches, or security patches, are needed) and 106 when
it skipped repositories it could not read: those patches are unseen, so that is an
error, as is "No repositories defined", never "no updates found".
"""

from __future__ import annotations

from tillsyn.collectors.errors import FactParseError, FactUnavailable
from tillsyn.collectors.host.patching_model import PendingUpdate

PENDING_FACT = "host.patch.pending_security_updates"

#: zypper's exit codes this parser understands (zypper(8), EXIT CODES).
OK_CODES = (0, 100, 101, 106)
_INFO = (
    "Loading repository data",
    "Reading installed packages",
    "No updates found",
    "Found ",
    "Needed software management updates",
    "The following updates are also available",
    "Refreshing service",
    "Retrieving repository",
    "Building repository",
)


def parse_list_patches(
    stdout: str, stderr: str, returncode: int, call: str
) -> tuple[PendingUpdate, ...]:
    if returncode == 106:
        reason = next((ln for ln in stderr.splitlines() if ln.strip()), "no detail")
        raise FactUnavailable(
            PENDING_FACT, call, f"zypper skipped repositories it could not read: {reason}"
        )
    if "No repositories defined" in stdout:
        raise FactUnavailable(
            PENDING_FACT, call, "zypper has no repositories, so no update can be seen"
        )
    patches: list[PendingUpdate] = []
    header_seen = False
    for line in stdout.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(_INFO) or stripped.startswith("Warning: "):
            continue
        if set(stripped) <= set("-+"):
            continue  # the rule under the header
        if "|" not in line:
            if stripped[0].isdigit() and "patch" in stripped:
                continue  # "3 patches needed (2 security patches)"
            raise FactParseError(PENDING_FACT, call, "unexpected line", line)
        cells = [c.strip() for c in line.split("|", 6)]
        if cells[0] == "Repository":
            if cells[:6] != ["Repository", "Name", "Category", "Severity", "Interactive", "Status"]:
                raise FactParseError(PENDING_FACT, call, "unknown table layout", line)
            header_seen = True
            continue
        if not header_seen or len(cells) != 7:
            raise FactParseError(PENDING_FACT, call, "table row without the known header", line)
        repo, name, category, severity, _interactive, status, _summary = cells
        if category != "security" or status not in ("needed", "applied", "not needed"):
            if category == "security":
                raise FactParseError(PENDING_FACT, call, f"unknown patch status {status!r}", line)
            continue
        if status == "needed":
            patches.append(
                PendingUpdate(
                    package=name,
                    candidate=None,
                    origins=(repo,),
                    advisories=(name,),
                    severity=severity.lower() if severity not in ("", "unspecified") else None,
                )
            )
    if returncode in (100, 101) and not patches and not header_seen:
        raise FactParseError(PENDING_FACT, call, f"exit {returncode} but no patch table", stdout)
    return tuple(patches)
