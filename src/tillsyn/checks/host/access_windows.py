"""Windows branches of ``host.access.accounts`` and ``host.access.privileged``.

Same baseline, same comparison and wording as on Linux (the helpers of
:mod:`tillsyn.checks.host.access`), over what Windows has instead of shells and sudo:

- accounts: an *enabled* local user is the counterpart of an interactive account and must
  be in ``accounts.interactive``; a disabled one cannot log on and is only counted. The
  built-in Administrator (RID 500, whatever it is called) enabled fails whatever the
  baseline says, as a second UID 0 does on Linux: it is never locked out by failed logons
  and is the account every attack tries first (DISA STIG WN10-SO-000005: disabled). So
  does the built-in Guest (RID 501) enabled, and an enabled account with
  ``PasswordRequired`` False, which Windows lets log on with an empty password.
- privileged: the members of Administrators, Remote Desktop Users, Backup Operators,
  Remote Management Users and Hyper-V Administrators, found by SID, compared with
  ``privileged.groups`` under their English names (``privileged.sudo_grants`` is not
  needed: Windows has no sudo). The ``groups`` parameter names Unix groups and does not
  apply: every result's evidence says so, and setting it to anything but its default is
  a ``not_applicable`` result of its own rather than silently ignored. A group that could
  not be listed is an error for that group, never "no members"; one this edition does
  not have (the last two) is ``not_applicable``. A first run whose groups could not all
  be listed records no baseline.

Windows compares account and group names case-insensitively, so do these checks (both
sides case-folded): ``Alice`` in the baseline approves ``alice``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tillsyn.checks._result import TARGET, Resource, Result
from tillsyn.checks.host import access as base
from tillsyn.collectors.errors import FactError
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.access_baseline import Baseline
from tillsyn.collectors.host.access_windows import (
    BUILTIN_ADMINISTRATOR_RID,
    BUILTIN_GUEST_RID,
    PRIVILEGED_GROUPS,
    WindowsGroup,
    group_error_reason,
)

#: Windows names are case-insensitive.
fold = str.casefold
GROUPS_NOTE = (
    "the groups parameter names Unix groups and does not apply on Windows: the groups "
    "read are fixed by SID (" + ", ".join(f"{n} {s}" for s, n in PRIVILEGED_GROUPS.items()) + ")"
)


def accounts(facts: HostFacts, p: base.AccountsParams) -> Iterator[Result]:
    try:
        local = facts.windows_users()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not read the local accounts: {exc}")
        return
    snapshot: base.Snapshot = {"interactive": sorted(u.name for u in local.users if u.enabled)}
    ref = base.accounts_reference(facts, p.baseline_file, snapshot)
    if isinstance(ref, Result):
        yield ref
    for user in local.users:
        if not user.enabled:
            continue
        resource = Resource("account", user.name)
        observed = user.observed(facts.now)
        if user.rid in (BUILTIN_ADMINISTRATOR_RID, BUILTIN_GUEST_RID):
            which = "Administrator" if user.rid == BUILTIN_ADMINISTRATOR_RID else "Guest"
            why = (
                "Windows' counterpart of a second root account, never locked out by failed "
                "logons and the first account attacked"
                if which == "Administrator"
                else "anyone may log on as guest, usually without a password"
            )
            yield Result.failed(
                resource,
                f"{user.name} is the built-in {which} account (RID {user.rid}) and is "
                f"enabled: {why}",
                observed=observed,
                expected={f"rid_{user.rid}": "disabled"},
            )
            continue
        if not user.password_required:
            yield Result.failed(
                resource,
                f"{user.name} is enabled and does not require a password (PasswordRequired "
                "False): it may log on with an empty one",
                observed=observed,
            )
            continue
        what = f"{user.name}: enabled, {user.describe(facts.now)}"
        if not isinstance(ref, base.Reference):
            yield Result.errored(
                resource,
                f"{what}; cannot tell whether it is approved (baseline unusable)",
                observed=observed,
            )
            continue
        approved = ref.approved.get("interactive", frozenset())
        yield base._judge(
            resource, what, [user.name], approved, ref, observed, "unapproved account", fold
        )

    disabled = sorted(u.name for u in local.users if not u.enabled)
    if disabled:
        yield Result.passed(
            Resource("accounts", "non-interactive"),
            f"{len(disabled)} accounts are disabled and cannot log on",
            observed={"accounts": disabled},
        )
    if isinstance(ref, base.Reference):
        names = {fold(u.name) for u in local.users}
        enabled = {fold(n) for n in snapshot["interactive"]}
        for gone in sorted(ref.approved.get("interactive", frozenset())):
            if fold(gone) in enabled:
                continue
            exists = fold(gone) in names
            now = "is now disabled" if exists else "no longer exists"
            yield Result.passed(
                Resource("absent_account", gone),
                f"{gone} is an approved interactive account in the {ref.said()} but {now}; "
                "removed access is not a risk, but correct the baseline at the next review",
                observed={"exists": exists, "reference": ref.evidence},
            )


def _pick(b: Baseline) -> dict[str, frozenset[str]] | None:
    """``privileged.groups`` only: Windows has no sudo, so no sudo_grants are needed."""
    if b.privileged_groups is None:
        return None
    return {f"group:{k}": v for k, v in b.privileged_groups.items()}


def _observed(group: WindowsGroup) -> dict[str, Any]:
    return {
        "note": GROUPS_NOTE,
        "sid": group.sid,
        "local_name": group.local_name,
        "members": group.member_names,
        "member_details": [
            {"name": m.name, "sid": m.sid, "class": m.object_class, "source": m.source}
            for m in sorted(group.members, key=lambda m: m.name)
        ],
    }


def privileged(facts: HostFacts, p: base.PrivilegedParams) -> Iterator[Result]:
    if tuple(p.groups) != base.PRIVILEGED_GROUPS:
        yield Result.not_applicable(
            Resource("parameter", "groups"),
            f"groups is set to {', '.join(p.groups) or 'nothing'}, but {GROUPS_NOTE}",
            observed={"groups": list(p.groups)},
        )
    try:
        answer = facts.windows_groups()
    except FactError as exc:
        yield Result.errored(TARGET, f"could not read the privileged groups: {exc}")
        return
    listed = [g for g in answer.groups if g.error is None]
    unlisted = [g.name for g in answer.groups if g.error is not None and not g.missing]
    snapshot: base.Snapshot = {f"group:{g.name}": g.member_names for g in listed}
    partial = f"could not list {', '.join(unlisted)}" if unlisted else ""
    ref = base._reference(
        facts, p.baseline_file, "host.access.privileged", "privileged", _pick, snapshot, partial
    )
    if isinstance(ref, Result):
        yield ref
    for group in answer.groups:
        resource = Resource("group", group.name)
        if group.missing:
            yield Result.not_applicable(
                resource,
                f"this Windows has no {group.name} group ({group.sid}): it grants nothing",
                observed={"sid": group.sid, "error": group.error, "note": GROUPS_NOTE},
            )
            continue
        if group.error is not None:
            yield Result.errored(
                resource,
                f"could not list the members of {group.name} ({group.sid}): "
                + group_error_reason(group.error),
                observed={"sid": group.sid, "error": group.error, "note": GROUPS_NOTE},
            )
            continue
        who = group.member_names
        named = f" (here {group.local_name})" if group.local_name != group.name else ""
        what = f"group {group.name}{named}: members {', '.join(who) if who else 'none'}"
        if isinstance(ref, base.Reference):
            approved = base.approved_for(ref, f"group:{group.name}", fold)
            yield base._judge(
                resource, what, who, approved, ref, _observed(group), "unapproved member(s)", fold
            )
        else:
            yield Result.errored(
                resource,
                f"{what}; cannot tell whether they are approved",
                observed=_observed(group),
            )
    if isinstance(ref, base.Reference):
        judged = {fold(f"group:{g.name}") for g in listed}
        yield from base._absent(
            "privilege",
            snapshot,
            ref,
            "approved entr(y/ies)",
            only=lambda s: fold(s) in judged,
            fold_subject=fold,
            fold_entry=fold,
        )
