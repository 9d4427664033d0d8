"""Patch facts: pending security updates, package index age, kernels, automatic updates,
the OS release and its vendor support.

Package managers are asked read-only and without refreshing anything (apt simulates,
dnf and zypper read their caches), through :meth:`cached_command` so that slow queries
are reused for the configured interval; every answer keeps when it was produced. The
managers do not say since when an update has been pending, so each pending update's
first sighting is kept in the agent's memory (namespace ``patch.pending.<manager>``).

macOS (``softwareupdate``, see :mod:`.patching_macos`) and Windows (the Windows Update
Agent and the registry, see :mod:`.patching_windows`) answer the same facts; their
"package manager" is ``softwareupdate`` and ``windows-update``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta

from tillsyn.collectors._facts import fact
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactParseError,
    FactPermissionDenied,
    FactTimeout,
    FactUnavailable,
)
from tillsyn.collectors.host._base import LINUX, MACOS, WINDOWS, HostBase
from tillsyn.collectors.host.patching_apt import (
    parse_apt_config,
    parse_apt_simulation,
    parse_release_header,
    periodic_enabled,
)
from tillsyn.collectors.host.patching_dnf import (
    highest_severity,
    parse_automatic_conf,
    parse_check_update,
    parse_needs_restarting,
    parse_updateinfo,
    refuse_ignored_repositories,
)
from tillsyn.collectors.host.patching_model import (
    AutoUpdates,
    KernelState,
    OsRelease,
    OsSupport,
    PackageIndex,
    PendingUpdate,
    PendingUpdates,
    RebootFlag,
)
from tillsyn.collectors.host.patching_os import (
    load_eol_table,
    lookup,
    parse_os_release,
    parse_sw_vers,
)
from tillsyn.collectors.host.patching_zypper import OK_CODES as ZYPPER_OK
from tillsyn.collectors.host.patching_zypper import parse_list_patches

# macOS and Windows modules are imported where used, so a Linux agent never loads them.

APT_SIMULATE = ["apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"]
APT_LISTS = "/var/lib/apt/lists"
DNF_CHECK = ["-C", "check-update", "--security"]
DNF_UPDATEINFO = ["-C", "-q", "updateinfo", "list", "--security"]
ZYPPER_PATCHES = [
    "zypper",
    "--non-interactive",
    "--no-refresh",
    "list-patches",
    "--category",
    "security",
]
UU_STATUS = ["dpkg-query", "-W", "-f", "${db:Status-Status}\n", "unattended-upgrades"]

#: os-release ID / ID_LIKE words -> the package manager that patches that family.
FAMILIES = {
    "debian": "apt",
    "ubuntu": "apt",
    "rhel": "dnf",
    "fedora": "dnf",
    "centos": "dnf",
    "suse": "zypper",
    "sles": "zypper",
    "opensuse": "zypper",
}
LOOKED_FOR = (
    "apt (ID or ID_LIKE debian/ubuntu), dnf/yum (rhel/fedora/centos), "
    "zypper (suse/sles/opensuse) in /etc/os-release"
)
DAY = timedelta(days=1)
#: systemctl is-enabled answers that mean the unit will be started.
_ENABLED_STATES = {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated"}


def update_key(manager: str, update: PendingUpdate) -> str:
    """How an update is named in memory and evidence: ``libssl3`` (apt, which adds
    ``:i386`` to foreign architectures itself), ``openssl.x86_64`` (dnf), the patch (zypper).

    By package, not version: a newer fix for a still-unpatched package keeps the clock.
    """
    return f"{update.package}.{update.arch}" if manager in ("dnf", "yum") else update.package


class PatchFacts(HostBase):
    # -- the OS release ---------------------------------------------------------------

    @fact("host.patch.os_release")
    def os_release(self) -> OsRelease:
        """os-release on Linux (/etc, else /usr/lib), ``sw_vers`` on macOS."""
        fact_name = "host.patch.os_release"
        self.require_platform(fact_name, LINUX, MACOS)
        if self.platform == MACOS:
            result = self.command(fact_name, ["sw_vers"])
            return parse_sw_vers(result.stdout, "sw_vers")
        for path in ("/etc/os-release", "/usr/lib/os-release"):
            if self.path(path).exists():
                return parse_os_release(self.read_text(fact_name, path), path)
        raise FactUnavailable(fact_name, "/etc/os-release", "neither os-release file exists")

    @fact("host.patch.os_support")
    def os_support(self) -> OsSupport:
        """The release looked up in the shipped end-of-life table."""
        release = self.os_release()
        updated, entries = load_eol_table()
        entry, key = lookup(entries, release.id, release.version_id)
        return OsSupport(release, entry, updated, key)

    @fact("host.patch.package_manager")
    def package_manager(self) -> str:
        """apt, dnf (yum on RHEL 7) or zypper, from the family os-release names;
        softwareupdate on macOS, windows-update on Windows."""
        fact_name = "host.patch.package_manager"
        if self.platform == MACOS:
            return "softwareupdate"
        if self.platform == WINDOWS:
            return "windows-update"
        self.require_linux(fact_name)
        release = self.os_release()
        for word in (release.id, *release.id_like):
            if manager := FAMILIES.get(word):
                return manager
        raise FactUnavailable(
            fact_name,
            release.source,
            f"no supported package manager for {release.pretty_name}: looked for {LOOKED_FOR}",
        )

    # -- pending security updates -----------------------------------------------------

    @fact("host.patch.package_index")
    def package_index(self) -> PackageIndex:
        """The (In)Release headers under /var/lib/apt/lists: what apt last downloaded."""
        fact_name = "host.patch.package_index"
        directory = self.path(APT_LISTS)
        try:
            names = sorted(
                n for n in os.listdir(directory) if n.endswith(("_InRelease", "_Release"))
            )
        except PermissionError as exc:
            raise FactPermissionDenied(fact_name, APT_LISTS, "permission denied") from exc
        except FileNotFoundError as exc:
            raise FactUnavailable(fact_name, APT_LISTS, "does not exist") from exc
        files = tuple(
            parse_release_header(self.read_text(fact_name, f"{APT_LISTS}/{n}"), n) for n in names
        )
        return PackageIndex(APT_LISTS, files)

    @fact("host.patch.pending_security_updates")
    def pending_security_updates(self) -> PendingUpdates:
        """Security updates the package manager would install, each with its first sighting."""
        manager = self.package_manager()
        if manager == "apt":
            found = self._apt_pending()
        elif manager == "dnf":
            found = self._dnf_pending()
        elif manager == "softwareupdate":
            found = self._softwareupdate_pending()
        elif manager == "windows-update":
            found = self._windows_update_pending()
        else:
            found = self._zypper_pending()
        keys = {update_key(manager, u): u for u in found.updates}
        seen = self.memory.first_seen(f"patch.pending.{manager}", keys, self.now)
        # A parser may know an earlier bound (Windows: when Microsoft released the update).
        updates = tuple(
            replace(u, first_seen=min(seen[k], u.first_seen) if u.first_seen else seen[k])
            for k, u in sorted(keys.items())
        )
        return replace(found, updates=updates)

    def _apt_pending(self) -> PendingUpdates:
        fact_name = "host.patch.pending_security_updates"
        call = " ".join(APT_SIMULATE)
        cached = self.cached_command(fact_name, APT_SIMULATE)
        updates = parse_apt_simulation(cached.result.stdout, call)
        return PendingUpdates("apt", call, updates, cached.collected_at, cached.reused)

    def _dnf_pending(self) -> PendingUpdates:
        """dnf, or yum where there is no dnf (RHEL 7): same options, same output."""
        fact_name = "host.patch.pending_security_updates"
        manager = "dnf"
        try:
            cached = self.cached_command(fact_name, ["dnf", *DNF_CHECK], ok_codes=(0, 100))
        except FactUnavailable:
            manager = "yum"
            cached = self.cached_command(fact_name, ["yum", *DNF_CHECK], ok_codes=(0, 100))
        call = " ".join([manager, *DNF_CHECK])
        refuse_ignored_repositories(cached.result.stderr, call)
        listed = parse_check_update(cached.result.stdout, cached.result.returncode, call)
        advisories: dict[tuple[str, str], list[tuple[str, str]]] = {}
        if listed.packages:
            info_argv = [manager, *DNF_UPDATEINFO]
            info = self.cached_command(fact_name, info_argv)
            advisories = parse_updateinfo(info.result.stdout, " ".join(info_argv))
        updates = []
        for package in listed.packages:
            notes = advisories.get((package.package, package.arch), [])
            updates.append(
                replace(
                    package,
                    advisories=tuple(sorted({a for a, _ in notes})),
                    severity=highest_severity([s for _, s in notes]),
                )
            )
        return PendingUpdates(
            manager,
            call,
            tuple(updates),
            cached.collected_at,
            cached.reused,
            listed.metadata_age_seconds,
        )

    def _zypper_pending(self) -> PendingUpdates:
        fact_name = "host.patch.pending_security_updates"
        call = " ".join(ZYPPER_PATCHES)
        cached = self.cached_command(fact_name, ZYPPER_PATCHES, ok_codes=ZYPPER_OK)
        result = cached.result
        updates = parse_list_patches(result.stdout, result.stderr, result.returncode, call)
        return PendingUpdates("zypper", call, updates, cached.collected_at, cached.reused)

    def _softwareupdate_pending(self) -> PendingUpdates:
        from tillsyn.collectors.host.patching_macos import (
            SOFTWAREUPDATE_LIST,
            parse_softwareupdate_list,
        )

        fact_name = "host.patch.pending_security_updates"
        call = " ".join(SOFTWAREUPDATE_LIST)
        cached = self.cached_command(fact_name, SOFTWAREUPDATE_LIST)
        result = cached.result
        updates = parse_softwareupdate_list(result.stdout, result.stderr, call)
        return PendingUpdates("softwareupdate", call, updates, cached.collected_at, cached.reused)

    def _windows_update_pending(self) -> PendingUpdates:
        from tillsyn.collectors.host.patching_windows import POWERSHELL_WU, WU_CALL, parse_wu_search

        fact_name = "host.patch.pending_security_updates"
        try:
            cached = self.cached_command(fact_name, POWERSHELL_WU)
        except FactCommandFailed as exc:
            # The argv holds the whole script: name the call briefly instead.
            raise FactCommandFailed(fact_name, [WU_CALL], exc.returncode, exc.stderr) from exc
        except (FactUnavailable, FactPermissionDenied, FactTimeout) as exc:
            raise type(exc)(fact_name, WU_CALL, exc.reason) from exc
        result = cached.result
        updates = parse_wu_search(result.stdout, result.stderr, WU_CALL)
        for update in updates:
            if update.first_seen is not None and update.first_seen > cached.collected_at + DAY:
                # A Buddhist (Thai) or Hijri year from a culture-formatted date, or a
                # clock gone wrong: either way not a release time to count an SLA from.
                raise FactParseError(
                    fact_name,
                    WU_CALL,
                    f"{update.package}: LastDeploymentChangeTime lies in the future",
                    f"{update.first_seen:%Y-%m-%dT%H:%M:%SZ}",
                )
        return PendingUpdates(
            "windows-update", WU_CALL, updates, cached.collected_at, cached.reused
        )

    # -- reboot -----------------------------------------------------------------------

    @fact("host.patch.kernel_state")
    def kernel_state(self) -> KernelState:
        """The running kernel release and the kernels installed under /boot or in modules."""
        fact_name = "host.patch.kernel_state"
        self.require_linux(fact_name)
        running = self.read_text(fact_name, "/proc/sys/kernel/osrelease").strip()
        if not running:
            raise FactParseError(fact_name, "/proc/sys/kernel/osrelease", "empty")
        boot = self._listdir(fact_name, "/boot")
        kernels = tuple(
            sorted(
                n[len("vmlinuz-") :] for n in boot if n.startswith("vmlinuz-") and "rescue" not in n
            )
        )
        if kernels:
            return KernelState(running, kernels, "/boot/vmlinuz-*")
        for modules in ("/lib/modules", "/usr/lib/modules"):
            # A module tree with a vmlinuz (Fedora, RHEL) or modules.dep is a kernel.
            versions = tuple(
                sorted(
                    v
                    for v in self._listdir(fact_name, modules)
                    if self.path(f"{modules}/{v}/modules.dep").exists()
                    or self.path(f"{modules}/{v}/vmlinuz").exists()
                )
            )
            if versions:
                return KernelState(running, versions, f"{modules}/*")
        return KernelState(running, (), "")

    def _listdir(self, fact_name: str, path: str) -> list[str]:
        try:
            return os.listdir(self.path(path))
        except FileNotFoundError:
            return []
        except PermissionError as exc:
            raise FactPermissionDenied(fact_name, path, "permission denied") from exc

    @fact("host.patch.reboot_flag")
    def reboot_flag(self) -> RebootFlag:
        """Debian/Ubuntu: /run/reboot-required, written by kernel and library upgrades.
        Windows: Windows Update's RebootRequired registry key."""
        fact_name = "host.patch.reboot_flag"
        if self.platform == WINDOWS:
            from tillsyn.collectors.host.patching_windows import REBOOT_KEY
            from tillsyn.collectors.host.windows_registry import key_exists

            argv = ["reg", "query", REBOOT_KEY]
            result = self.command(fact_name, argv, ok_codes=(0, 1))
            return RebootFlag(key_exists(result.returncode, result.stderr, argv, fact_name))
        self.require_linux(fact_name)
        if not self.path("/run/reboot-required").exists():
            return RebootFlag(False)
        packages: tuple[str, ...] = ()
        if self.path("/run/reboot-required.pkgs").exists():
            text = self.read_text(fact_name, "/run/reboot-required.pkgs")
            packages = tuple(dict.fromkeys(p.strip() for p in text.splitlines() if p.strip()))
        return RebootFlag(True, packages)

    @fact("host.patch.needs_restarting")
    def needs_restarting(self) -> tuple[bool, tuple[str, ...]]:
        """RHEL family: ``needs-restarting -r`` (dnf-utils); exit 1 means reboot needed."""
        fact_name = "host.patch.needs_restarting"
        argv = ["needs-restarting", "-r"]
        result = self.command(fact_name, argv, ok_codes=(0, 1))
        return parse_needs_restarting(result.stdout, result.returncode, " ".join(argv))

    # -- automatic updates ------------------------------------------------------------

    def unit_state(self, fact_name: str, unit: str) -> str:
        """``systemctl is-enabled UNIT`` as one word; a unit that does not exist is not-found."""
        argv = ["systemctl", "is-enabled", unit]
        result = self.command(fact_name, argv, ok_codes=(0, 1))
        state = result.stdout.strip()
        if not state and "No such file or directory" in result.stderr:
            return "not-found"
        if not state or " " in state:
            raise FactParseError(fact_name, " ".join(argv), "unexpected answer", result.stderr)
        return state

    @fact("host.patch.auto_updates")
    def auto_updates(self) -> AutoUpdates:
        fact_name = "host.patch.auto_updates"
        manager = self.package_manager()
        if manager == "apt":
            return self._unattended_upgrades()
        if manager == "dnf":
            return self._dnf_automatic()
        if manager == "softwareupdate":
            return self._macos_automatic()
        if manager == "windows-update":
            return self._windows_automatic()
        raise FactUnavailable(
            fact_name, manager, f"automatic updates are not implemented for {manager} yet"
        )

    def _unattended_upgrades(self) -> AutoUpdates:
        fact_name = "host.patch.auto_updates"
        status = self.command(fact_name, UU_STATUS, ok_codes=(0, 1))
        if status.returncode == 1 and "no packages found" not in status.stderr:
            raise FactCommandFailed(fact_name, UU_STATUS, 1, status.stderr)
        installed = status.returncode == 0 and status.stdout.strip() == "installed"
        config = parse_apt_config(
            self.command(fact_name, ["apt-config", "dump"]).stdout, "apt-config dump"
        )
        call = "apt-config dump"
        upgrade = config.get("APT::Periodic::Unattended-Upgrade")
        lists = config.get("APT::Periodic::Update-Package-Lists")
        origins = config.items("Unattended-Upgrade::Origins-Pattern") + config.items(
            "Unattended-Upgrade::Allowed-Origins"
        )
        timers = {
            unit: self.unit_state(fact_name, unit)
            for unit in ("apt-daily.timer", "apt-daily-upgrade.timer")
        }
        problems = []
        if not installed:
            problems.append("the unattended-upgrades package is not installed")
        if not periodic_enabled(upgrade, "APT::Periodic::Unattended-Upgrade", call):
            problems.append(f"APT::Periodic::Unattended-Upgrade is {upgrade or 'unset'}")
        if not periodic_enabled(lists, "APT::Periodic::Update-Package-Lists", call):
            problems.append(f"APT::Periodic::Update-Package-Lists is {lists or 'unset'}")
        if installed and not any("security" in o.lower() for o in origins):
            problems.append("no allowed origin names a security suite")
        problems += [f"{u} is {s}" for u, s in timers.items() if s not in _ENABLED_STATES]
        settings = {
            "package": "installed" if installed else "not installed",
            "APT::Periodic::Unattended-Upgrade": upgrade or "",
            "APT::Periodic::Update-Package-Lists": lists or "",
            "origins": "; ".join(origins),
            **timers,
        }
        return AutoUpdates("unattended-upgrades", settings, tuple(problems))

    def _dnf_automatic(self) -> AutoUpdates:
        fact_name = "host.patch.auto_updates"
        timers = {
            unit: self.unit_state(fact_name, unit)
            for unit in ("dnf-automatic.timer", "dnf-automatic-install.timer")
        }
        conf_path = "/etc/dnf/automatic.conf"
        conf = {"apply_updates": "absent", "upgrade_type": "absent"}
        if self.path(conf_path).exists():
            conf = parse_automatic_conf(self.read_text(fact_name, conf_path), conf_path)
        install_timer = timers["dnf-automatic-install.timer"] in _ENABLED_STATES
        plain_timer = timers["dnf-automatic.timer"] in _ENABLED_STATES
        problems: list[str] = []
        if all(s == "not-found" for s in timers.values()):
            problems.append("dnf-automatic is not installed (no dnf-automatic timers)")
        elif not install_timer and not plain_timer:
            problems.append("no dnf-automatic timer is enabled")
        elif not install_timer and conf["apply_updates"] != "yes":
            problems.append(
                f"dnf-automatic.timer runs but {conf_path} apply_updates is "
                f"{conf['apply_updates']}, so updates are only downloaded or reported"
            )
        return AutoUpdates("dnf-automatic", {**timers, **conf}, tuple(problems))

    def _macos_automatic(self) -> AutoUpdates:
        """The Software Update preferences; a missing file or key counts as not enabled."""
        from tillsyn.collectors.host.patching_macos import (
            DEFAULTS_READ,
            PREFS_DOMAIN,
            auto_update_problems,
            parse_defaults,
        )

        fact_name = "host.patch.auto_updates"
        call = " ".join(DEFAULTS_READ)
        result = self.command(fact_name, DEFAULTS_READ, ok_codes=(0, 1))
        if result.returncode == 1:
            if "does not exist" not in result.stderr:
                raise FactCommandFailed(fact_name, DEFAULTS_READ, 1, result.stderr)
            values: dict[str, str] = {}
        else:
            values = parse_defaults(result.stdout, call)
        settings, problems = auto_update_problems(values, call)
        if not values:
            settings["preferences"] = f"{PREFS_DOMAIN} does not exist"
        return AutoUpdates("macOS Software Update", settings, tuple(problems))

    def _windows_automatic(self) -> AutoUpdates:
        """The Automatic Updates group policy, the Windows Update service's start type and
        the pause settings of Settings > Windows Update.

        No policy key means Windows' defaults, which install updates only while the
        wuauserv service may start and nobody paused updates; both are read, never assumed.
        """
        from tillsyn.collectors.host.patching_windows import (
            AU_KEY,
            UX_SETTINGS_KEY,
            UX_SETTINGS_QUERY,
            WUAUSERV_KEY,
            WUAUSERV_START_QUERY,
            au_policy_problems,
            pause_problems,
            service_problems,
        )
        from tillsyn.collectors.host.windows_registry import key_exists, parse_reg_query, reg_dword

        fact_name = "host.patch.auto_updates"
        argv = ["reg", "query", AU_KEY]
        result = self.command(fact_name, argv, ok_codes=(0, 1))
        values = None
        if key_exists(result.returncode, result.stderr, argv, fact_name):
            values = parse_reg_query(result.stdout, AU_KEY, " ".join(argv), fact_name)
        settings, problems = au_policy_problems(values, " ".join(argv))
        argv = WUAUSERV_START_QUERY
        call = " ".join(argv)
        result = self.command(fact_name, argv, ok_codes=(0, 1))
        start = None
        if key_exists(result.returncode, result.stderr, argv, fact_name):
            start = reg_dword(
                parse_reg_query(result.stdout, WUAUSERV_KEY, call, fact_name),
                "Start",
                call,
                fact_name,
            )
            if start is None:
                raise FactParseError(fact_name, call, "no Start value", result.stdout)
        service, service_problem = service_problems(start)
        argv = UX_SETTINGS_QUERY
        call = " ".join(argv)
        result = self.command(fact_name, argv, ok_codes=(0, 1))
        ux = None
        if key_exists(result.returncode, result.stderr, argv, fact_name):
            ux = parse_reg_query(result.stdout, UX_SETTINGS_KEY, call, fact_name)
        pause, pause_problem = pause_problems(ux, self.now, call)
        problems += service_problem + pause_problem
        if not problems and "policy" in settings:
            settings["policy"] += f" ({service['wuauserv']}, updates not paused)"
        return AutoUpdates("Windows Update", {**settings, **service, **pause}, tuple(problems))
