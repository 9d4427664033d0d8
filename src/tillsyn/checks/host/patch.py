"""Patch level of the host: pending security updates, reboots, automatic updates, OS support.

``host.patch.security_updates`` passes for each pending security update still within its
SLA (counted from when this agent first saw it pending, kept in its memory), and on the
package manager when nothing is pending. It keeps package, installed and candidate
versions, origin or advisory, severity, first sighting, age and when the package manager
answered. For apt it also judges the package lists: a pass from month-old lists proves
nothing, so lists older than ``max_index_age_days`` (by the signed Date of the newest
Release file), or lists without a security suite, fail on their own.

On macOS every *recommended* ``softwareupdate --list`` item counts as a pending security
update (Apple does not flag security updates separately; the evidence says so), with the
default ``sla_days``. On Windows the Windows Update Agent's pending software updates that
Microsoft rates (MsrcSeverity) or files under the "Security Updates" classification (by
its id, not its localised name) count, severity-rated like dnf's, including updates a
user hid (counted as pending, and the result says they are hidden); an update's first
sighting is never later than Microsoft's release of it. A search that printed nothing or
did not succeed (ResultCode other than 2) is an error.

``host.patch.reboot_required`` passes when the running kernel is the newest installed one
of its flavour and, on Debian/Ubuntu, /run/reboot-required is absent (RHEL family:
``needs-restarting -r`` says no reboot is needed). A kernel that is not packaged here
(containers, VMs booted with an external kernel) is not applicable, with that reason.
Windows: fails while Windows Update's RebootRequired registry key exists. macOS: not
applicable (no separately installed kernels; an update that needs a restart is still
pending and reported by ``host.patch.security_updates``).

``host.patch.auto_updates`` passes when security updates are installed without a person:
unattended-upgrades installed, enabled in APT::Periodic with a security origin and its
timers enabled (Debian/Ubuntu), or dnf-automatic set to apply updates (RHEL family).
macOS: AutomaticCheckEnabled, AutomaticDownload, AutomaticallyInstallMacOSUpdates,
CriticalUpdateInstall and ConfigDataInstall all 1 in /Library/Preferences/
com.apple.SoftwareUpdate (a missing key is read as not enabled). Windows: the Automatic
Updates policy does not set NoAutoUpdate and its AUOptions is 4 (download and install on a
schedule), or there is no policy and Windows Update's defaults apply (said in the result);
either way the Windows Update service (wuauserv) must not be disabled and quality updates
must not be paused into the future (Settings > Windows Update, UX\\Settings).

``host.patch.os_supported`` passes while the OS release is inside its vendor's support per
the shipped end-of-life table, and fails once support has ended or ends within
``fail_within_days`` (30 by default: an OS upgrade cannot be planned in less). Only the
vendor's regular support counts unless ``count_extended_support`` (paid ESM, LTSS, ELS, or
Debian LTS) is set. A release the table does not list is an error naming the table's date.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from tillsyn.checks._format import age_text
from tillsyn.checks._result import TARGET, Resource, Result
from tillsyn.checks._spec import NoParams, check
from tillsyn.collectors.errors import FactError
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.patching import update_key
from tillsyn.collectors.host.patching_model import (
    PackageIndex,
    PendingUpdate,
    kernel_flavour,
    version_key,
)

APPLE_NOTE = (
    "Apple does not flag security updates separately: every recommended softwareupdate item "
    "is counted as a pending security update"
)
WINDOWS_REBOOT_KEY = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
)


@dataclass(frozen=True)
class SecurityUpdatesParams:
    #: Days a security update may stay pending when the manager gives no severity.
    sla_days: float = 14.0
    #: Days for updates the manager rates critical (dnf, zypper).
    critical_sla_days: float = 7.0
    #: Days for updates rated important.
    important_sla_days: float = 14.0
    #: The package lists (apt) or metadata cache (dnf) may be at most this old.
    max_index_age_days: float = 7.0


def _sla(update: PendingUpdate, p: SecurityUpdatesParams) -> float:
    if update.severity == "critical":
        return p.critical_sla_days
    if update.severity == "important":
        return p.important_sla_days
    return p.sla_days


def _index_result(facts: HostFacts, index: PackageIndex, p: SecurityUpdatesParams) -> Result:
    resource = Resource("package_index", "apt")
    expected = {"max_age_days": p.max_index_age_days, "security_suite": True}
    newest = index.newest_at
    observed: dict[str, object] = {
        "directory": index.directory,
        "files": [{"name": f.name, "date": f.date, "suite": f.suite} for f in index.files],
        "security_suites": list(index.security_suites),
        "newest_at": newest,
    }
    if newest is None:
        return Result.failed(
            resource,
            f"apt has no package lists in {index.directory}: apt-get update has never run",
            observed=observed,
            expected=expected,
        )
    age = facts.now - newest
    observed["age_days"] = round(age.total_seconds() / 86400, 2)
    if age > timedelta(days=p.max_index_age_days):
        return Result.failed(
            resource,
            f"apt package lists are {age_text(age)} old (newest signed {newest:%Y-%m-%d}): "
            f"pending updates newer than that are unseen",
            observed=observed,
            expected=expected,
        )
    if not index.security_suites:
        return Result.failed(
            resource,
            "no apt source is a security suite (-security): security updates cannot arrive",
            observed=observed,
            expected=expected,
        )
    suites = ", ".join(index.security_suites)
    return Result.passed(
        resource,
        f"apt package lists are {age_text(age)} old and include {suites}",
        observed=observed,
        expected=expected,
    )


@check(
    id="host.patch.security_updates",
    title="Security updates are installed within their SLA",
    target="host",
    controls=(
        "iso27001:2022/A.8.8",
        "iso27001:2022/A.8.19",
        "iso27001:2022/A.8.32",
        "nis2/6.6.1.a",
        "nis2/6.10.2.c",
    ),
    severity="high",
    interval="6h",
    params=SecurityUpdatesParams,
    facts=(
        "host.patch.package_manager",
        "host.patch.package_index",
        "host.patch.pending_security_updates",
    ),
    needs=(
        "run apt-get -s / dnf -C / zypper --no-refresh (no root needed for apt and dnf); "
        "softwareupdate --list on macOS; PowerShell and the Windows Update Agent on Windows",
    ),
    remediation="Install the pending security updates (apt-get upgrade, dnf upgrade --security, "
    "zypper patch --category security, softwareupdate --install --recommended, Windows "
    "Update) and keep the package index refreshed daily.",
)
def security_updates(facts: HostFacts, p: SecurityUpdatesParams) -> Iterator[Result]:
    try:
        manager = facts.package_manager()
    except FactError as exc:
        yield Result.errored(TARGET, f"no supported package manager found: {exc}")
        return
    if manager == "apt":
        try:
            yield _index_result(facts, facts.package_index(), p)
        except FactError as exc:
            yield Result.errored(
                Resource("package_index", "apt"), f"could not read apt's package lists: {exc}"
            )
    try:
        found = facts.pending_security_updates()
    except FactError as exc:
        yield Result.errored(
            Resource("package_manager", manager), f"{manager}: could not list updates: {exc}"
        )
        return
    answered = {"manager": found.manager, "call": found.call, "collected_at": found.collected_at}
    answered["reused_cached_answer"] = found.reused
    if found.metadata_age_seconds is not None:
        age = timedelta(seconds=found.metadata_age_seconds)
        yield Result.judge(
            age <= timedelta(days=p.max_index_age_days),
            Resource("package_index", found.manager),
            f"{found.manager} metadata cache was last refreshed {age_text(age)} before the query",
            observed={**answered, "metadata_age_days": round(age.total_seconds() / 86400, 2)},
            expected={"max_age_days": p.max_index_age_days},
        )
    if found.manager == "softwareupdate":
        answered["note"] = APPLE_NOTE
    if not found.updates:
        nothing = "no pending security updates"
        if found.manager == "softwareupdate":
            nothing = "no pending recommended updates (Apple does not flag security separately)"
        yield Result.passed(
            Resource("package_manager", found.manager),
            f"{found.manager}: {nothing}",
            observed={**answered, "pending": 0},
        )
        return
    for update in found.updates:
        first_seen = update.first_seen or facts.now
        if found.manager == "softwareupdate":
            what = f"recommended update to {update.candidate or 'a new version'}"
        elif update.candidate and update.installed:
            what = f"security update {update.installed} -> {update.candidate}"
        elif update.candidate:
            what = f"security update to {update.candidate}"
        else:
            what = f"security patch from {', '.join(update.origins)}"
        age = facts.now - first_seen
        sla = _sla(update, p)
        rated = f" ({update.severity})" if update.severity else ""
        hidden = (
            " (hidden by a user in Windows Update, so it is never offered)" if update.hidden else ""
        )
        yield Result.judge(
            age <= timedelta(days=sla),
            Resource("security_update", update_key(found.manager, update)),
            f"{update.package}: {what}{rated} pending, first seen {age_text(age)} ago "
            f"(SLA {sla:g} d){hidden}",
            observed={
                **answered,
                "package": update.package,
                "arch": update.arch,
                "installed": update.installed,
                "candidate": update.candidate,
                "origins": list(update.origins),
                "advisories": list(update.advisories),
                "severity": update.severity,
                "hidden": update.hidden,
                "first_seen": first_seen,
                "age_days": round(age.total_seconds() / 86400, 2),
            },
            expected={"sla_days": sla},
        )


@check(
    id="host.patch.reboot_required",
    title="The host runs its newest installed kernel and needs no reboot",
    target="host",
    controls=(
        "iso27001:2022/A.8.8",
        "iso27001:2022/A.8.32",
        "iso27001:2022/A.8.19",
        "nis2/6.6.1.a",
        "nis2/6.10.2.c",
    ),
    severity="medium",
    interval="6h",
    facts=(
        "host.patch.kernel_state",
        "host.patch.reboot_flag",
        "host.patch.needs_restarting",
    ),
    needs=(
        "read /proc, /boot and /run; needs-restarting (dnf-utils) on the RHEL family; "
        "reg query on Windows",
    ),
    remediation="Reboot the host in its next maintenance window so that the installed kernel "
    "and libraries are the ones running.",
)
def reboot_required(facts: HostFacts, p: NoParams) -> Iterator[Result]:
    if facts.platform == "darwin":
        yield Result.not_applicable(
            TARGET,
            "macOS has no separately installed kernels to compare; an update that needs a "
            "restart is still pending and reported by host.patch.security_updates",
        )
        return
    if facts.platform == "win32":
        yield _windows_reboot_result(facts)
        return
    if facts.platform != "linux":
        yield Result.errored(TARGET, f"not implemented for platform {facts.platform}")
        return
    try:
        yield _kernel_result(facts)
    except FactError as exc:
        yield Result.errored(Resource("kernel", "running"), f"could not compare kernels: {exc}")
    try:
        manager = facts.package_manager()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not tell the distribution family: {exc}")
        return
    if manager == "apt":
        resource = Resource("reboot_flag", "/run/reboot-required")
        try:
            flag = facts.reboot_flag()
        except FactError as exc:
            yield Result.errored(resource, f"could not read the reboot flag: {exc}")
            return
        by = f" (requested by {', '.join(flag.packages)})" if flag.packages else ""
        yield Result.judge(
            not flag.present,
            resource,
            f"/run/reboot-required is present{by}: a reboot is pending"
            if flag.present
            else "/run/reboot-required is absent: no package asked for a reboot",
            observed={"present": flag.present, "packages": list(flag.packages)},
            expected={"present": False},
        )
    elif manager == "dnf":
        resource = Resource("needs_restarting", "needs-restarting -r")
        try:
            needed, reasons = facts.needs_restarting()
        except FactError as exc:
            yield Result.errored(resource, f"could not ask needs-restarting: {exc}")
            return
        yield Result.judge(
            not needed,
            resource,
            f"needs-restarting -r: reboot required ({', '.join(reasons) or 'no detail'})"
            if needed
            else "needs-restarting -r: no core library or service updated since boot",
            observed={"reboot_required": needed, "updated_since_boot": list(reasons)},
            expected={"reboot_required": False},
        )


def _windows_reboot_result(facts: HostFacts) -> Result:
    resource = Resource("reboot_flag", WINDOWS_REBOOT_KEY)
    try:
        flag = facts.reboot_flag()
    except FactError as exc:
        return Result.errored(resource, f"could not read Windows Update's reboot key: {exc}")
    return Result.judge(
        not flag.present,
        resource,
        "Windows Update's RebootRequired key exists: a reboot is pending"
        if flag.present
        else "Windows Update's RebootRequired key is absent: no update waits for a reboot",
        observed={"present": flag.present},
        expected={"present": False},
    )


def _kernel_result(facts: HostFacts) -> Result:
    state = facts.kernel_state()
    resource = Resource("kernel", state.running)
    observed: dict[str, object] = {
        "running": state.running,
        "installed": list(state.installed),
        "installed_from": state.installed_from,
    }
    if not state.installed:
        return Result.not_applicable(
            resource,
            f"running kernel {state.running} is not packaged here (no /boot/vmlinuz-*, no "
            "/lib/modules): it is booted from outside, so the host that boots it decides",
            observed=observed,
        )
    flavour = kernel_flavour(state.running)
    same = [k for k in state.installed if kernel_flavour(k) == flavour]
    if not same:
        return Result.not_applicable(
            resource,
            f"running kernel {state.running} is not one of the installed kernels "
            f"({', '.join(state.installed)}): it is booted from outside",
            observed=observed,
        )
    newest = max(same, key=version_key)
    observed["newest_installed"] = newest
    if version_key(newest) > version_key(state.running):
        return Result.failed(
            resource,
            f"running kernel {state.running} is older than installed {newest}: reboot required",
            observed=observed,
            expected={"running": newest},
        )
    if state.running not in state.installed:
        return Result.not_applicable(
            resource,
            f"running kernel {state.running} is newer than any installed one ({newest}) "
            "and not packaged here: it is booted from outside",
            observed=observed,
        )
    return Result.passed(
        resource,
        f"running kernel {state.running} is the newest installed",
        observed=observed,
        expected={"running": newest},
    )


@check(
    id="host.patch.auto_updates",
    title="Security updates are installed automatically",
    target="host",
    controls=(
        "iso27001:2022/A.8.8",
        "iso27001:2022/A.8.19",
        "iso27001:2022/A.8.32",
        "nis2/6.6.1.a",
        "nis2/6.10.2.c",
    ),
    severity="medium",
    interval="1d",
    facts=("host.patch.package_manager", "host.patch.auto_updates"),
    needs=(
        "run apt-config, dpkg-query and systemctl is-enabled; read /etc/dnf; "
        "defaults read on macOS; reg query on Windows",
    ),
    remediation="Debian/Ubuntu: apt-get install unattended-upgrades and dpkg-reconfigure "
    "unattended-upgrades. RHEL family: dnf install dnf-automatic, set apply_updates = yes and "
    "upgrade_type = security in /etc/dnf/automatic.conf, systemctl enable --now "
    "dnf-automatic.timer. macOS: turn on every Automatic updates option (or set the keys "
    "with defaults write or a profile). Windows: remove NoAutoUpdate, set AUOptions to 4, "
    "set the Windows Update service to Manual or Automatic and resume paused updates.",
)
def auto_updates(facts: HostFacts, p: NoParams) -> Iterator[Result]:
    try:
        found = facts.auto_updates()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not tell how updates are applied: {exc}")
        return
    resource = Resource("auto_updates", found.mechanism)
    if found.problems:
        yield Result.failed(
            resource,
            f"{found.mechanism} does not install security updates: {'; '.join(found.problems)}",
            observed={"settings": found.settings, "problems": list(found.problems)},
        )
        return
    note = found.settings.get("policy")
    yield Result.passed(
        resource,
        f"{found.mechanism} installs security updates automatically"
        + (f" ({note})" if note else ""),
        observed={"settings": found.settings},
    )


@dataclass(frozen=True)
class OsSupportedParams:
    #: Fail this many days before support ends (0: only once it has ended).
    fail_within_days: int = 30
    #: Count paid or community extended support (ESM, LTSS, ELS, Debian LTS) as support.
    count_extended_support: bool = False


@check(
    id="host.patch.os_supported",
    title="The operating system release is still supported by its vendor",
    target="host",
    controls=(
        "iso27001:2022/A.8.8",
        "iso27001:2022/A.8.19",
        "iso27001:2022/A.8.32",
        "nis2/6.6.1.a",
        "nis2/6.10.2.c",
    ),
    severity="high",
    interval="1d",
    params=OsSupportedParams,
    facts=("host.patch.os_release", "host.patch.os_support"),
    needs=("read /etc/os-release (sw_vers on macOS)",),
    remediation="Upgrade to a supported release, or buy the vendor's extended support and set "
    "count_extended_support.",
)
def os_supported(facts: HostFacts, p: OsSupportedParams) -> Iterator[Result]:
    try:
        support = facts.os_support()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not tell the OS release: {exc}")
        return
    release, entry = support.release, support.entry
    resource = Resource("os_release", f"{release.id} {release.version_id}")
    observed: dict[str, object] = {
        "id": release.id,
        "version_id": release.version_id,
        "pretty_name": release.pretty_name,
        "table_updated": support.table_updated,
    }
    if entry is None:
        yield Result.errored(
            resource,
            f"{release.pretty_name} is not in the shipped end-of-life table, "
            f"updated {support.table_updated}",
            observed=observed,
        )
        return
    extended = p.count_extended_support and entry.end_extended is not None
    end = entry.end_extended if extended else entry.end_standard
    observed |= {
        "matched_version": entry.version,
        "codename": entry.codename,
        "end_standard": entry.end_standard,
        "end_extended": entry.end_extended,
        "counted": "extended" if extended else "standard",
        "source": entry.source,
    }
    expected = {"fail_within_days": p.fail_within_days, "count_extended": extended}
    if end is None:
        yield Result.passed(
            resource,
            f"{release.pretty_name}: no end of support announced "
            f"(table updated {support.table_updated})",
            observed=observed,
            expected=expected,
        )
        return
    days_left = (end - facts.now.date()).days
    observed |= {"support_ends": end, "days_left": days_left}
    kind = "extended support" if extended else "support"
    if days_left < 0:
        message = f"{release.pretty_name}: {kind} ended on {end} ({-days_left} d ago)"
    else:
        message = f"{release.pretty_name}: {kind} ends on {end} (in {days_left} d)"
    yield Result.judge(
        days_left >= p.fail_within_days,
        resource,
        message,
        observed=observed,
        expected=expected,
    )
