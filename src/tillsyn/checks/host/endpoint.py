"""Endpoint hygiene: host firewall, insecure listeners, forbidden software, screen lock.

``host.endpoint.firewall`` passes for an IP version (IPv4, IPv6) when at least one input
base chain of the kernel's packet filter drops what it does not explicitly allow (policy
drop, or a final unconditional drop/reject, with no accept-everything rule before it);
the input chains seen, the ruleset sources read and what ufw/firewalld say are evidence.
IPv6 disabled on every interface is not applicable. A ruleset nobody could read (listing
it needs root or CAP_NET_ADMIN) is ``error``, never "no firewall". On macOS it judges the
application firewall (on, State 1 or 2, passes; stealth mode off is named, not failed); on
Windows each profile (Domain, Private, Public) passes when it is on and blocks inbound by
default, and a profile the answer lacks is ``error`` (see the collector modules
``endpoint_firewall_macos`` and ``endpoint_firewall_windows``).

``host.endpoint.insecure_services`` fails once per listener on a port the rules name as a
plain-text or legacy service (telnet, ftp, r-services, tftp, finger, rpcbind, NetBIOS
session, VNC) and once when Samba accepts SMB1; a listener bound to loopback only passes
with that noted (``loopback_is_acceptable``). It keeps address, port, pid and process
name where this user may see them; an unprivileged run says whose owners it could not see.

``host.endpoint.forbidden_software`` fails once per configured item found as an installed
package (dpkg, rpm, snap; Homebrew on macOS), an installed program (macOS app bundle,
Windows uninstall entry) or a running process, naming where; it passes when none is
found and every source was read. Names are case-insensitive shell-style patterns; a
Windows process name matches with or without ``.exe``. Package lists keep their
``collected_at`` (they may come from the command cache).

``host.endpoint.screen_lock`` passes for a desktop (GNOME, KDE Plasma) whose system
policy locks the screen after at most ``max_idle_minutes`` idle and, with
``require_enforced``, locks those settings against users (dconf locks, KConfig
``[$i]``). A host without a display manager or session type is not applicable. A Mac
always has a desktop: a configuration profile's ``com.apple.screensaver`` keys are
enforced, the console user's own settings (``sysadminctl -screenLock status``, idleTime)
are not (``endpoint_screenlock_macos``). Windows is judged by the machine inactivity
limit, a machine policy users cannot change (``endpoint_screenlock_windows``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tillsyn.checks._result import TARGET, Resource, Result
from tillsyn.checks._spec import check
from tillsyn.collectors.errors import FactError
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host import endpoint_software as sw
from tillsyn.collectors.host.endpoint import NEEDS_ROOT, SourceFailure
from tillsyn.collectors.host.endpoint_processes import Listener
from tillsyn.collectors.host.endpoint_screenlock import (
    Desktop,
    Setting,
    gvariant_bool,
    gvariant_int,
)

# macOS and Windows modules are imported where used, so a Linux agent never loads them.
if TYPE_CHECKING:
    from tillsyn.collectors.host.endpoint_screenlock_macos import MacScreenLock
    from tillsyn.collectors.host.endpoint_screenlock_windows import InactivityLimit

# -- host.endpoint.firewall ---------------------------------------------------------------


@dataclass(frozen=True)
class FirewallParams:
    #: IPv6 disabled on every interface needs no filter (not applicable); false judges it.
    ipv6_disabled_is_not_applicable: bool = True


def _failure_text(failures: tuple[SourceFailure, ...]) -> str:
    """Why the sources failed; a refusal for lack of privilege is said once for all tools."""
    needs_root = [f for f in failures if f.reason.startswith(NEEDS_ROOT)]
    others = [f"{f.call}: {f.reason}" for f in failures if f not in needs_root]
    if needs_root:
        tools = ", ".join(f.call.split(" ")[0] for f in needs_root)
        others.insert(0, f"{NEEDS_ROOT} ({tools} refused)")
    return "; ".join(others)


@check(
    id="host.endpoint.firewall",
    title="A host firewall denies incoming traffic by default, for IPv4 and IPv6",
    target="host",
    controls=(
        "iso27001:2022/A.8.20",
        "iso27001:2022/A.8.1",
        "iso27001:2022/A.5.14",
        "iso27001:2022/A.5.10",
        "nis2/6.7.2.b",
        "nis2/6.7.2.c",
        "nis2/6.7",
        "nis2/12.2",
    ),
    severity="high",
    interval="1h",
    params=FirewallParams,
    facts=(
        "host.endpoint.packet_filter",
        "host.endpoint.ipv6_enabled",
        "host.endpoint.application_firewall",
        "host.endpoint.windows_firewall",
    ),
    needs=(
        "root or CAP_NET_ADMIN to list the nftables/iptables ruleset",
        "macOS: run socketfilterfw --get* (no root needed); Windows: run PowerShell "
        "Get-NetFirewallProfile",
    ),
    remediation="Enable a default-deny input policy for IPv4 and IPv6: ufw default deny "
    "incoming && ufw enable, firewalld with a zone whose target is not ACCEPT, or an nftables "
    "inet input chain with policy drop. macOS: turn the firewall on (System Settings > Network "
    "> Firewall, or socketfilterfw --setglobalstate on). Windows: Set-NetFirewallProfile "
    "-Profile Domain,Private,Public -Enabled True -DefaultInboundAction Block.",
)
def firewall(facts: HostFacts, p: FirewallParams) -> Iterator[Result]:
    if facts.platform == "darwin":
        yield from _application_firewall(facts)
        return
    if facts.platform == "win32":
        yield from _windows_firewall(facts)
        return
    try:
        packet_filter = facts.packet_filter()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not read the packet filter: {exc}")
        return
    evidence: dict[str, object] = {
        "read": list(packet_filter.read),
        "not_installed": list(packet_filter.absent),
        "failures": [{"call": f.call, "reason": f.reason} for f in packet_filter.failures],
        "frontends": packet_filter.frontends,
    }
    expected = {"input": "default deny (policy drop or final drop/reject)"}
    for version in ("ipv4", "ipv6"):
        label = "IPv4" if version == "ipv4" else "IPv6"
        resource = Resource("ip_version", version)
        if version == "ipv6" and p.ipv6_disabled_is_not_applicable:
            try:
                enabled = facts.ipv6_enabled()
            except FactError:
                enabled = True  # unknown: judge IPv6 rather than excuse it
            if not enabled:
                yield Result.not_applicable(
                    resource, "IPv6 is disabled on every interface, so it needs no filter"
                )
                continue
        state = packet_filter.protection(version)
        observed = evidence | {"input_chains": [c.evidence() for c in state.chains]}
        if state.state == "deny":
            yield Result.passed(
                resource,
                f"{label}: incoming traffic is default-deny: {state.deciding[0].describe()}",
                observed=observed,
                expected=expected,
            )
        elif state.state == "unknown":
            why = _failure_text(state.failures) or "neither nft nor iptables-save is installed"
            yield Result.errored(
                resource,
                f"{label}: could not read the packet filter: {why}",
                observed=observed,
                expected=expected,
            )
        elif not state.chains:
            yield Result.failed(
                resource,
                f"{label}: no firewall input chain exists, incoming traffic is not filtered",
                observed=observed,
                expected=expected,
            )
        else:
            open_text = "; ".join(c.describe() for c in state.chains)
            yield Result.failed(
                resource,
                f"{label}: incoming traffic is not default-deny: {open_text}",
                observed=observed,
                expected=expected,
            )


def _application_firewall(facts: HostFacts) -> Iterator[Result]:
    """macOS: one result for the application firewall."""
    resource = Resource("firewall", "application_firewall")
    try:
        alf = facts.application_firewall()
    except FactError as exc:
        yield Result.errored(resource, f"could not read the macOS application firewall: {exc}")
        return
    yield Result.judge(
        alf.enabled,
        resource,
        f"macOS: {alf.describe()}",
        observed=alf.observed(),
        expected={"global_state": "1 (on) or 2 (block all)"},
    )


def _windows_firewall(facts: HostFacts) -> Iterator[Result]:
    """Windows: one result per profile; a profile the answer lacks is an error."""
    from tillsyn.collectors.host.endpoint_firewall_windows import PROFILES

    try:
        profiles = facts.windows_firewall()
    except FactError as exc:
        for name in PROFILES:
            yield Result.errored(
                Resource("firewall_profile", name),
                f"{name} profile: could not read the Windows Firewall: {exc}",
            )
        return
    expected = {"enabled": "True", "default_inbound_action": "Block (or NotConfigured)"}
    for name in PROFILES:
        resource = Resource("firewall_profile", name)
        profile = profiles.get(name)
        if profile is None:
            listed = ", ".join(profiles) or "none"
            yield Result.errored(
                resource,
                f"{name} profile: Get-NetFirewallProfile did not list it (listed: {listed})",
            )
            continue
        observed = profile.observed()
        if profile.state == "unknown":
            yield Result.errored(
                resource, f"{name} profile: {profile.describe()}", observed=observed
            )
            continue
        verdict = "is default-deny" if profile.state == "deny" else "is not default-deny"
        yield Result.judge(
            profile.state == "deny",
            resource,
            f"{name} profile: incoming traffic {verdict}: {profile.describe()}",
            observed=observed,
            expected=expected,
        )


# -- host.endpoint.insecure_services ------------------------------------------------------


@dataclass(frozen=True)
class ServiceRule:
    """A port whose service sends credentials or data in clear, or is legacy."""

    name: str
    port: int
    transport: Literal["tcp", "udp"] = "tcp"
    reason: str = ""


DEFAULT_SERVICE_RULES = (
    ServiceRule("ftp", 21, "tcp", "FTP sends passwords and files in clear text"),
    ServiceRule("telnet", 23, "tcp", "telnet sends passwords and sessions in clear text"),
    ServiceRule("tftp", 69, "udp", "TFTP has no authentication and no encryption"),
    ServiceRule("finger", 79, "tcp", "finger discloses account information"),
    ServiceRule("rpcbind", 111, "tcp", "rpcbind exposes the RPC service map (NFS, NIS)"),
    ServiceRule("rpcbind", 111, "udp", "rpcbind exposes the RPC service map (NFS, NIS)"),
    ServiceRule("netbios-ssn", 139, "tcp", "NetBIOS session service is SMB1-era file sharing"),
    ServiceRule("rexec", 512, "tcp", "rexec sends passwords in clear text"),
    ServiceRule("rlogin", 513, "tcp", "rlogin trusts host names and sends sessions in clear"),
    ServiceRule("rsh", 514, "tcp", "rsh trusts host names and sends commands in clear"),
    ServiceRule("vnc", 5900, "tcp", "VNC (RFB) usually carries the session unencrypted"),
)


@dataclass(frozen=True)
class InsecureServicesParams:
    rules: tuple[ServiceRule, ...] = DEFAULT_SERVICE_RULES
    #: A listener bound to loopback only cannot be reached from the network: pass, noted.
    loopback_is_acceptable: bool = True


def _owner(listener: Listener) -> str:
    if listener.pid is None:
        return "owning process not visible to this user"
    return f"process {listener.process or '?'}, pid {listener.pid}"


@check(
    id="host.endpoint.insecure_services",
    title="No plain-text or legacy network service is listening",
    target="host",
    controls=(
        "iso27001:2022/A.8.20",
        "iso27001:2022/A.5.14",
        "iso27001:2022/A.8.1",
        "iso27001:2022/A.5.10",
        "nis2/6.7.2.f",
        "nis2/6.7.2.i",
        "nis2/6.7",
        "nis2/12.2",
    ),
    severity="high",
    interval="1h",
    params=InsecureServicesParams,
    facts=("host.endpoint.listeners", "host.endpoint.samba_min_protocol"),
    needs=(
        "list sockets (psutil; root to see other users' processes)",
        "run testparm where Samba is installed",
    ),
    remediation="Stop and disable the service (systemctl disable --now, or remove its inetd "
    "line) and use its encrypted successor: ssh/sftp instead of telnet, ftp and r-services; "
    "set 'server min protocol = SMB2_10' or higher in smb.conf.",
)
def insecure_services(facts: HostFacts, p: InsecureServicesParams) -> Iterator[Result]:
    failed = False
    try:
        seen = facts.listeners()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not list listening sockets: {exc}")
        return
    rules = {(r.transport, r.port): r for r in p.rules}
    hidden = sum(1 for listener in seen if listener.pid is None)
    for listener in seen:
        rule = rules.get((listener.transport, listener.port))
        if rule is None:
            continue
        resource = Resource("listener", f"{listener.transport}/{listener.address}")
        observed = {
            "service": rule.name,
            "transport": listener.transport,
            "address": listener.ip,
            "port": listener.port,
            "pid": listener.pid,
            "process": listener.process,
            "loopback_only": listener.loopback_only,
        }
        what = f"{rule.name} ({listener.transport}/{listener.port}) listens on {listener.address}"
        if listener.loopback_only and p.loopback_is_acceptable:
            yield Result.passed(
                resource,
                f"{what} ({_owner(listener)}), loopback only: not reachable from the network",
                observed=observed,
                expected={"listening": "loopback only, or not at all"},
            )
            continue
        failed = True
        yield Result.failed(
            resource,
            f"{what} ({_owner(listener)}): {rule.reason or 'listed as insecure'}",
            observed=observed,
            expected={"listening": False},
        )
    try:
        samba = facts.samba_min_protocol()
    except FactError as exc:
        yield Result.errored(
            Resource("samba", "server min protocol"),
            f"Samba is installed but its minimum protocol could not be read: {exc}",
        )
        samba = None
    if samba is not None:
        yield Result.judge(
            not samba.allows_smb1,
            Resource("samba", "server min protocol"),
            f"Samba server min protocol is {samba.minimum}"
            + (", which allows SMB1" if samba.allows_smb1 else " (SMB1 refused)"),
            observed={"server_min_protocol": samba.minimum},
            expected={"server_min_protocol": "SMB2_02 or higher"},
        )
        failed = failed or samba.allows_smb1
    if not failed:
        note = ""
        if hidden:
            euid = facts.process_snapshot().euid
            note = f"; {hidden} listener(s) show no owning process" + (
                " (only root sees other users' processes)" if euid not in (0, None) else ""
            )
        yield Result.passed(
            TARGET,
            f"no listener reachable from the network matches the {len(p.rules)} insecure-service "
            f"rules ({len(seen)} listeners seen{note})",
            observed={
                "listeners": [f"{x.transport}/{x.address}" for x in seen],
                "owners_not_visible": hidden,
                "read_as_uid": facts.process_snapshot().euid,
            },
            expected={"rules": [f"{r.name} {r.transport}/{r.port}" for r in p.rules]},
        )


# -- host.endpoint.forbidden_software -----------------------------------------------------


@dataclass(frozen=True)
class ForbiddenItem:
    """Software the policy forbids, and the names it goes by in each place we look.

    Every name is case-insensitive and may be a shell-style pattern (``TeamViewer*``).
    """

    name: str
    reason: str
    packages: tuple[str, ...] = ()  # dpkg, rpm, snap and Homebrew (formula, cask) names
    processes: tuple[str, ...] = ()  # process names as psutil reports them (.exe optional)
    #: macOS app bundles (file name, CFBundleName or CFBundleIdentifier) and Windows
    #: programs (DisplayName in the uninstall registry keys, as "Apps & features" shows it)
    programs: tuple[str, ...] = ()


DEFAULT_FORBIDDEN = (
    ForbiddenItem(
        "Dropbox",
        "consumer cloud sync: copies company files to a personal account outside our control",
        packages=("dropbox", "nautilus-dropbox"),
        processes=("dropbox",),
        programs=("Dropbox", "com.getdropbox.dropbox"),
    ),
    ForbiddenItem(
        "MEGAsync",
        "consumer cloud sync (MEGA): personal storage outside our control",
        packages=("megasync",),
        processes=("megasync",),
        programs=("MEGAsync", "mega.mac"),
    ),
    ForbiddenItem(
        "Insync",
        "third-party Google Drive/OneDrive sync client with its own access to company data",
        packages=("insync",),
        processes=("insync",),
        programs=("Insync",),
    ),
    ForbiddenItem(
        "TeamViewer",
        "remote-control tool that bypasses managed remote access (and logging)",
        packages=("teamviewer", "teamviewer-host", "teamviewer-quicksupport"),
        processes=("teamviewerd", "TeamViewer", "TeamViewer_Service"),
        programs=("TeamViewer*", "com.teamviewer.*"),
    ),
    ForbiddenItem(
        "AnyDesk",
        "remote-control tool that bypasses managed remote access; common in support scams",
        packages=("anydesk",),
        processes=("anydesk",),
        programs=("AnyDesk", "com.philandro.anydesk"),
    ),
    ForbiddenItem(
        "RustDesk",
        "remote-control tool with self-hostable relays outside managed remote access",
        packages=("rustdesk",),
        processes=("rustdesk",),
        programs=("RustDesk", "com.carriez.rustdesk"),
    ),
)


@dataclass(frozen=True)
class ForbiddenSoftwareParams:
    items: tuple[ForbiddenItem, ...] = DEFAULT_FORBIDDEN


def _sources(inventory: sw.SoftwareInventory | None) -> list[dict[str, object]]:
    if inventory is None:
        return []
    return [
        {
            "manager": pl.manager,
            "packages": len(pl.packages),
            "collected_at": pl.collected_at,
            "reused": pl.reused,
        }
        for pl in inventory.lists
    ] + [
        {"manager": pg.source, "programs": len(pg.programs), "collected_at": pg.collected_at}
        for pg in inventory.programs
    ]


def _source_counts(sources: list[dict[str, object]]) -> list[str]:
    return [
        f"{s['manager']}: {s['packages']} packages"
        if "packages" in s
        else f"{s['manager']}: {s['programs']} programs"
        for s in sources
    ]


@check(
    id="host.endpoint.forbidden_software",
    title="No forbidden software is installed or running",
    target="host",
    controls=(
        "iso27001:2022/A.5.10",
        "iso27001:2022/A.8.1",
        "iso27001:2022/A.5.14",
        "iso27001:2022/A.8.20",
        "nis2/12.2.2.b",
        "nis2/6.7.2.d",
        "nis2/6.7",
        "nis2/12.2",
    ),
    severity="medium",
    interval="6h",
    params=ForbiddenSoftwareParams,
    facts=("host.endpoint.installed_software", "host.endpoint.process_table"),
    needs=(
        "run dpkg-query/rpm/snap (no root needed)",
        "macOS: read /Applications, /Users/*/Applications and Homebrew's Cellar/Caskroom",
        "Windows: run PowerShell Get-ItemProperty on the uninstall registry keys",
        "list processes (psutil)",
    ),
    remediation="Uninstall the software (apt purge / dnf remove / snap remove / brew "
    "uninstall, delete the app bundle, or remove it in Windows' Apps & features) and use the "
    "approved file-sharing or remote-support service instead.",
)
def forbidden_software(facts: HostFacts, p: ForbiddenSoftwareParams) -> Iterator[Result]:
    problems: list[str] = []
    inventory: sw.SoftwareInventory | None = None
    try:
        inventory = facts.installed_software()
    except FactError as exc:
        problems.append(f"installed software: {exc}")
    else:
        problems += [f"{call}: {reason}" for call, reason in inventory.failures]
    try:
        table = facts.process_snapshot()
        processes = table.processes
        if table.processes_error:
            problems.append(f"process list: {table.processes_error}")
    except FactError as exc:
        processes = ()
        problems.append(f"process list: {exc}")
    sources = _sources(inventory)
    found_any = False
    for item in p.items:
        where: list[str] = []
        hits: list[dict[str, object]] = []
        if inventory is not None:
            for plist, name, version in inventory.find(item.packages):
                where.append(f"{plist.manager} package {name} {version}".rstrip())
                hits.append({"manager": plist.manager, "package": name, "version": version})
            for listed, prog in inventory.find_programs(item.programs):
                what = f"{listed.label} {prog.name} {prog.version}".rstrip()
                where.append(f"{what} ({prog.location})")
                hits.append(
                    {
                        "source": listed.source,
                        "program": prog.name,
                        "version": prog.version,
                        "location": prog.location,
                    }
                )
        for proc in processes:
            if sw.process_matches(proc.name, item.processes):
                where.append(f"process {proc.name} (pid {proc.pid}) running")
                hits.append({"process": proc.name, "pid": proc.pid, "exe": proc.exe})
        if where:
            found_any = True
            yield Result.failed(
                Resource("software", item.name),
                f"{item.name} found: {'; '.join(where)} ({item.reason})",
                observed={"found": hits, "sources": sources},
                expected={"installed": False, "running": False},
            )
    unread = list(inventory.unread) if inventory is not None else []
    if problems:
        yield Result.errored(
            TARGET,
            "could not look everywhere for forbidden software: " + "; ".join(problems),
            observed={"sources": sources, "not_read": unread},
        )
    elif not found_any:
        yield Result.passed(
            TARGET,
            f"none of the {len(p.items)} forbidden items is installed or running "
            f"({', '.join(_source_counts(sources))}; "
            f"{len(processes)} processes)" + _unread_text(unread),
            observed={"sources": sources, "processes": len(processes), "not_read": unread},
            expected={"forbidden": [i.name for i in p.items]},
        )


def _unread_text(unread: list[str]) -> str:
    """What the pass did not see (logged-off users' per-user installs on Windows)."""
    if not unread:
        return ""
    return "; " + "; ".join(unread)


# -- host.endpoint.screen_lock ------------------------------------------------------------


@dataclass(frozen=True)
class ScreenLockParams:
    #: The screen must lock after at most this long idle (blanking plus lock delay).
    max_idle_minutes: int = 15
    #: Users must not be able to change the settings (dconf locks, KConfig [$i], a macOS
    #: configuration profile; Windows' machine inactivity limit always is).
    require_enforced: bool = True


def _gnome(settings: dict[str, Setting], p: ScreenLockParams) -> Result:
    resource = Resource("desktop", "gnome")
    observed = {key.rsplit("/", 1)[1]: s.evidence() for key, s in settings.items()}
    expected = {
        "lock-enabled": True,
        "idle-activation-enabled": True,
        "idle_plus_lock_delay_seconds": f"1..{p.max_idle_minutes * 60}",
        "enforced": p.require_enforced,
    }
    by_name = {key.rsplit("/", 1)[1]: s for key, s in settings.items()}
    lock = gvariant_bool(by_name["lock-enabled"].value)
    activation = gvariant_bool(by_name["idle-activation-enabled"].value)
    idle = gvariant_int(by_name["idle-delay"].value)
    delay = gvariant_int(by_name["lock-delay"].value)
    if lock is None or activation is None or idle is None or delay is None:
        bad = [k for k, s in by_name.items() if s.value in ("", None)] or list(by_name)
        return Result.errored(
            resource,
            f"GNOME screen-lock values are not readable as booleans/integers ({', '.join(bad)})",
            observed=observed,
            expected=expected,
        )
    problems: list[str] = []
    if not lock:
        problems.append("lock-enabled is false")
    if not activation:
        problems.append("idle-activation-enabled is false, so the screen never blanks on idle")
    if idle == 0:
        problems.append("idle-delay is 0 (never idle)")
    elif idle + delay > p.max_idle_minutes * 60:
        problems.append(
            f"locks after {(idle + delay) / 60:g} min idle (at most {p.max_idle_minutes} allowed)"
        )
    loose = [name for name, s in by_name.items() if not s.enforced]
    if p.require_enforced and loose:
        problems.append(f"not locked by dconf, users can change: {', '.join(loose)}")
    summary = f"locks after {(idle + delay) / 60:g} min idle" if lock and idle else "no idle lock"
    if problems:
        return Result.failed(
            resource, f"GNOME: {'; '.join(problems)}", observed=observed, expected=expected
        )
    how = "enforced by dconf locks" if not loose else "not enforced (allowed by parameter)"
    return Result.passed(resource, f"GNOME: {summary}, {how}", observed=observed, expected=expected)


#: KDE Plasma's defaults when kscreenlockerrc does not set a key
#: (KDE/kscreenlocker kcfg/kscreenlockersettings.kcfg): Timeout in minutes, LockGrace in s.
KDE_DEFAULTS = {"Autolock": "true", "Lock": "true", "Timeout": "5", "LockGrace": "5"}


def _kde(facts: HostFacts, p: ScreenLockParams) -> Result:
    resource = Resource("desktop", "kde")
    config = facts.kde_screen_lock()
    values = {k: config.values.get(k, (v, False)) for k, v in KDE_DEFAULTS.items()}
    observed = {
        "file": "/etc/xdg/kscreenlockerrc" if config.file_found else None,
        **{k: {"value": v, "enforced": immutable} for k, (v, immutable) in values.items()},
    }
    expected = {
        "Autolock": True,
        "Lock": True,
        "minutes": f"1..{p.max_idle_minutes}",
        "enforced": p.require_enforced,
    }
    autolock = values["Autolock"][0].lower() == "true"
    locks = values["Lock"][0].lower() == "true"
    try:
        minutes = int(values["Timeout"][0])
        grace = int(values["LockGrace"][0])
    except ValueError:
        return Result.errored(
            resource, "KDE: Timeout/LockGrace are not integers", observed=observed
        )
    problems: list[str] = []
    if not autolock:
        problems.append("Autolock is false")
    if not locks:
        problems.append("Lock is false, the screen saver starts without locking")
    if minutes == 0:
        problems.append("Timeout is 0 (never idle)")
    elif minutes * 60 + grace > p.max_idle_minutes * 60:
        problems.append(f"locks after {minutes} min idle (at most {p.max_idle_minutes} allowed)")
    loose = [k for k in ("Autolock", "Lock", "Timeout") if not values[k][1]]
    if p.require_enforced and loose:
        problems.append(f"not immutable ([$i]), users can change: {', '.join(loose)}")
    if problems:
        return Result.failed(
            resource, f"KDE: {'; '.join(problems)}", observed=observed, expected=expected
        )
    how = "immutable for users" if not loose else "not enforced (allowed by parameter)"
    return Result.passed(
        resource,
        f"KDE: locks after {minutes} min idle, {how}",
        observed=observed,
        expected=expected,
    )


def _macos(lock: MacScreenLock, p: ScreenLockParams) -> Result:
    resource = Resource("desktop", "macos")
    observed: dict[str, object] = {k: s.evidence() for k, s in lock.settings.items()}
    observed |= {"profile": lock.profile, "console_user": lock.console_user}
    expected = {
        "askForPassword": True,
        "idle_plus_delay_seconds": f"1..{p.max_idle_minutes * 60}",
        "enforced": p.require_enforced,
    }
    idle, ask = lock.seconds("idleTime"), lock.flag("askForPassword")
    delay = lock.seconds("askForPasswordDelay")
    problems: list[str] = []
    if ask is False:
        problems.append("no password is required after the screen saver starts")
    if idle == 0:
        problems.append("idleTime is 0 (the screen saver never starts)")
    elif idle is not None and delay is not None and idle + delay > p.max_idle_minutes * 60:
        problems.append(
            f"locks after {(idle + delay) / 60:g} min idle (at most {p.max_idle_minutes} allowed)"
        )
    loose = [k for k, s in lock.settings.items() if not s.enforced]
    if p.require_enforced and loose:
        problems.append(f"not set by a configuration profile, users can change: {', '.join(loose)}")
    unread: dict[str, list[str]] = {}  # why a value is unknown -> the keys
    for key, setting in lock.settings.items():
        if not setting.value and not (key == "askForPasswordDelay" and ask is False):
            unread.setdefault(setting.source, []).append(key)
    unknown = [f"{', '.join(keys)} unknown ({why})" for why, keys in unread.items()]
    if problems:
        text = "; ".join(problems + unknown)
        return Result.failed(resource, f"macOS: {text}", observed=observed, expected=expected)
    if unknown or idle is None or delay is None:
        return Result.errored(
            resource,
            f"macOS: cannot tell when the screen locks: {'; '.join(unknown)}",
            observed=observed,
            expected=expected,
        )
    how = "not enforced (allowed by parameter)" if loose else "enforced by a configuration profile"
    return Result.passed(
        resource,
        f"macOS: locks after {(idle + delay) / 60:g} min idle, {how}",
        observed=observed,
        expected=expected,
    )


def _windows(limit: InactivityLimit, p: ScreenLockParams) -> Result:
    """The machine inactivity limit is HKLM policy: always enforced, so no parameter loosens it."""
    resource = Resource("desktop", "windows")
    observed = {"InactivityTimeoutSecs": limit.seconds, "source": limit.source}
    expected = {"InactivityTimeoutSecs": f"1..{p.max_idle_minutes * 60}"}
    if limit.seconds is None:
        problem = (
            "no machine inactivity limit is set (Interactive logon: Machine inactivity limit); "
            "per-user screen-saver settings are not policy this agent can read"
        )
    elif limit.seconds == 0:
        problem = "the machine inactivity limit is 0, sessions never lock when idle"
    elif limit.seconds > p.max_idle_minutes * 60:
        problem = (
            f"sessions lock after {limit.seconds / 60:g} min idle "
            f"(at most {p.max_idle_minutes} allowed)"
        )
    else:
        return Result.passed(
            resource,
            f"Windows: sessions lock after {limit.seconds / 60:g} min idle "
            "(machine inactivity limit, a policy users cannot change)",
            observed=observed,
            expected=expected,
        )
    return Result.failed(resource, f"Windows: {problem}", observed=observed, expected=expected)


def _no_desktop_reason(desktop: Desktop) -> str:
    target = f"; default target {desktop.default_target}" if desktop.default_target else ""
    return (
        "no desktop: no display manager (gdm, sddm, lightdm, lxdm, xdm) and no session type in "
        f"/usr/share/xsessions or /usr/share/wayland-sessions{target}"
    )


@check(
    id="host.endpoint.screen_lock",
    title="Desktops lock the screen after a short idle time, enforced by policy",
    target="host",
    controls=(
        "iso27001:2022/A.8.1",
        "iso27001:2022/A.8.20",
        "iso27001:2022/A.5.14",
        "iso27001:2022/A.5.10",
        "nis2/11.6.2.e",
        "nis2/6.7",
        "nis2/12.2",
    ),
    severity="medium",
    interval="6h",
    params=ScreenLockParams,
    facts=(
        "host.endpoint.desktop",
        "host.endpoint.gnome_screen_lock",
        "host.endpoint.kde_screen_lock",
        "host.endpoint.macos_screen_lock",
        "host.endpoint.windows_screen_lock",
    ),
    needs=(
        "read /etc/dconf, /etc/xdg and /usr/share/*sessions (no root needed)",
        "macOS: root, to run sysadminctl and defaults as the console user",
        "Windows: run reg query on HKLM (no elevation needed)",
    ),
    remediation="GNOME: set lock-enabled=true and idle-delay in /etc/dconf/db/local.d/, list "
    "the keys in /etc/dconf/db/local.d/locks/ and run dconf update; KDE: set [Daemon][$i] "
    "Autolock=true and Timeout in /etc/xdg/kscreenlockerrc; macOS: install a configuration "
    "profile with a com.apple.screensaver payload (idleTime, askForPassword true, "
    "askForPasswordDelay 0); Windows: set 'Interactive logon: Machine inactivity limit' "
    "(GPO or Intune) to at most the allowed seconds, not 0.",
)
def screen_lock(facts: HostFacts, p: ScreenLockParams) -> Iterator[Result]:
    try:
        desktop = facts.desktop()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not tell whether this host has a desktop: {exc}")
        return
    if not desktop.present:
        yield Result.not_applicable(TARGET, _no_desktop_reason(desktop))
        return
    if not desktop.kinds:
        yield Result.errored(
            TARGET,
            f"display manager {', '.join(desktop.display_managers)} is installed but no session "
            "type is, so the desktop's screen lock cannot be read",
        )
        return
    for kind in desktop.kinds:
        try:
            if kind == "gnome":
                yield _gnome(facts.gnome_screen_lock(), p)
            elif kind == "kde":
                yield _kde(facts, p)
            elif kind == "macos":
                yield _macos(facts.macos_screen_lock(), p)
            elif kind == "windows":
                yield _windows(facts.windows_screen_lock(), p)
            else:
                others = [s for s, k in desktop.sessions if k == "other"]
                yield Result.errored(
                    Resource("desktop", "other"),
                    f"screen lock of session(s) {', '.join(others)} is not read by this version",
                )
        except FactError as exc:
            yield Result.errored(
                Resource("desktop", kind), f"could not read the {kind} screen-lock policy: {exc}"
            )
