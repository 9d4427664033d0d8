"""Parsing dnf and yum: check-update, updateinfo, needs-restarting, dnf-automatic's config.

``dnf -C`` reads only the metadata cache. A repository without a cache is silently
skipped ("Ignoring repositories: ..." on stderr, exit 0): that would read as "nothing
pending", so it is an error here. ``-q`` is not used for check-update because it hides
both that warning and the "Last metadata expiration check" line that dates the cache.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError, FactUnavailable
from tillsyn.collectors.host.patching_model import PendingUpdate

PENDING_FACT = "host.patch.pending_security_updates"

_PACKAGE = re.compile(r"^(?P<name>\S+)\.(?P<arch>[^.\s]+)\s+(?P<version>\S+)\s+(?P<repo>\S+)$")
_EXPIRATION = re.compile(
    r"^Last metadata expiration check: (?:(?P<days>\d+) days?, )?"
    r"(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d) ago on .*\.$"
)
_IGNORED = re.compile(r"^Ignoring repositories: (?P<repos>.+)$", re.MULTILINE)


@dataclass(frozen=True)
class CheckUpdate:
    """Packages ``check-update --security`` lists, and the cache age it printed."""

    packages: tuple[PendingUpdate, ...]
    metadata_age_seconds: float | None


def refuse_ignored_repositories(stderr: str, call: str) -> None:
    """dnf -C skips repositories it has no cache for; their updates would go unseen."""
    if match := _IGNORED.search(stderr):
        raise FactUnavailable(
            PENDING_FACT,
            call,
            f"dnf skipped repositories without a metadata cache ({match['repos'].strip()}); "
            "their updates cannot be seen until 'dnf makecache' runs",
        )


def parse_check_update(stdout: str, returncode: int, call: str) -> CheckUpdate:
    """``dnf -C check-update --security``: exit 100 with a list, or 0 with none."""
    age: float | None = None
    lines = stdout.splitlines()
    joined: list[str] = []
    for index, line in enumerate(lines):
        # dnf wraps a long name.arch onto its own line; the rest follows indented.
        if joined and joined[-1].endswith("\x00"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
            continue
        stripped = line.strip()
        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if len(stripped.split()) == 1 and "." in stripped and next_line.startswith(" "):
            joined.append(stripped + "\x00")
            continue
        joined.append(line)
    packages: list[PendingUpdate] = []
    obsoleting = False
    for line in joined:
        if not line.strip():
            continue
        if match := _EXPIRATION.match(line):
            age = (
                int(match["days"] or 0) * 86400
                + int(match["h"]) * 3600
                + int(match["m"]) * 60
                + int(match["s"])
            )
            continue
        if line.startswith("Security: "):
            continue  # "... is an installed security update" notes
        if line.strip() == "Obsoleting Packages":
            obsoleting = True
            continue
        if obsoleting:
            continue  # pairs of obsoleting/obsoleted packages, already listed above
        match = _PACKAGE.match(line)
        if match is None:
            raise FactParseError(PENDING_FACT, call, "unexpected check-update line", line)
        packages.append(
            PendingUpdate(
                package=match["name"],
                arch=match["arch"],
                candidate=match["version"],
                origins=(match["repo"],),
            )
        )
    if returncode == 100 and not packages:
        raise FactParseError(
            PENDING_FACT, call, "exit 100 (updates pending) but no package listed", stdout
        )
    if returncode == 0 and packages:
        raise FactParseError(
            PENDING_FACT, call, "exit 0 (nothing pending) but packages listed", stdout
        )
    return CheckUpdate(tuple(packages), age)


_ADVISORY = re.compile(r"^\s*(?P<id>\S+)\s+(?P<severity>[A-Za-z]+)/Sec\.\s+(?P<nevra>\S+)\s*$")
_NEVRA = re.compile(r"^(?P<name>.+)-(?P<evr>(?:\d+:)?[^-]+-[^-]+)\.(?P<arch>[^.]+)$")


def parse_updateinfo(stdout: str, call: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """``dnf -C -q updateinfo list --security``: (name, arch) -> [(advisory, severity)].

    Severity is lower-cased; Fedora's updates without one say ``Unknown`` or ``None``.
    """
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for line in stdout.splitlines():
        if not line.strip() or _EXPIRATION.match(line):
            continue
        match = _ADVISORY.match(line)
        nevra = _NEVRA.match(match["nevra"]) if match else None
        if match is None or nevra is None:
            raise FactParseError(PENDING_FACT, call, "unexpected updateinfo line", line)
        found.setdefault((nevra["name"], nevra["arch"]), []).append(
            (match["id"], match["severity"].lower())
        )
    return found


#: Severities the check can hold to their own SLA; anything else has none.
SEVERITY_ORDER = ("critical", "important", "moderate", "low")


def highest_severity(severities: list[str]) -> str | None:
    ranked = [s for s in SEVERITY_ORDER if s in severities]
    return ranked[0] if ranked else None


def parse_needs_restarting(stdout: str, returncode: int, call: str) -> tuple[bool, tuple[str, ...]]:
    """``needs-restarting -r``: exit 1 means reboot needed; the listed items say why."""
    fact = "host.patch.reboot_required"
    text = stdout.strip()
    if returncode == 0 and "Reboot should not be necessary" in text:
        return False, ()
    if returncode == 1 and "Reboot is required" in text:
        reasons = tuple(
            line.strip()[2:].strip() for line in text.splitlines() if line.strip().startswith("* ")
        )
        return True, reasons
    raise FactParseError(fact, call, f"unexpected answer (exit {returncode})", text)


_TRUE = {"yes", "true", "1", "on"}
_FALSE = {"no", "false", "0", "off"}


def parse_automatic_conf(text: str, path: str) -> dict[str, str]:
    """The [commands] settings of /etc/dnf/automatic.conf that decide what gets applied."""
    fact = "host.patch.auto_updates"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise FactParseError(fact, path, "not an ini file", str(exc)) from exc
    section = parser["commands"] if parser.has_section("commands") else {}
    apply = str(section.get("apply_updates", "no")).strip().lower()
    if apply not in _TRUE | _FALSE:
        raise FactParseError(fact, path, "unreadable apply_updates", apply)
    return {
        "apply_updates": "yes" if apply in _TRUE else "no",
        "upgrade_type": str(section.get("upgrade_type", "default")).strip(),
    }
