"""Parsing apt's answers: the upgrade simulation, Release headers and ``apt-config dump``.

Everything here is read without root and without refreshing any index: the simulation
runs with ``Debug::NoLocking=1`` and only reads the lists apt already has, which is why
their age (the signed ``Date`` of the newest Release file) is part of the evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host.patching_model import PendingUpdate, ReleaseFile

PENDING_FACT = "host.patch.pending_security_updates"

#: ``Inst pkg [old] (new Label:Version/Suite, Label:Version/Suite [arch]) [trailer]``
_INST = re.compile(
    r"^Inst (?P<package>\S+)(?: \[(?P<installed>[^\]]+)\])? "
    r"\((?P<candidate>\S+) (?P<origins>.*?) ?\[(?P<arch>[^\]\s]+)\]\)(?: .*)?$"
)
_SUMMARY = re.compile(
    r"^(?P<upgraded>\d+) upgraded, (?P<new>\d+) newly installed, "
    r"(?P<remove>\d+) to remove and (?P<kept>\d+) not upgraded\.$"
)
#: Lines of the simulation that carry no package decision.
_NOISE = (
    "NOTE: This is only a simulation!",
    "apt-get needs root privileges",
    "Keep also in mind that locking",
    "so don't depend on the relevance",
    "Reading package lists",
    "Building dependency tree",
    "Reading state information",
    "Calculating upgrade",
    "The following ",
    "  ",
    "Conf ",
    "Remv ",
    "Purg ",
    "Inst ",
    "0 upgraded",
    "W: ",
    "N: ",
)


def is_security_origin(origin: str) -> bool:
    """``Debian-Security:12/oldstable-security`` or ``Ubuntu:22.04/jammy-security``.

    apt writes each origin as ``Label:Version/Suite``; a security update is one whose
    suite ends in ``-security`` (Debian 10 and older used label ``Debian-Security``
    with suite ``oldstable``, which counts too).
    """
    label, _, rest = origin.partition(":")
    suite = rest.rsplit("/", 1)[-1] if rest else label
    return suite.endswith("-security") or label == "Debian-Security"


def parse_apt_simulation(stdout: str, call: str) -> tuple[PendingUpdate, ...]:
    """Installed packages that ``apt-get -s dist-upgrade`` would upgrade from a security suite.

    Strict: the summary line must be there and must count exactly as many upgrades as
    there are ``Inst`` lines replacing an installed version, so cut-off output is an
    error rather than a shorter list.
    """
    summary: re.Match[str] | None = None
    upgrades = 0
    pending: list[PendingUpdate] = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if found := _SUMMARY.match(line):
            summary = found
            continue
        if line.startswith("Inst "):
            match = _INST.match(line)
            if match is None:
                raise FactParseError(PENDING_FACT, call, "unexpected Inst line", line)
            if match["installed"] is None:
                continue  # a new package pulled in by an upgrade, not an installed one
            upgrades += 1
            origins = tuple(o.strip() for o in match["origins"].split(",") if o.strip())
            if any(is_security_origin(o) for o in origins):
                pending.append(
                    PendingUpdate(
                        package=match["package"],
                        installed=match["installed"],
                        candidate=match["candidate"],
                        arch=match["arch"],
                        origins=origins,
                    )
                )
            continue
        if not line.startswith(_NOISE) and not line.startswith(" "):
            raise FactParseError(PENDING_FACT, call, "unexpected line in apt output", line)
    if summary is None:
        raise FactParseError(
            PENDING_FACT,
            call,
            "no 'N upgraded, N newly installed' summary (cut off?)",
            stdout[-120:],
        )
    if int(summary["upgraded"]) != upgrades:
        raise FactParseError(
            PENDING_FACT,
            call,
            f"the summary counts {summary['upgraded']} upgrades but {upgrades} Inst lines "
            "replace an installed version (output cut off?)",
            stdout[-120:],
        )
    return tuple(pending)


_FIELD = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9-]*):(?: (?P<value>.*))?$")


def parse_release_header(text: str, name: str) -> ReleaseFile:
    """The fields of an (In)Release file that say what it is and when it was signed.

    ``Date`` is required: it is the time the archive produced the lists, signed with
    them, so it cannot be faked by touching the file (and unlike the mtime it survives
    copying). A file without a parseable Date is an error, never "fresh".
    """
    fact = "host.patch.package_index"
    fields: dict[str, str] = {}
    lines = text.splitlines()
    if lines[:1] == ["-----BEGIN PGP SIGNED MESSAGE-----"]:
        lines = lines[1:]
        while lines and lines[0].strip():  # armour headers (Hash: SHA512)
            lines = lines[1:]
    for line in lines:
        if line.startswith((" ", "\t")) or not line.strip():
            continue
        match = _FIELD.match(line)
        if match is None:
            if line.startswith("-----BEGIN PGP SIGNATURE-----"):
                break
            raise FactParseError(fact, name, "not a Release header line", line)
        if match["key"] in {"MD5Sum", "SHA1", "SHA256", "SHA512"}:
            break
        fields[match["key"]] = (match["value"] or "").strip()
    if "Date" not in fields:
        raise FactParseError(fact, name, "Release file has no Date field", text[:120])
    try:
        when = parsedate_to_datetime(fields["Date"])
    except (TypeError, ValueError) as exc:
        raise FactParseError(fact, name, "unreadable Date", fields["Date"]) from exc
    if when.tzinfo is None:
        raise FactParseError(fact, name, "Date has no time zone", fields["Date"])
    return ReleaseFile(
        name=name,
        date=when.astimezone(UTC),
        suite=fields.get("Suite", ""),
        codename=fields.get("Codename", ""),
        label=fields.get("Label", ""),
        origin=fields.get("Origin", ""),
    )


_CONFIG_LINE = re.compile(r'^(?P<key>\S+) "(?P<value>.*)";$')


@dataclass(frozen=True)
class AptConfig:
    """``apt-config dump`` as key -> values (list items keep their order)."""

    values: dict[str, tuple[str, ...]]

    def get(self, key: str) -> str | None:
        found = self.values.get(key)
        return found[-1] if found else None

    def items(self, key: str) -> tuple[str, ...]:
        """A list option's items: ``Key:: "a";`` lines (``Key "";`` opens the list)."""
        return self.values.get(key + "::", ())


def parse_apt_config(stdout: str, call: str) -> AptConfig:
    fact = "host.patch.auto_updates"
    values: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        match = _CONFIG_LINE.match(line)
        if match is None:
            raise FactParseError(fact, call, "not a 'Key \"value\";' line", line)
        values.setdefault(match["key"], []).append(match["value"])
    if not values:
        raise FactParseError(fact, call, "apt-config printed no configuration", stdout)
    return AptConfig({k: tuple(v) for k, v in values.items()})


_PERIOD = re.compile(r"^(?:always|\d+[smhd]?)$")


def periodic_enabled(value: str | None, key: str, call: str) -> bool:
    """An ``APT::Periodic`` interval: ``0`` or unset is off, ``1``/``7d``/``always`` on."""
    if value is None or value.strip() == "":
        return False
    value = value.strip()
    if not _PERIOD.match(value):
        raise FactParseError("host.patch.auto_updates", call, f"unreadable {key}", value)
    return value == "always" or int(value.rstrip("smhd")) > 0
