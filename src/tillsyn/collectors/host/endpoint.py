"""Endpoint hygiene facts: firewall, listening services, software, screen lock.

The parsing lives in sibling modules (``endpoint_firewall``, ``endpoint_processes``,
``endpoint_software``, ``endpoint_screenlock``); this mixin runs the commands, reads the
files under the injectable root and puts the answers together.

Sockets and processes come from a :class:`ProcessTable`, chosen by :meth:`process_table`
without touching HostBase's constructor: a collector reading the live machine (root
``/``) gets psutil; a collector pointed at a recorded tree reads the psutil snapshot that
tree holds at ``/.tillsyn-recorded/processes.json``. A recorded tree without one is an
error, never the live machine's table mixed into someone else's files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tillsyn.collectors._facts import fact
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactError,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host import endpoint_firewall as fw
from tillsyn.collectors.host import endpoint_screenlock as sl
from tillsyn.collectors.host import endpoint_software as sw
from tillsyn.collectors.host._base import MACOS, WINDOWS, HostBase
from tillsyn.collectors.host.endpoint_processes import (
    Listener,
    ProcessTable,
    PsutilTable,
    RecordedTable,
    Table,
    listeners,
)

# macOS and Windows modules are imported where used, so a Linux agent never loads them.
if TYPE_CHECKING:
    from tillsyn.collectors.host.endpoint_firewall_macos import ApplicationFirewall
    from tillsyn.collectors.host.endpoint_firewall_windows import FirewallProfile
    from tillsyn.collectors.host.endpoint_screenlock_macos import MacScreenLock
    from tillsyn.collectors.host.endpoint_screenlock_windows import InactivityLimit

#: Where a recorded tree keeps its psutil snapshot (see tests/fixtures/processes/).
RECORDED_PROCESS_TABLE = "/.tillsyn-recorded/processes.json"

NFT_LIST = ["nft", "-j", "list", "ruleset"]
#: iptables-save shows the backend ``iptables`` points to (nf_tables or legacy); the legacy
#: tools show legacy tables that nft cannot see, even where nf_tables is the default.
IPTABLES_SAVE: tuple[tuple[fw.IpVersion, list[str]], ...] = (
    ("ipv4", ["iptables-save"]),
    ("ipv6", ["ip6tables-save"]),
    ("ipv4", ["iptables-legacy-save"]),
    ("ipv6", ["ip6tables-legacy-save"]),
)
UFW_STATUS = ["ufw", "status", "verbose"]
FIREWALLD_STATE = ["firewall-cmd", "--state"]
FIREWALLD_ZONES = ["firewall-cmd", "--list-all-zones"]
FIREWALLD_DEFAULT = ["firewall-cmd", "--get-default-zone"]
TESTPARM_MIN_PROTOCOL = ["testparm", "-s", "--parameter-name", "server min protocol"]

#: Samba protocol names below SMB2, oldest first (smb.conf(5), "server min protocol").
SMB1_PROTOCOLS = ("CORE", "COREPLUS", "LANMAN1", "LANMAN2", "NT1")

_NEEDS_ROOT = ("Operation not permitted", "Permission denied", "you must be root")
#: How a refused ruleset listing reads in evidence and messages.
NEEDS_ROOT = "listing the ruleset needs root or CAP_NET_ADMIN"


@dataclass(frozen=True)
class SourceFailure:
    """A ruleset source that could not be read, and whether another source saw the same."""

    call: str
    reason: str
    covered: bool  # its tables are nf_tables ones that nft already listed


@dataclass(frozen=True)
class Protection:
    """Whether one IP version's incoming traffic ends in a drop."""

    version: fw.IpVersion
    state: str  # deny, open or unknown
    deciding: tuple[fw.InputChain, ...]  # the chains that deny (deny) or all seen (open)
    chains: tuple[fw.InputChain, ...]
    failures: tuple[SourceFailure, ...]


@dataclass(frozen=True)
class PacketFilter:
    """Every input chain the ruleset tools showed, and the tools that failed or are absent."""

    chains: tuple[fw.InputChain, ...]
    read: tuple[str, ...]
    failures: tuple[SourceFailure, ...]
    absent: tuple[str, ...]
    frontends: dict[str, object] = field(default_factory=dict)

    def protection(self, version: fw.IpVersion) -> Protection:
        """Deny as soon as one chain denies (a drop anywhere is final); open only when
        every source that could hold a chain was read."""
        mine = tuple(c for c in self.chains if version in c.versions)
        uncovered = tuple(f for f in self.failures if not f.covered)
        denying = tuple(c for c in mine if c.outcome == "deny")
        if denying:
            return Protection(version, "deny", denying, mine, self.failures)
        if uncovered or not self.read:
            return Protection(version, "unknown", (), mine, self.failures)
        return Protection(version, "open", mine, mine, self.failures)


@dataclass(frozen=True)
class SambaProtocol:
    minimum: str  # as testparm prints it, upper case

    @property
    def allows_smb1(self) -> bool:
        return self.minimum in SMB1_PROTOCOLS


def _needs_root(exc: FactCommandFailed) -> bool:
    return any(marker in exc.stderr for marker in _NEEDS_ROOT)


def _stderr_of(exc: FactError) -> str:
    """The failed command's stderr, also when a permission error wraps the failure."""
    for error in (exc, exc.__cause__):
        if isinstance(error, FactCommandFailed):
            return error.stderr
    return ""


class EndpointFacts(HostBase):
    """Facts for ``host.endpoint.*``: packet filter, listeners, software, screen lock."""

    # -- processes and sockets --------------------------------------------------------

    def process_table(self) -> ProcessTable:
        """psutil for the live machine, the tree's recorded snapshot otherwise."""
        if self.root == Path("/"):
            return PsutilTable()
        return RecordedTable(self.path(RECORDED_PROCESS_TABLE), RECORDED_PROCESS_TABLE)

    @fact("host.endpoint.process_table")
    def process_snapshot(self) -> Table:
        """Sockets and processes as this user may see them (read once per run)."""
        return self.process_table().read()

    @fact("host.endpoint.listeners")
    def listeners(self) -> tuple[Listener, ...]:
        """Listening TCP and bound UDP sockets, each with its owner's name where visible."""
        table = self.process_snapshot()
        if table.sockets_error:
            raise FactPermissionDenied(
                "host.endpoint.listeners",
                "psutil.net_connections",
                f"the socket table is not readable by this user ({table.sockets_error})",
            )
        return listeners(table)

    # -- packet filter ----------------------------------------------------------------

    def _ruleset(self, argv: list[str]) -> str:
        try:
            return self.command(fw.FACT, argv).stdout
        except FactCommandFailed as exc:
            if _needs_root(exc):
                raise FactPermissionDenied(
                    fw.FACT,
                    " ".join(argv),
                    f"{NEEDS_ROOT}: " + (exc.stderr.strip().splitlines() or [""])[0],
                ) from exc
            raise

    @fact("host.endpoint.packet_filter")
    def packet_filter(self) -> PacketFilter:
        """Input chains from nft and iptables-save/ip6tables-save, and the front-ends."""
        self.require_linux(fw.FACT)
        chains: list[fw.InputChain] = []
        read: list[str] = []
        failures: list[tuple[str, str, str]] = []  # (call, reason, backend)
        absent: list[str] = []
        nft_read = False
        try:
            chains += fw.parse_nft_ruleset(self._ruleset(NFT_LIST), " ".join(NFT_LIST))
            read.append(" ".join(NFT_LIST))
            nft_read = True
        except FactUnavailable:
            absent.append("nft")
        except FactError as exc:
            failures.append((" ".join(NFT_LIST), exc.reason, "nf_tables"))
        for version, argv in IPTABLES_SAVE:
            call = " ".join(argv)
            try:
                stdout = self._ruleset(argv)
            except FactUnavailable:
                absent.append(argv[0])
                continue
            except FactError as exc:
                failures.append((call, exc.reason, fw.iptables_backend(_stderr_of(exc))))
                continue
            try:
                _, found = fw.parse_iptables_save(stdout, call, version)
            except FactParseError as exc:
                failures.append((call, exc.reason, fw.iptables_backend(stdout)))
                continue
            if fw.INCOMPATIBLE_MARK in stdout and not nft_read:
                # iptables-nft hides nft-native tables; without nft nobody saw them
                failures.append((call, "it cannot show nft-native tables and nft was not read", ""))
            chains += found
            read.append(call)
        return PacketFilter(
            chains=tuple(chains),
            read=tuple(read),
            failures=tuple(
                SourceFailure(call, reason, covered=nft_read and backend == "nf_tables")
                for call, reason, backend in failures
            ),
            absent=tuple(absent),
            frontends=self._firewall_frontends(),
        )

    def _firewall_frontends(self) -> dict[str, object]:
        """What ufw and firewalld say about themselves: evidence beside the kernel's view."""
        out: dict[str, object] = {}
        try:
            ufw = fw.parse_ufw_status(self.command(fw.FACT, UFW_STATUS).stdout, "ufw status")
            out["ufw"] = {"active": ufw.active, "incoming": ufw.incoming or None}
        except FactUnavailable:
            out["ufw"] = "not installed"
        except FactError as exc:
            out["ufw"] = f"could not read: {exc.reason}"
        try:
            state = self.command(fw.FACT, FIREWALLD_STATE, ok_codes=(0, 252))
        except FactUnavailable:
            out["firewalld"] = "not installed"
            return out
        except FactError as exc:
            out["firewalld"] = f"could not read: {exc.reason}"
            return out
        if state.returncode != 0:
            out["firewalld"] = "not running"
            return out
        try:
            default = self.command(fw.FACT, FIREWALLD_DEFAULT).stdout.strip()
            zones = fw.parse_firewalld_zones(
                self.command(fw.FACT, FIREWALLD_ZONES).stdout, " ".join(FIREWALLD_ZONES)
            )
        except FactError as exc:
            out["firewalld"] = f"running; zones could not be read: {exc.reason}"
            return out
        out["firewalld"] = {
            "state": "running",
            "default_zone": default,
            "zones": {
                z.name: {"target": z.target, "interfaces": list(z.interfaces)}
                for z in zones
                if z.name == default or z.active or z.default
            },
        }
        return out

    @fact("host.endpoint.application_firewall")
    def application_firewall(self) -> ApplicationFirewall:
        """macOS: the application firewall's global state, block-all and stealth mode."""
        from tillsyn.collectors.host import endpoint_firewall_macos as fwm

        self.require_platform(fwm.FACT, MACOS)
        answers = []
        for argv in (fwm.GLOBAL_STATE, fwm.BLOCK_ALL, fwm.STEALTH_MODE):
            result = self.command(fwm.FACT, argv)
            answers.append((result.stdout, result.stderr, " ".join(argv)))
        state, said_state = fwm.parse_global_state(*answers[0])
        block_all, said_block = fwm.parse_block_all(*answers[1])
        stealth, said_stealth = fwm.parse_stealth_mode(*answers[2])
        return fwm.ApplicationFirewall(
            state, block_all, stealth, (said_state, said_block, said_stealth)
        )

    @fact("host.endpoint.windows_firewall")
    def windows_firewall(self) -> dict[str, FirewallProfile]:
        """Windows: each firewall profile in the active policy store, by name."""
        from tillsyn.collectors.host import endpoint_firewall_windows as fww

        self.require_platform(fww.FACT, WINDOWS)
        try:
            result = self.command(fww.FACT, fww.POWERSHELL_PROFILES)
        except FactCommandFailed as exc:
            # The argv holds the whole script: name the call briefly instead.
            if any(marker in exc.stderr for marker in fww.ACCESS_DENIED):
                said = (exc.stderr.strip().splitlines() or [""])[0]
                raise FactPermissionDenied(fww.FACT, fww.CALL, f"access denied: {said}") from exc
            raise FactCommandFailed(fww.FACT, [fww.CALL], exc.returncode, exc.stderr) from exc
        except FactError as exc:
            raise type(exc)(fww.FACT, fww.CALL, exc.reason) from exc
        return fww.parse_profiles(result.stdout, result.stderr, fww.CALL)

    @fact("host.endpoint.ipv6_enabled")
    def ipv6_enabled(self) -> bool:
        """False only when the kernel has no IPv6 or it is disabled on every interface."""
        fact_name = "host.endpoint.ipv6_enabled"
        self.require_linux(fact_name)
        conf = self.path("/proc/sys/net/ipv6/conf")
        if not conf.is_dir():
            if self.path("/proc/sys/net/ipv4").is_dir():
                return False  # procfs is there, IPv6 is not: a kernel without IPv6
            raise FactUnavailable(fact_name, "/proc/sys/net/ipv6/conf", "does not exist")
        states: dict[str, str] = {}
        for entry in sl.list_dir(conf):
            if entry.name == "lo":
                continue
            states[entry.name] = self.read_text(
                fact_name, f"/proc/sys/net/ipv6/conf/{entry.name}/disable_ipv6"
            ).strip()
        return not states or any(v != "1" for v in states.values())

    # -- services -----------------------------------------------------------------------

    @fact("host.endpoint.samba_min_protocol")
    def samba_min_protocol(self) -> SambaProtocol | None:
        """Samba's effective ``server min protocol`` (testparm); None when Samba is absent."""
        fact_name = "host.endpoint.samba_min_protocol"
        try:
            result = self.command(fact_name, TESTPARM_MIN_PROTOCOL)
        except FactUnavailable:
            return None
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        if len(lines) != 1 or not lines[0].replace("_", "").isalnum():
            raise FactParseError(
                fact_name,
                " ".join(TESTPARM_MIN_PROTOCOL),
                "expected one protocol name",
                result.stdout,
            )
        return SambaProtocol(lines[0].upper())

    # -- software -----------------------------------------------------------------------

    @fact("host.endpoint.installed_software")
    def installed_software(self) -> sw.SoftwareInventory:
        """Installed packages from every package manager present (Linux); app bundles and
        Homebrew (macOS); the uninstall registry keys (Windows)."""
        if self.platform == MACOS:
            from tillsyn.collectors.host import endpoint_software_macos as swm

            return swm.collect(self)
        if self.platform == WINDOWS:
            from tillsyn.collectors.host import endpoint_software_windows as sww

            return sww.collect(self)
        self.require_linux(sw.FACT)
        lists: list[sw.PackageList] = []
        failures: list[tuple[str, str]] = []
        absent: list[str] = []
        for manager, argv, parse in (
            ("dpkg", sw.DPKG_QUERY, sw.parse_dpkg),
            ("rpm", sw.RPM_QUERY, sw.parse_rpm),
            ("snap", sw.SNAP_QUERY, sw.parse_snap),
        ):
            call = sw.shown(argv)
            try:
                cached = self.cached_command(sw.FACT, argv)
                packages = parse(cached.result.stdout, call)
            except FactUnavailable:
                absent.append(manager)
                continue
            except FactError as exc:
                failures.append((call, exc.reason))
                continue
            lists.append(
                sw.PackageList(manager, call, packages, cached.collected_at, cached.reused)
            )
        if not lists and not failures:
            raise FactUnavailable(sw.FACT, "dpkg-query, rpm, snap", "no package manager found")
        return sw.SoftwareInventory(tuple(lists), tuple(failures), tuple(absent))

    # -- screen lock --------------------------------------------------------------------

    @fact("host.endpoint.desktop")
    def desktop(self) -> sl.Desktop:
        """Display managers and session types installed, and the default systemd target.
        A Mac always has a desktop, and Windows always has interactive logon sessions."""
        fact_name = "host.endpoint.desktop"
        if self.platform == MACOS:
            from tillsyn.collectors.host import endpoint_screenlock_macos as slm

            return slm.MAC_DESKTOP
        if self.platform == WINDOWS:
            from tillsyn.collectors.host import endpoint_screenlock_windows as slw

            return slw.WINDOWS_DESKTOP
        self.require_linux(fact_name)
        managers = tuple(
            name
            for name, paths in sl.DISPLAY_MANAGERS.items()
            if any(self.path(p).exists() for p in paths)
        )
        sessions: list[tuple[str, str]] = []
        for folder in sl.SESSION_DIRS:
            try:
                entries = sl.list_dir(self.path(folder))
            except PermissionError as exc:
                raise FactPermissionDenied(fact_name, folder, "permission denied") from exc
            for entry in entries:
                if entry.suffix == ".desktop":
                    text = self.read_text(fact_name, f"{folder}/{entry.name}")
                    sessions.append((f"{folder}/{entry.name}", sl.session_kind(text)))
        target = ""
        for link in sl.DEFAULT_TARGETS:
            path = self.path(link)
            if path.is_symlink():
                target = path.readlink().name
                break
        return sl.Desktop(managers, tuple(sessions), target)

    @fact("host.endpoint.gnome_screen_lock")
    def gnome_screen_lock(self) -> dict[str, sl.Setting]:
        """The GNOME screen-lock keys as dconf's system databases and locks set them."""
        fact_name = "host.endpoint.gnome_screen_lock"
        self.require_linux(fact_name)
        profile_path = "/etc/dconf/profile/user"
        try:
            databases = sl.parse_dconf_profile(self.read_text(fact_name, profile_path))
        except FactUnavailable:
            databases = ()  # no profile: sessions read only their own user database
        values: list[dict[str, tuple[str, str]]] = []
        locks: list[set[str]] = []
        for name in databases:
            folder = f"/etc/dconf/db/{name}.d"
            db: dict[str, tuple[str, str]] = {}
            locked: set[str] = set()
            try:
                entries = sl.list_dir(self.path(folder))
                lock_entries = sl.list_dir(self.path(f"{folder}/locks"))
            except PermissionError as exc:
                raise FactPermissionDenied(fact_name, folder, "permission denied") from exc
            for entry in entries:  # later files override earlier ones, as dconf compiles
                if entry.is_file():
                    where = f"{folder}/{entry.name}"
                    text = self.read_text(fact_name, where)
                    for key, value in sl.parse_keyfile(text, where, fact_name).items():
                        db[key] = (value, where)
            for entry in lock_entries:
                if entry.is_file():
                    locked |= sl.parse_locks(
                        self.read_text(fact_name, f"{folder}/locks/{entry.name}")
                    )
            values.append(db)
            locks.append(locked)
        settings: dict[str, sl.Setting] = {}
        for key in sl.GNOME_KEYS:
            lock_at = next((i for i, held in enumerate(locks) if key in held), None)
            start = lock_at if lock_at is not None else 0
            found = next((db[key] for db in values[start:] if key in db), None)
            if found is None:
                schema, name = sl.schema_and_key(key)
                argv = ["gsettings", "get", schema, name]
                shipped = self.command(fact_name, argv).stdout.strip()
                found = (shipped, "shipped default (gsettings get)")
            settings[key] = sl.Setting(key, found[0], found[1], lock_at is not None)
        return settings

    @fact("host.endpoint.macos_screen_lock")
    def macos_screen_lock(self) -> MacScreenLock:
        """macOS: the screen-saver keys a configuration profile forces, else the console
        user's own settings (see :mod:`.endpoint_screenlock_macos`)."""
        from tillsyn.collectors.host import endpoint_screenlock_macos as slm

        self.require_platform(slm.FACT, MACOS)
        return slm.collect(self)

    @fact("host.endpoint.windows_screen_lock")
    def windows_screen_lock(self) -> InactivityLimit:
        """Windows: the machine inactivity limit policy (InactivityTimeoutSecs)."""
        from tillsyn.collectors.host import endpoint_screenlock_windows as slw

        self.require_platform(slw.FACT, WINDOWS)
        return slw.collect(self)

    @fact("host.endpoint.kde_screen_lock")
    def kde_screen_lock(self) -> sl.KdeLock:
        """The system-wide kscreenlockerrc; no file means KDE's defaults, not enforced."""
        fact_name = "host.endpoint.kde_screen_lock"
        self.require_linux(fact_name)
        path = "/etc/xdg/kscreenlockerrc"
        try:
            text = self.read_text(fact_name, path)
        except FactUnavailable:
            return sl.KdeLock({}, False)
        return sl.parse_kscreenlockerrc(text, path)
