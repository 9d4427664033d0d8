"""What the patch facts return, and the version order kernels are compared in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class PendingUpdate:
    """One installed package (or, for zypper, one patch) with a security update waiting.

    ``first_seen`` is when this agent first saw it pending: package managers do not say
    since when an update has been available, so the agent's memory keeps the clock.
    """

    package: str
    candidate: str | None  # the version the update installs (None: zypper patches)
    installed: str | None = None  # None where the manager does not say
    arch: str = ""
    origins: tuple[str, ...] = ()  # apt origins, dnf repository, zypper repository
    advisories: tuple[str, ...] = ()  # RHSA-2024:1234, SUSE-SLE-...-2024-1234
    severity: str | None = None  # critical | important | moderate | low, None if not given
    first_seen: datetime | None = None
    #: Windows: a user hid the update in Windows Update, which then never offers it.
    hidden: bool = False


@dataclass(frozen=True)
class PendingUpdates:
    """A package manager's answer to "which security updates are pending here"."""

    manager: str  # apt | dnf | yum | zypper
    call: str
    updates: tuple[PendingUpdate, ...]
    collected_at: datetime  # earlier than the run when a cached answer was reused
    reused: bool
    metadata_age_seconds: float | None = None  # dnf: "Last metadata expiration check"


@dataclass(frozen=True)
class ReleaseFile:
    """The signed header of one apt (In)Release file in /var/lib/apt/lists."""

    name: str
    date: datetime
    suite: str
    codename: str
    label: str
    origin: str

    @property
    def security_name(self) -> str:
        """bookworm-security (Debian's codename), jammy-security (Ubuntu's suite)."""
        for name in (self.codename, self.suite):
            if name.endswith("-security"):
                return name
        return self.codename or self.suite or self.label

    @property
    def is_security(self) -> bool:
        return (
            self.suite.endswith("-security")
            or self.codename.endswith("-security")
            or self.label == "Debian-Security"
        )


@dataclass(frozen=True)
class PackageIndex:
    """apt's package lists: how new the newest one is, and which suites they cover."""

    directory: str
    files: tuple[ReleaseFile, ...]

    @property
    def newest_at(self) -> datetime | None:
        return max((f.date for f in self.files), default=None)

    @property
    def security_suites(self) -> tuple[str, ...]:
        return tuple(sorted({f.security_name for f in self.files if f.is_security}))


@dataclass(frozen=True)
class KernelState:
    """The running kernel and the kernels installed on disk (empty when none is packaged)."""

    running: str
    installed: tuple[str, ...]
    installed_from: str  # where the installed kernels were found, e.g. /boot/vmlinuz-*


@dataclass(frozen=True)
class RebootFlag:
    """Debian/Ubuntu's /run/reboot-required and the packages that asked for it."""

    present: bool
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class AutoUpdates:
    """How automatic security updates are set up; ``problems`` empty means they are on."""

    mechanism: str  # unattended-upgrades | dnf-automatic
    settings: dict[str, str]
    problems: tuple[str, ...]


@dataclass(frozen=True)
class OsRelease:
    """Which operating system release this is (os-release, sw_vers)."""

    id: str  # debian, ubuntu, rhel, rocky, almalinux, ol, centos, sles, opensuse-leap, macos
    version_id: str
    pretty_name: str
    id_like: tuple[str, ...] = ()
    source: str = "/etc/os-release"


@dataclass(frozen=True)
class EolEntry:
    """One row of the shipped end-of-life table."""

    os_id: str
    version: str
    codename: str
    end_standard: date | None  # None: the vendor has announced no end yet
    end_extended: date | None  # LTS, ESM, LTSS, ELS, ESU; None when there is none
    source: str


@dataclass(frozen=True)
class OsSupport:
    """The release, its row in the end-of-life table (None: not in it), the table's date."""

    release: OsRelease
    entry: EolEntry | None
    table_updated: date
    table_version_key: str  # the version the lookup matched on (or tried last)


_SEGMENT = re.compile(r"\d+|[A-Za-z]+")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing numbers as numbers: 6.1.0-27 sorts after 6.1.0-9 (rpmvercmp-like).

    Numeric segments sort after alphabetic ones, as rpm and dpkg both do for kernels.
    """
    return tuple(
        (1, int(part)) if part.isdigit() else (0, part) for part in _SEGMENT.findall(version)
    )


def kernel_flavour(release: str) -> str:
    """What is left of a kernel release without its numbers: ``-amd64``, ``-generic``.

    Kernels are only compared within one flavour, so that an installed ``-rt-amd64``
    kernel never counts as "newer" than a running ``-amd64`` one.
    """
    return re.sub(r"[\d._~+]+", "", release)
