"""Who can log in and who can become root on this host, against an approved baseline.

The baseline is a YAML file under change control (``baseline_file``; schema in
:mod:`tillsyn.collectors.host.access_baseline`) naming who approved which access and
when. Each drift check compares what it observes with that file:

- an observed entry the baseline does not list (a new account, group member, sudo
  grant or SSH key) is ``fail``, naming it;
- an approved entry that is no longer there gets its own ``absent_*`` result with
  status ``pass`` and a note: access that was removed cannot be unauthorised access,
  but the baseline is stale and should be corrected at the next review;
- without a baseline file the first observation is remembered by the agent (memory
  namespace = the check id) and reported as ``pass`` "recorded as baseline at <time>";
  later additions are ``fail`` as drift from that recording. Such a recording is not
  an approval: ``host.access.review_age`` fails until a baseline file exists. A first
  observation that is partial (a keys file or group that could not be read) is never
  recorded: that run is an ``error`` saying why, and the next complete one records;
- a subject that could not be read is an ``error`` of its own and is left out of the
  ``absent_*`` results: what could not be read cannot be "no longer present";
- a baseline file that cannot be read or parsed is ``error`` naming the file and the
  problem, never "no baseline".

``host.access.accounts`` passes for an interactive account that is in the baseline
and has no empty password; any account with UID 0 other than root fails whatever the
baseline says. It keeps uid, shell, home and the password *state* (set, locked, never
set, empty, unknown), never the hash. Unreadable /etc/shadow is an ``error`` result of
its own and every account's state reads "unknown".

``host.access.privileged`` passes for a privileged group whose members (explicit and
primary) are approved, for a sudo principal whose effective grants (sudoers with
includes, aliases, %group, negations resolved) are approved, and for sudoers whose
weakening Defaults (``!authenticate``, ``!env_reset``, ``setenv``, ``env_keep`` of
loader variables, ``exempt_group``, negative ``timestamp_timeout``) are approved. It
keeps the grants in canonical one-line form with NOPASSWD and ALL named.

On macOS both read the local directory (dscl) instead of /etc/passwd and /etc/group,
with the same rules: an account with a login shell is interactive however hidden (only
Apple's own service accounts with their shipped shells and no password are exempt), a
disabled account reads "locked", ``admin`` is the privileged group sudoers grants
``ALL`` to (sudoers is read as on Linux), and a group nested into it is a member of its
own, ``group:<name>``, besides the users it brings. On Windows an enabled local user
takes the place of an interactive account, the built-in Administrator (RID 500)
enabled fails like a second UID 0, privilege is membership of Administrators, Remote
Desktop Users, Backup Operators, Remote Management Users and Hyper-V Administrators
(by SID; the ``groups`` parameter does not apply there), and names are compared
case-insensitively, as Windows does (see :mod:`.access_windows`).

``host.access.ssh_keys`` passes for an account whose authorized keys (every
AuthorizedKeysFile sshd uses, from ``sshd -T``, else sshd_config, else the OpenSSH
default, the source kept) are approved; it keeps fingerprints, types, comments and
options, never key material. Keys served by an AuthorizedKeysCommand are
``not_applicable``: they live in the directory that command reads, not on this host.
The accounts are /etc/passwd's on Linux, the directory's users (dscl) on macOS, whose
keys are judged whether Remote Login is on or off (they grant access the moment it is
switched on), and the user profiles (ProfileList) on Windows, where the files a
``Match Group administrators`` block names (Win32-OpenSSH's
administrators_authorized_keys) are judged as one subject, "<file> (members of
Administrators)". A Match block that points other users at keys elsewhere is an
``error``: those keys are not read (see :mod:`.access_ssh_windows`). An account whose
keys could not be read is an ``error``, and "no account has an authorized key" is said
only of the accounts that were read.

``host.access.review_age`` passes when the baseline was approved within
``review_days``; no baseline file fails ("access has never been reviewed").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tillsyn.checks._format import age_text
from tillsyn.checks._result import TARGET, Resource, Result
from tillsyn.checks._spec import check
from tillsyn.collectors.errors import FactError
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.access_accounts import Account, ShadowState, members_of
from tillsyn.collectors.host.access_baseline import Baseline
from tillsyn.collectors.host.access_sudoers import DefaultsEntry, SudoGrant

DEFAULT_BASELINE = "/etc/tillsyn/access-baseline.yaml"
#: Where the default baseline lives on Windows (no /etc there).
WINDOWS_BASELINE = r"C:\ProgramData\tillsyn\access-baseline.yaml"


def baseline_path(facts: HostFacts, configured: str) -> str:
    """The baseline file to read: the configured one, or the platform's default."""
    if configured == DEFAULT_BASELINE and facts.platform == "win32":
        return WINDOWS_BASELINE
    return configured


PRIVILEGED_GROUPS = ("sudo", "wheel", "admin", "adm", "docker", "lxd", "libvirt", "root")
#: Variables that let a caller load code into a root process when kept by env_keep.
LOADER_VARIABLES = ("LD_", "PYTHONPATH", "PYTHONSTARTUP", "PERL5LIB", "PERL5OPT", "BASH_ENV")
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class AccountsParams:
    baseline_file: str = DEFAULT_BASELINE


@dataclass(frozen=True)
class PrivilegedParams:
    baseline_file: str = DEFAULT_BASELINE
    #: Groups whose members can become root or read/alter the whole system.
    groups: tuple[str, ...] = PRIVILEGED_GROUPS


@dataclass(frozen=True)
class SshKeysParams:
    baseline_file: str = DEFAULT_BASELINE


@dataclass(frozen=True)
class ReviewAgeParams:
    baseline_file: str = DEFAULT_BASELINE
    #: Access must be re-approved at least this often.
    review_days: int = 365


# -- the reference every drift check compares with -------------------------------------


@dataclass(frozen=True)
class Reference:
    """What observed entries are compared with: the approved file or the agent's recording."""

    approved: dict[str, frozenset[str]]
    evidence: dict[str, Any]
    recorded_now: bool
    approved_file: bool

    def said(self) -> str:
        if self.approved_file:
            return f"approved baseline {self.evidence['path']}"
        return f"baseline recorded at {self.evidence['recorded_at']:%Y-%m-%d %H:%M UTC}"


Snapshot = dict[str, list[str]]
#: How names are compared: as they are (Linux, macOS), or case-folded (Windows).
Fold = Callable[[str], str]


def same(name: str) -> str:
    return name


def approved_for(ref: Reference, subject: str, fold: Fold = same) -> frozenset[str]:
    """The approved entries of ``subject``; with ``fold``, of every key it folds to."""
    if fold is same:
        return ref.approved.get(subject, frozenset())
    wanted = fold(subject)
    out: frozenset[str] = frozenset()
    for key, entries in ref.approved.items():
        if fold(key) == wanted:
            out |= entries
    return out


def _reference(
    facts: HostFacts,
    path: str,
    namespace: str,
    section: str | Callable[[Baseline], str],
    pick: Callable[[Baseline], dict[str, frozenset[str]] | None],
    snapshot: Snapshot,
    partial: str = "",
) -> Reference | Result:
    """The reference for one check, or the error result that says why there is none.

    ``partial`` says what could not be read this run: such a snapshot is compared with an
    earlier recording but never recorded as the first one."""
    path = baseline_path(facts, path)
    resource = Resource("baseline", path)
    try:
        baseline = facts.access_baseline(path)
    except FactError as exc:
        return Result.errored(resource, f"access baseline {path} is unusable: {exc.reason}")
    if baseline is not None:
        approved = pick(baseline)
        if approved is None:
            named = section if isinstance(section, str) else section(baseline)
            return Result.errored(
                resource,
                f"access baseline {path} has no '{named}' section, so nothing it approves "
                "can be compared",
                observed={"approved_by": baseline.approved_by},
            )
        evidence = {
            "baseline": "approved file",
            "path": path,
            "approved_by": baseline.approved_by,
            "approved_at": baseline.approved_at,
        }
        return Reference(approved, evidence, recorded_now=False, approved_file=True)
    remembered = facts.remembered_access(namespace, snapshot, record=not partial)
    if remembered is None:
        return Result.errored(
            resource,
            f"no approved baseline at {path} and none recorded yet, and this observation is "
            f"incomplete ({partial}): it is not recorded as the baseline, so what was read "
            "cannot be compared; the first complete observation will be",
            observed={"unreadable": partial},
        )
    value = remembered.value if isinstance(remembered.value, dict) else {}
    approved = {str(k): frozenset(map(str, v)) for k, v in value.items()}
    evidence = {
        "baseline": "recorded by the agent (not approved)",
        "path": path,
        "recorded_at": remembered.stored_at,
    }
    return Reference(approved, evidence, remembered.recorded_now, approved_file=False)


def accounts_reference(
    facts: HostFacts, baseline_file: str, snapshot: Snapshot
) -> Reference | Result:
    """The approved interactive accounts (``{"interactive": ...}``), on every platform."""
    return _reference(
        facts,
        baseline_file,
        "host.access.accounts",
        "accounts",
        lambda b: (
            None if b.interactive_accounts is None else {"interactive": b.interactive_accounts}
        ),
        snapshot,
    )


def _judge(
    resource: Resource,
    what: str,
    observed_entries: list[str],
    approved: frozenset[str],
    ref: Reference,
    observed: dict[str, Any],
    noun: str,
    fold: Fold = same,
) -> Result:
    """pass/fail of one subject against the reference; the message names what is new."""
    known = {fold(a) for a in approved}
    unexpected = sorted(e for e in set(observed_entries) if fold(e) not in known)
    observed = observed | {"reference": ref.evidence}
    expected = {"approved": sorted(approved)}
    if unexpected:
        return Result.failed(
            resource,
            f"{what}: {len(unexpected)} {noun} not in the {ref.said()}: {'; '.join(unexpected)}",
            observed=observed | {"unapproved": unexpected},
            expected=expected,
        )
    if ref.recorded_now:
        note = f"recorded as baseline at {ref.evidence['recorded_at']:%Y-%m-%d %H:%M UTC}"
    elif ref.approved_file:
        note = f"as approved by {ref.evidence['approved_by']}"
    else:
        note = f"unchanged since the {ref.said()} (no approved baseline file)"
    return Result.passed(resource, f"{what}; {note}", observed=observed, expected=expected)


def _absent(
    kind: str,
    observed: dict[str, list[str]],
    ref: Reference,
    noun: str,
    only: Callable[[str], bool] = lambda _s: True,
    fold_subject: Fold = same,
    fold_entry: Fold = same,
) -> Iterator[Result]:
    """One pass-with-note result per subject whose approved entries are gone.

    ``only`` leaves out subjects that were not judged (could not be read): their
    entries are unknown, not gone."""
    now: dict[str, set[str]] = {}
    for subject, entries in observed.items():
        now.setdefault(fold_subject(subject), set()).update(fold_entry(e) for e in entries)
    for subject, approved in sorted(ref.approved.items()):
        if not only(subject):
            continue
        present = now.get(fold_subject(subject), set())
        gone = sorted(a for a in approved if fold_entry(a) not in present)
        if not gone:
            continue
        yield Result.passed(
            Resource(f"absent_{kind}", subject),
            f"{subject}: {len(gone)} {noun} in the {ref.said()} no longer present "
            f"({'; '.join(gone)}); removed access is not a risk, but correct the baseline "
            "at the next review",
            observed={"absent": gone, "reference": ref.evidence},
        )


# -- host.access.accounts ------------------------------------------------------------


def _state(
    account: Account, shadow: dict[str, ShadowState] | None, facts: HostFacts
) -> dict[str, Any]:
    if account.passwd_field == "empty":  # noqa: S105 - a state name, not a password
        return {"password": "empty", "locked": False, "expired": "unknown", "expires_on": None}
    if account.passwd_field == "hash":  # noqa: S105 - a state name, not a password
        return {"password": "in_passwd", "locked": False, "expired": "unknown", "expires_on": None}
    if shadow is None:
        return {
            "password": "unknown",
            "locked": "unknown",
            "expired": "unknown",
            "expires_on": None,
        }
    entry = shadow.get(account.name)
    if entry is None:
        return {
            "password": "no shadow entry",
            "locked": "unknown",
            "expired": "unknown",
            "expires_on": None,
        }
    return {
        "password": entry.password,
        "locked": entry.locked,
        "expired": entry.expired(facts.now.date()) if entry.expiry_known else "not read",
        "expires_on": entry.expires_on.isoformat() if entry.expires_on else None,
    }


def _state_text(state: dict[str, Any], source: str = "shadow") -> str:
    if state["locked"] == "unknown":
        return f"password {state['password']}, locked/expired state unknown ({source} unreadable)"
    bits = [f"password {state['password'].replace('_', ' ')}"]
    bits.append("locked" if state["locked"] else "not locked")
    if state["expired"] is True:
        bits.append(f"expired on {state['expires_on']}")
    elif state["expired"] is False:
        bits.append("not expired")
    elif state["expired"] == "not read":
        bits.append("account expiry not read")
    return ", ".join(bits)


@check(
    id="host.access.accounts",
    title="Local accounts with a login shell are approved; only root has UID 0",
    target="host",
    controls=(
        "iso27001:2022/A.5.15",
        "iso27001:2022/A.5.16",
        "iso27001:2022/A.5.18",
        "iso27001:2022/A.8.2",
        "nis2/11.2.2.a",
        "nis2/11.2.2.e",
        "nis2/11.3.2.c",
        "nis2/11.5.2.a",
        "nis2/11.5.4",
        "nis2/11.2.2",
        "nis2/11.2.3",
        "nis2/11.3",
    ),
    severity="high",
    interval="1h",
    params=AccountsParams,
    facts=(
        "host.access.accounts",
        "host.access.shadow",
        "host.access.baseline",
        "host.access.macos_users",
        "host.access.windows_users",
    ),
    needs=(
        "read /etc/passwd; /etc/shadow needs root for locked/expired state",
        "macOS: run dscl; root to see AuthenticationAuthority (disabled accounts)",
        "Windows: run PowerShell Get-LocalUser (64-bit PowerShell)",
    ),
    remediation="Remove or lock accounts nobody approved (usermod -L -e 1, or userdel), give "
    "service accounts /usr/sbin/nologin, never a second UID 0, and record approved accounts in "
    "the access baseline file. macOS: sysadminctl -deleteUser, or pwpolicy -u USER "
    "-disableuser. Windows: Disable-LocalUser (the built-in Administrator and Guest too) or "
    "Remove-LocalUser, and net user USER /passwordreq:yes where PasswordRequired is False.",
)
def accounts(facts: HostFacts, p: AccountsParams) -> Iterator[Result]:
    if facts.platform == "win32":
        from tillsyn.checks.host import access_windows  # builds on this module's helpers

        yield from access_windows.accounts(facts, p)
        return
    macos = facts.platform == "darwin"
    try:
        local = facts.accounts()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not read the local accounts: {exc}")
        return
    shadow: dict[str, ShadowState] | None
    try:
        shadow = facts.shadow()
    except FactError as exc:
        shadow = None
        if macos:
            yield Result.errored(
                Resource("dscl", "AuthenticationAuthority"),
                f"could not read the accounts' AuthenticationAuthority ({exc.reason}): "
                "whether accounts are disabled is unknown",
            )
        else:
            yield Result.errored(
                Resource("file", "/etc/shadow"),
                f"could not read /etc/shadow ({exc.reason}): whether accounts are locked or "
                "expired, or have an empty password, is unknown",
            )
    source = "AuthenticationAuthority" if macos else "shadow"
    interactive = [a for a in local if a.interactive]
    snapshot: Snapshot = {"interactive": sorted(a.name for a in interactive)}
    ref = accounts_reference(facts, p.baseline_file, snapshot)
    if isinstance(ref, Result):
        yield ref
    approved = ref.approved.get("interactive", frozenset()) if isinstance(ref, Reference) else None

    for account in local:
        resource = Resource("account", account.name)
        state = _state(account, shadow, facts)
        observed: dict[str, Any] = {
            "uid": account.uid,
            "gid": account.gid,
            "home": account.home,
            "shell": account.shell,
            "interactive": account.interactive,
        } | state
        if account.uid == 0 and account.name != "root":
            yield Result.failed(
                resource,
                f"{account.name} has UID 0 besides root: a second, separately named root "
                f"account (shell {account.shell}, {_state_text(state, source)})",
                observed=observed,
                expected={"uid0": ["root"]},
            )
            continue
        if not account.interactive:
            continue
        empty = state["password"] == "empty"  # noqa: S105 - a state name, not a password
        if empty and state["locked"] is not True:
            yield Result.failed(
                resource,
                f"{account.name} has an empty password and shell {account.shell}: it can log "
                "in without one",
                observed=observed,
            )
            continue
        what = f"{account.name}: interactive shell {account.shell}, {_state_text(state, source)}"
        if approved is None or not isinstance(ref, Reference):
            yield Result.errored(
                resource,
                f"{what}; cannot tell whether it is approved (baseline unusable)",
                observed=observed,
            )
            continue
        yield _judge(resource, what, [account.name], approved, ref, observed, "unapproved account")

    nologin = sorted(a.name for a in local if not a.interactive and a.uid != 0)
    if nologin:
        service = " or are service accounts without a password" if macos else ""
        yield Result.passed(
            Resource("accounts", "non-interactive"),
            f"{len(nologin)} accounts have no login shell (nologin, false){service}",
            observed={"accounts": nologin},
        )
    if isinstance(ref, Reference):
        names = {a.name: a for a in local}
        for gone in sorted(
            ref.approved.get("interactive", frozenset()) - set(snapshot["interactive"])
        ):
            still = names.get(gone)
            now = f"now has shell {still.shell}" if still else "no longer exists"
            yield Result.passed(
                Resource("absent_account", gone),
                f"{gone} is an approved interactive account in the {ref.said()} but {now}; "
                "removed access is not a risk, but correct the baseline at the next review",
                observed={"exists": still is not None, "reference": ref.evidence},
            )


# -- host.access.privileged ----------------------------------------------------------


def weakening(entry: DefaultsEntry) -> str | None:
    """Why a Defaults entry weakens sudo, or None."""
    if entry.name == "authenticate" and entry.negated:
        return "no password is asked for any command it covers"
    if entry.name == "env_reset" and entry.negated:
        return "the caller's whole environment reaches the command"
    if entry.name == "setenv" and not entry.negated and not entry.operator:
        return "callers may set any environment variable"
    if entry.name == "exempt_group" and entry.operator == "=" and not entry.negated:
        return "members of the group are never asked for a password"
    if entry.name == "timestamp_timeout" and entry.value.startswith("-"):
        return "a successful authentication never expires"
    if entry.name == "env_keep" and entry.operator in ("=", "+="):
        kept = [v for v in entry.value.split() if v.startswith(LOADER_VARIABLES)]
        if kept:
            return f"keeps {', '.join(kept)}, which load code into the root process"
    return None


def _grant_text(grants: list[SudoGrant]) -> str:
    parts = []
    for g in grants:
        text = ("!" if g.negated else "") + g.command
        if g.nopasswd:
            text += " NOPASSWD"
        parts.append(f"{text} as {g.runas}")
    return ", ".join(parts)


@check(
    id="host.access.privileged",
    title="Members of privileged groups and sudo grants are approved",
    target="host",
    controls=(
        "iso27001:2022/A.5.15",
        "iso27001:2022/A.5.18",
        "iso27001:2022/A.8.2",
        "nis2/11.2.2.a",
        "nis2/11.2.2.c",
        "nis2/11.2.2.e",
        "nis2/11.3.2.a",
        "nis2/11.3.2.c",
        "nis2/11.2.2",
        "nis2/11.2.3",
        "nis2/11.3",
    ),
    severity="critical",
    interval="1h",
    params=PrivilegedParams,
    facts=(
        "host.access.accounts",
        "host.access.groups",
        "host.access.sudo",
        "host.access.baseline",
        "host.access.macos_groups",
        "host.access.windows_groups",
    ),
    needs=(
        "read /etc/passwd and /etc/group; /etc/sudoers and its includes need root",
        "macOS: run dscl; /etc/sudoers needs root as on Linux",
        "Windows: run PowerShell Get-LocalGroupMember (64-bit PowerShell)",
    ),
    remediation="Remove unapproved members (gpasswd -d USER GROUP) and sudo rules (visudo), "
    "or record the approved ones in the access baseline file. macOS: dseditgroup -o edit -d "
    "USER -t user admin. Windows: Remove-LocalGroupMember -SID S-1-5-32-544 -Member USER.",
)
def privileged(facts: HostFacts, p: PrivilegedParams) -> Iterator[Result]:
    if facts.platform == "win32":
        from tillsyn.checks.host import access_windows  # builds on this module's helpers

        yield from access_windows.privileged(facts, p)
        return
    try:
        local, groups = facts.accounts(), facts.groups()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not read accounts and groups: {exc}")
        return
    present = {g.name: g for g in groups}
    members = {
        f"group:{name}": list(members_of(present[name], local))
        for name in p.groups
        if name in present
    }
    policy = None
    sudo_error: FactError | None = None
    try:
        policy = facts.sudo_policy()
    except FactError as exc:
        sudo_error = exc
    by_principal: dict[str, list[SudoGrant]] = {}
    for grant in policy.grants if policy else ():
        by_principal.setdefault(grant.principal, []).append(grant)
    snapshot: Snapshot = dict(members)
    for principal, grants in by_principal.items():
        snapshot[f"sudo:{principal}"] = sorted({g.key for g in grants})

    def pick(b: Baseline) -> dict[str, frozenset[str]] | None:
        if b.privileged_groups is None or b.sudo_grants is None:
            return None
        out = {f"group:{k}": v for k, v in b.privileged_groups.items()}
        for key in b.sudo_grants:
            out.setdefault(f"sudo:{key.split(' ', 1)[0]}", frozenset())
            out[f"sudo:{key.split(' ', 1)[0]}"] |= {key}
        out["defaults"] = b.sudo_defaults or frozenset()
        return out

    def section(b: Baseline) -> str:
        return "privileged" if b.privileged_groups is None else "privileged.sudo_grants"

    ref = _reference(facts, p.baseline_file, "host.access.privileged", section, pick, snapshot)
    if isinstance(ref, Result):
        yield ref

    for name in p.groups:
        if name not in present:
            continue
        who = members[f"group:{name}"]
        resource = Resource("group", name)
        what = f"group {name}: members {', '.join(who) if who else 'none'}"
        observed = {"gid": present[name].gid, "members": who}
        if isinstance(ref, Reference):
            approved = ref.approved.get(f"group:{name}", frozenset())
            yield _judge(resource, what, who, approved, ref, observed, "unapproved member(s)")
        else:
            yield Result.errored(
                resource, f"{what}; cannot tell whether they are approved", observed=observed
            )
    missing = [g for g in p.groups if g not in present]
    if missing:
        yield Result.not_applicable(
            Resource("groups", "absent"),
            f"privileged group(s) {', '.join(missing)} do not exist on this host",
            observed={"groups": missing},
        )

    sudoers = Resource("sudoers", "/etc/sudoers")
    if sudo_error is not None:
        yield Result.errored(sudoers, f"could not read the sudo grants: {sudo_error}")
    elif policy is None:
        yield Result.not_applicable(
            sudoers, "/etc/sudoers does not exist: sudo is not installed, so it grants nothing"
        )
    else:
        yield from _sudo_results(policy.grants, by_principal, ref)
        weak = {e.render(): why for e in policy.defaults if (why := weakening(e)) is not None}
        approved_defaults = (
            ref.approved.get("defaults", frozenset())
            if isinstance(ref, Reference) and ref.approved_file
            else frozenset()
        )
        unapproved = {k: v for k, v in weak.items() if k not in approved_defaults}
        observed = {
            "files": list(policy.files),
            "defaults": [e.render() for e in policy.defaults],
            "weakening": [f"{k} ({v})" for k, v in weak.items()],
            "warnings": list(policy.warnings),
        }
        if unapproved:
            yield Result.failed(
                sudoers,
                f"sudoers ({len(policy.files)} files) has weakening Defaults not approved: "
                + "; ".join(f"{k}: {v}" for k, v in unapproved.items()),
                observed=observed,
                expected={"approved_defaults": sorted(approved_defaults)},
            )
        else:
            extra = f"; note: {'; '.join(policy.warnings)}" if policy.warnings else ""
            yield Result.passed(
                sudoers,
                f"sudoers ({len(policy.files)} files, {len(policy.grants)} grants): no "
                f"unapproved weakening Defaults{extra}",
                observed=observed,
            )
    if isinstance(ref, Reference):
        observed_now = dict(snapshot)
        # Grants of a sudoers that could not be read are unknown, not gone.
        yield from _absent(
            "privilege",
            observed_now,
            ref,
            "approved entr(y/ies)",
            only=lambda s: (
                (s.startswith("sudo:") and sudo_error is None)
                or s.removeprefix("group:") in p.groups
            ),
        )


def _sudo_results(
    grants: tuple[SudoGrant, ...],
    by_principal: dict[str, list[SudoGrant]],
    ref: Reference | Result,
) -> Iterator[Result]:
    if not grants:
        return
    for principal, mine in sorted(by_principal.items()):
        resource = Resource("sudo", principal)
        keys = sorted({g.key for g in mine})
        flags = []
        if any(g.all_commands for g in mine):
            flags.append("ALL commands")
            if any(g.negated for g in mine):
                flags.append("its !-exceptions to ALL are easily bypassed (sudoers(5))")
        if any(g.nopasswd and not g.negated for g in mine):
            flags.append("NOPASSWD")
        via = sorted({g.via for g in mine})
        what = f"sudo for {principal} (via {'; '.join(via)}): {_grant_text(mine)}" + (
            f" [{', '.join(flags)}]" if flags else ""
        )
        observed = {
            "grants": keys,
            "all_commands": any(g.all_commands for g in mine),
            "nopasswd": sorted({g.key for g in mine if g.nopasswd}),
            "excluded": sorted({x for g in mine for x in g.excluded}),
            "sources": sorted({g.source for g in mine}),
            "options": sorted({o for g in mine for o in g.options}),
        }
        if isinstance(ref, Reference):
            approved = ref.approved.get(f"sudo:{principal}", frozenset())
            yield _judge(resource, what, keys, approved, ref, observed, "unapproved grant(s)")
        else:
            yield Result.errored(
                resource, f"{what}; cannot tell whether it is approved", observed=observed
            )


# -- host.access.ssh_keys ------------------------------------------------------------


@check(
    id="host.access.ssh_keys",
    title="SSH authorized keys of every account are approved",
    target="host",
    controls=(
        "iso27001:2022/A.5.15",
        "iso27001:2022/A.5.17",
        "iso27001:2022/A.5.18",
        "iso27001:2022/A.8.5",
        "iso27001:2022/A.8.2",
        "nis2/11.2.2.c",
        "nis2/11.2.2.e",
        "nis2/11.6.2.b",
        "nis2/11.2.2",
        "nis2/11.2.3",
        "nis2/11.3",
    ),
    severity="high",
    interval="1h",
    params=SshKeysParams,
    facts=(
        "host.access.accounts",
        "host.access.ssh_key_holders",
        "host.access.sshd_keys_config",
        "host.access.authorized_keys",
        "host.access.authorized_keys_file",
        "host.access.baseline",
    ),
    needs=(
        "root: sshd -T reads the host keys, and other users' home directories",
        "macOS: run dscl (no privilege needed); root for sshd -T as on Linux",
        "Windows: run sshd.exe -T and PowerShell (ProfileList); SYSTEM or an administrator "
        "to read other profiles and administrators_authorized_keys",
    ),
    remediation="Remove keys nobody approved from the authorized_keys file (or rotate them), "
    "and record approved fingerprints in the access baseline file.",
)
def ssh_keys(facts: HostFacts, p: SshKeysParams) -> Iterator[Result]:
    try:
        config = facts.sshd_keys_config()
    except FactError as exc:
        yield Result.errored(
            Resource("sshd", "AuthorizedKeysFile"),
            f"could not tell which authorized_keys files sshd reads: {exc}",
        )
        return
    source = {"files": list(config.files), "source": config.source}
    if config.note:
        source["note"] = config.note
    where = f" (files per {config.source}: {config.note})" if config.note else ""
    if config.command:
        yield Result.not_applicable(
            Resource("sshd", "AuthorizedKeysCommand"),
            f"sshd also takes keys from AuthorizedKeysCommand {config.command}; those keys "
            "live in the directory it queries and cannot be listed from this host",
            observed={"authorized_keys_command": config.command},
        )
    for label, why in config.unevaluated:
        yield Result.errored(Resource("sshd", label), why, observed=source)
    groups = [(f"{f} (members of {g})", f) for g, files in config.group_files for f in files]
    if not config.files and not groups:
        yield Result.not_applicable(
            Resource("sshd", "AuthorizedKeysFile"),
            "AuthorizedKeysFile is none: sshd reads no authorized_keys files",
            observed=source,
        )
        return
    try:
        holders = facts.ssh_key_holders() if config.files else ()
    except FactError as exc:
        yield Result.errored(
            Resource("ssh_authorized_keys", "all-accounts"),
            f"could not list the accounts whose authorized keys sshd reads: {exc}",
            observed=source,
        )
        return
    reads = [(h.name, h.name, False) for h in holders] + [(s, f, True) for s, f in groups]
    # Windows compares account names and paths case-insensitively; fingerprints never.
    fold: Fold = str.casefold if facts.platform == "win32" else same
    found: dict[str, list[dict[str, object]]] = {}
    unread: list[str] = []
    for subject, name, whole_file in reads:
        try:
            keys = facts.authorized_keys_file(name) if whole_file else facts.authorized_keys(name)
        except FactError as exc:
            unread.append(subject)
            yield Result.errored(
                Resource("ssh_authorized_keys", subject),
                f"could not read the authorized keys of {subject}: {exc.reason} ({exc.call})",
                observed=source,
            )
            continue
        if keys:
            found[subject] = [k.as_evidence() for k in keys]
    snapshot: Snapshot = {
        user: sorted({str(k["fingerprint"]) for k in keys}) for user, keys in found.items()
    }
    partial = f"{len(unread)} of {len(reads)} unreadable: {', '.join(unread)}" if unread else ""
    ref = _reference(
        facts,
        p.baseline_file,
        "host.access.ssh_keys",
        "ssh_keys",
        lambda b: b.ssh_keys,
        snapshot,
        partial,
    )
    if isinstance(ref, Result):
        yield ref
    if not found:
        read_files = " ".join([*config.files, *(subject for subject, _f in groups)])
        if unread:
            said = (
                f"none of the {len(reads) - len(unread)} account(s)/file(s) read of "
                f"{len(reads)} has an authorized key in {read_files}{where}; "
                f"{len(unread)} could not be read ({', '.join(unread)}) and are errors of "
                "their own, not judged here"
            )
        else:
            said = f"no account of {len(holders)} has an authorized key in {read_files}{where}"
        yield Result.passed(
            Resource("ssh_authorized_keys", "all-accounts"),
            said,
            observed=source | {"accounts": len(holders), "unreadable": unread},
        )
    sids = {h.name: {"sid": h.sid} for h in holders if h.sid}
    for user, entries in sorted(found.items()):
        resource = Resource("ssh_authorized_keys", user)
        listed = ", ".join(
            f"{k['type']} {k['fingerprint']}" + (f" ({k['comment']})" if k["comment"] else "")
            for k in entries
        )
        what = f"{user}: {len(entries)} authorized key(s) {listed}{where}"
        observed = source | sids.get(user, {}) | {"keys": entries}
        if isinstance(ref, Reference):
            approved = approved_for(ref, user, fold)
            yield _judge(
                resource, what, snapshot[user], approved, ref, observed, "unapproved key(s)"
            )
        else:
            yield Result.errored(
                resource, f"{what}; cannot tell whether they are approved", observed=observed
            )
    if isinstance(ref, Reference):
        skipped = {fold(s) for s in unread}
        yield from _absent(
            "ssh_key",
            snapshot,
            ref,
            "approved key(s)",
            only=lambda s: fold(s) not in skipped,
            fold_subject=fold,
        )


# -- host.access.review_age ----------------------------------------------------------


@check(
    id="host.access.review_age",
    title="Access rights were reviewed and approved within the review period",
    target="host",
    controls=(
        "iso27001:2022/A.5.18",
        "iso27001:2022/A.8.2",
        "iso27001:2022/A.5.15",
        "nis2/11.2.3",
        "nis2/11.3.3",
        "nis2/11.5.4",
        "nis2/11.2.2",
        "nis2/11.3",
    ),
    severity="medium",
    interval="1d",
    params=ReviewAgeParams,
    facts=("host.access.baseline",),
    needs=("read the access baseline file",),
    remediation="Review who has access, update the baseline file and set approved_by and "
    "approved_at.",
)
def review_age(facts: HostFacts, p: ReviewAgeParams) -> Iterator[Result]:
    path = baseline_path(facts, p.baseline_file)
    resource = Resource("baseline", path)
    expected = {"review_days": p.review_days}
    try:
        baseline = facts.access_baseline(path)
    except FactError as exc:
        yield Result.errored(
            resource,
            f"access baseline {path} is unusable: {exc.reason}",
            expected=expected,
        )
        return
    if baseline is None:
        yield Result.failed(
            resource,
            f"access has never been reviewed: no approved baseline at {path}",
            expected=expected,
        )
        return
    age = facts.now - baseline.approved_at
    observed = {
        "approved_by": baseline.approved_by,
        "approved_at": baseline.approved_at,
        "age_days": round(age.total_seconds() / 86400, 1),
    }
    if age < -CLOCK_SKEW:
        yield Result.errored(
            resource,
            f"access baseline {path} says it was approved {age_text(age)} in the "
            "future; the date or the clock is wrong",
            observed=observed,
            expected=expected,
        )
        return
    yield Result.judge(
        age <= timedelta(days=p.review_days),
        resource,
        f"access baseline {path} was approved by {baseline.approved_by} "
        f"{age_text(age)} ago (review every {p.review_days} d)",
        observed=observed,
        expected=expected,
    )
