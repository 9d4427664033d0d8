"""Accounts and privileged groups on macOS (dscl) and Windows (PowerShell): parsers, collector.

The outputs are reconstructed (see each fixture's provenance); these tests pin what the
parsers accept, that everything else is an error rather than a guess, and that no
password material reaches a fact or evidence.
"""

from __future__ import annotations

import json
import plistlib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMMANDS, HOSTS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.agent.evidence import find_secret, jsonable
from tillsyn.checks.host import access as checks
from tillsyn.collectors.commands import CommandResult
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactError,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host import access_macos as mac
from tillsyn.collectors.host import access_windows as win

MAC_HOST = HOSTS / "access-macos14-office"
WIN_HOST = HOSTS / "access-windows11-office"


def _recording(name: str) -> dict[str, Any]:
    return dict(json.loads((COMMANDS / name).read_text()))


def _stdout(name: str) -> str:
    return str(_recording(name)["stdout"])


def _facts(platform: str, *recordings: str, root: Path = MAC_HOST) -> HostFacts:
    return HostFacts(
        root=root,
        runner=RecordedRunner.from_files(COMMANDS / r for r in recordings),
        env={},
        platform=platform,
        now=PINNED_NOW,
    )


def _plist(records: list[dict[str, list[str]]]) -> str:
    return plistlib.dumps(records).decode()


def _user(name: str, uid: str, **extra: list[str]) -> dict[str, list[str]]:
    record = {
        "dsAttrTypeStandard:RecordName": [name],
        "dsAttrTypeStandard:UniqueID": [uid],
        "dsAttrTypeStandard:UserShell": ["/bin/zsh"],
    }
    record.update({f"dsAttrTypeStandard:{k}": v for k, v in extra.items()})
    return record


# -- macOS: users --------------------------------------------------------------------


def test_dscl_users_fixture_parses_with_the_service_account_rule() -> None:
    users = mac.parse_users(_stdout("dscl-readall-users/sonoma-office.json"), "dscl")
    by_name = {u.account.name: u for u in users}
    assert by_name["nobody"].account.uid == -2
    assert by_name["root"].account.uid == 0 and by_name["root"].account.interactive
    assert by_name["root"].account.gecos == "System Administrator"  # first RecordName wins
    # /bin/bash, but a service account without a password: macOS hides it, it cannot log in
    assert not by_name["_mbsetupuser"].account.interactive
    assert not by_name["_uucp"].account.interactive  # /usr/sbin/uucico
    assert by_name["alice"].account.interactive
    assert by_name["alice"].account.passwd_field == "shadow"
    assert by_name["carol"].disabled and by_name["carol"].account.interactive
    assert sorted(n for n, u in by_name.items() if u.account.interactive) == [
        "alice",
        "bob",
        "carol",
        "root",
    ]


def test_a_hidden_account_with_a_password_is_interactive_whatever_its_uid() -> None:
    users = mac.parse_users(_stdout("dscl-readall-users/sonoma-hidden-admins.json"), "dscl")
    nimda = next(u for u in users if u.account.name == "nimda")
    assert nimda.account.uid == 499 and nimda.hidden
    assert mac.is_service("nimda", 499)
    assert nimda.account.interactive  # a password and bash: a way in, not a service
    toor = next(u for u in users if u.account.name == "toor")
    assert toor.account.uid == 0 and not mac.is_service("toor", 0)


def test_shipped_service_account_disabled_by_authority_is_not_interactive() -> None:
    disabled = [";DisabledUser;;ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>"]
    text = _plist(
        [
            _user("_mbsetupuser", "248", Password=["********"], AuthenticationAuthority=disabled)
            | {"dsAttrTypeStandard:UserShell": ["/bin/bash"]},
            _user("_svc", "300", Password=["********"], AuthenticationAuthority=disabled),
        ]
    )
    setup, svc = mac.parse_users(text, "dscl")
    assert setup.disabled and not setup.account.interactive
    # Not one of Apple's: disabled, but a shell is a way in (keys, sudo -u); judged.
    assert svc.disabled and svc.account.interactive


@pytest.mark.parametrize(
    ("name", "uid", "shell", "interactive"),
    [
        ("_backdoor", "499", "/bin/zsh", True),  # hidden, no password, a real shell
        ("helper", "480", "/bin/bash", True),
        ("_mbsetupuser", "248", "/bin/zsh", True),  # Apple's name, not Apple's shell
        ("_mbsetupuser", "501", "/bin/bash", True),  # Apple's name and shell, not its UID
        ("_mbsetupuser", "248", "/bin/bash", False),  # as Apple ships it
        ("_uucp", "4", "/usr/sbin/uucico", False),
        ("_hidden", "499", "/usr/bin/false", False),  # no shell: not interactive anyway
    ],
)
def test_hidden_account_without_password_but_with_a_shell_is_interactive(
    name: str, uid: str, shell: str, interactive: bool
) -> None:
    record = _user(name, uid, Password=["*"]) | {"dsAttrTypeStandard:UserShell": [shell]}
    (user,) = mac.parse_users(_plist([record]), "dscl")
    assert mac.is_service(name, int(uid))
    assert user.account.interactive is interactive


def test_missing_primary_group_and_shell_take_the_documented_defaults() -> None:
    record = {"dsAttrTypeStandard:RecordName": ["eve"], "dsAttrTypeStandard:UniqueID": ["510"]}
    (user,) = mac.parse_users(_plist([record]), "dscl")
    assert user.account.gid == 20 and user.account.shell == "/bin/sh"
    assert user.authorities is None and not user.hidden


@pytest.mark.parametrize(
    ("values", "kinds"),
    [
        (
            [";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2>"],
            {"ShadowHash"},
        ),
        (
            [";DisabledUser;;ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>"],
            {"DisabledUser", "ShadowHash"},
        ),
        ([";DisabledUser;<;ShadowHash;>"], {"DisabledUser", "ShadowHash"}),
        (
            [";Kerberosv5;;alice@LKDC:SHA1.0A;LKDC:SHA1.0A;", ";SecureToken;"],
            {"Kerberosv5", "SecureToken"},
        ),
        (
            [";LocalCachedUser;/Active Directory/CORP/corp.example:alice:6B1E2A9C"],
            {"LocalCachedUser"},
        ),
    ],
)
def test_authentication_authority_keeps_tags_only(values: list[str], kinds: set[str]) -> None:
    (user,) = mac.parse_users(_plist([_user("alice", "501", AuthenticationAuthority=values)]), "d")
    assert user.authorities == frozenset(kinds)
    assert "LKDC" not in repr(user) and "HASHLIST" not in repr(user)


def test_auth_states_from_the_directory() -> None:
    users = mac.parse_users(_stdout("dscl-readall-users/sonoma-office.json"), "dscl")
    states = mac.auth_states(users, "dscl")
    assert (states["alice"].password, states["alice"].locked) == ("set", False)
    assert (states["carol"].password, states["carol"].locked) == ("locked", True)
    assert (states["root"].password, states["root"].locked) == ("never_set", True)
    assert not states["alice"].expiry_known and states["alice"].expires_on is None


def test_withheld_authentication_authority_is_permission_denied_never_not_disabled() -> None:
    users = mac.parse_users(_stdout("dscl-readall-users/sonoma-unprivileged.json"), "dscl")
    with pytest.raises(
        FactPermissionDenied, match="no AuthenticationAuthority for alice, bob, carol"
    ):
        mac.auth_states(users, "dscl")


def test_legacy_crypt_password_is_classified_and_dropped() -> None:
    (user,) = mac.parse_users(_plist([_user("old", "501", Password=["Xy1abcdEFGhij"])]), "d")
    assert user.account.passwd_field == "hash"
    assert "Xy1abcdEFGhij" not in repr(user)


@pytest.mark.parametrize(
    ("attribute", "values"),
    [
        ("dsAttrTypeStandard:Password", ["Xy1abcdEFGhij", "$1$saltsalt$Qm9vZ2VyaGFzaGhhc2g"]),
        ("dsAttrTypeStandard:Password", "Xy1abcdEFGhij"),
        ("dsAttrTypeStandard:AuthenticationAuthority", ["Xy1abcdEFGhij", 7]),
        ("dsAttrTypeNative:ShadowHashData", [b"Xy1abcdEFGhij"]),
    ],
)
def test_parse_errors_never_quote_password_material(attribute: str, values: Any) -> None:
    record: dict[str, Any] = {**_user("old", "501"), attribute: values}
    with pytest.raises(FactParseError) as caught:
        mac.parse_users(_plist([record]), "dscl")
    text = str(caught.value) + caught.value.snippet
    assert "Xy1abcdEFGhij" not in text and "saltsalt" not in text, text


def test_multi_value_password_error_names_the_attribute_not_the_values() -> None:
    hashes = ["Xy1abcdEFGhij", "$1$saltsalt$Qm9vZ2VyaGFzaGhhc2g"]
    with pytest.raises(FactParseError, match="old: Password has 2 values") as caught:
        mac.parse_users(_plist([_user("old", "501", Password=hashes)]), "dscl")
    assert "withheld" in str(caught.value)
    for secret in hashes:
        assert secret not in str(caught.value)
    assert find_secret(jsonable({"m": str(caught.value)})) is None


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("", "no output"),
        ("   \n", "no output"),
        ("RecordName: root\nUniqueID: 0\n", "not a property list"),
        (
            plistlib.dumps({"dsAttrTypeStandard:RecordName": ["root"]}).decode(),
            "not a list of records",
        ),
        (_plist([]), "no account at all"),
        (plistlib.dumps(["root"]).decode(), "a record is not a dictionary"),
        (_plist([{"dsAttrTypeStandard:UniqueID": ["0"]}]), "a record without a RecordName"),
        (_plist([_user("root", "zero")]), "root: UniqueID 'zero' is not a number"),
        (_plist([_user("root", "0", PrimaryGroupID=["0", "1"])]), "PrimaryGroupID has 2 values"),
        (_plist([_user("root", "0"), _user("root", "0")]), "user root listed twice"),
        (
            plistlib.dumps([{"dsAttrTypeStandard:RecordName": "root"}]).decode(),
            "not a list of strings",
        ),
    ],
)
def test_bad_dscl_user_answers_are_parse_errors(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        mac.parse_users(stdout, "dscl")


def test_truncated_dscl_answer_is_a_parse_error() -> None:
    with pytest.raises(FactParseError, match="not a property list"):
        mac.parse_users(_stdout("dscl-readall-users/truncated.json"), "dscl")


# -- macOS: groups -------------------------------------------------------------------


def _mac_accounts(name: str = "dscl-readall-users/sonoma-office.json") -> tuple[Any, ...]:
    return tuple(u.account for u in mac.parse_users(_stdout(name), "dscl"))


def test_nested_admin_groups_are_expanded_and_unknown_ones_kept() -> None:
    groups = {
        g.name: g
        for g in mac.parse_groups(
            _stdout("dscl-readall-groups/sonoma-nested-admins.json"), "d", _mac_accounts()
        )
    }
    assert groups["admin"].gid == 80
    assert groups["admin"].members == (
        "alice",
        "bob",  # through the local group helpdesk
        "group:helpdesk",  # the nesting itself is a member: drift against the baseline
        "nested-group:F3C2A1B0-7E6D-4C5B-8A9F-0E1D2C3B4A59",  # an AD group, not local
        "root",
    )
    assert groups["wheel"].members == ("root",)


def test_staff_nested_into_admin_brings_every_user_by_primary_group() -> None:
    groups = {
        g.name: g
        for g in mac.parse_groups(
            _stdout("dscl-readall-groups/sonoma-staff-nested.json"), "d", _mac_accounts()
        )
    }
    # alice, bob and carol have PrimaryGroupID 20 (staff); root is staff by GroupMembership
    assert groups["admin"].members == ("alice", "bob", "carol", "group:staff", "root")
    assert groups["staff"].members == ("root",)  # primary members are added by the check


@pytest.mark.parametrize(
    "rule", ["everyone", "localaccounts", "netaccounts", "authedusers", "consoleusers"]
)
def test_rule_based_group_nested_into_admin_is_all_users_never_empty(rule: str) -> None:
    def group(name: str, gid: str, guid: str, nested: list[str]) -> dict[str, list[str]]:
        return {
            "dsAttrTypeStandard:RecordName": [name],
            "dsAttrTypeStandard:PrimaryGroupID": [gid],
            "dsAttrTypeStandard:GeneratedUID": [guid],
            "dsAttrTypeStandard:GroupMembership": ["root"] if name == "admin" else [],
            "dsAttrTypeStandard:NestedGroups": nested,
        }

    text = _plist([group("admin", "80", "G-80", ["G-R"]), group(rule, "12", "G-R", [])])
    groups = {g.name: g for g in mac.parse_groups(text, "d", _mac_accounts())}
    assert groups["admin"].members == (f"group:{rule} (all users)", "root")


def test_nested_group_loops_end() -> None:
    def group(
        name: str, gid: str, guid: str, members: list[str], nested: list[str]
    ) -> dict[str, list[str]]:
        return {
            "dsAttrTypeStandard:RecordName": [name],
            "dsAttrTypeStandard:PrimaryGroupID": [gid],
            "dsAttrTypeStandard:GeneratedUID": [guid],
            "dsAttrTypeStandard:GroupMembership": members,
            "dsAttrTypeStandard:NestedGroups": nested,
        }

    text = _plist(
        [group("a", "700", "G-A", ["x"], ["g-b"]), group("b", "701", "G-B", ["y"], ["G-A"])]
    )
    groups = {g.name: g for g in mac.parse_groups(text, "d", ())}
    assert groups["a"].members == ("group:b", "x", "y")
    assert groups["b"].members == ("group:a", "x", "y")


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("", "no output"),
        (_plist([]), "no group at all"),
        (_plist([{"dsAttrTypeStandard:RecordName": ["admin"]}]), "admin: PrimaryGroupID None"),
    ],
)
def test_bad_dscl_group_answers_are_parse_errors(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        mac.parse_groups(stdout, "dscl", ())


# -- macOS: collector ----------------------------------------------------------------


def test_macos_facts_have_the_linux_shapes_and_feed_the_sudoers_parser() -> None:
    facts = _facts(
        "darwin",
        "dscl-readall-users/sonoma-office.json",
        "dscl-readall-groups/sonoma-bob-admin.json",
    )
    assert "alice" in {a.name for a in facts.accounts()}
    assert facts.shadow()["carol"].locked
    policy = facts.sudo_policy()
    assert policy is not None and policy.files == ("/etc/sudoers",)
    by = {(g.principal, g.via) for g in policy.grants}
    assert ("bob", "%admin") in by and ("alice", "%admin") in by and ("root", "root") in by


def test_macos_readers_refuse_other_platforms() -> None:
    with pytest.raises(FactUnavailable, match="not implemented for platform linux"):
        _facts("linux").macos_users()
    with pytest.raises(FactUnavailable, match="not implemented for platform win32"):
        _facts("win32").sudo_policy()


def test_dscl_fixtures_use_the_collectors_argv() -> None:
    for path in (COMMANDS / "dscl-readall-users").glob("*.json"):
        assert json.loads(path.read_text())["argv"] == mac.DSCL_USERS, path
    for path in (COMMANDS / "dscl-readall-groups").glob("*.json"):
        assert json.loads(path.read_text())["argv"] == mac.DSCL_GROUPS, path


def _evidence_text(results: list[Any]) -> str:
    out = []
    for result in results:
        evidence = jsonable({"m": result.message, "o": result.observed, "e": result.expected})
        assert find_secret(evidence) is None, result.message
        out.append(json.dumps(evidence))
    return "\n".join(out)


def test_no_authority_data_reaches_macos_evidence() -> None:
    facts = _facts(
        "darwin",
        "dscl-readall-users/sonoma-hidden-admins.json",
        "dscl-readall-groups/sonoma-office.json",
    )
    params = checks.AccountsParams(baseline_file="/none")
    text = _evidence_text(list(checks.accounts(facts, params)))
    text += _evidence_text(list(checks.privileged(facts, checks.PrivilegedParams("/none"))))
    for leak in ("HASHLIST", "LKDC", "SALTED", "********", "ShadowHash"):
        assert leak not in text


# -- Windows: users ------------------------------------------------------------------


def _win_user(**overrides: object) -> dict[str, object]:
    user: dict[str, object] = {
        "Name": "Administrator",
        "SID": "S-1-5-21-1-2-3-500",
        "Enabled": False,
        "PasswordRequired": True,
        "PasswordLastSet": None,
        "PasswordExpires": None,
        "AccountExpires": None,
        "LastLogon": None,
        "PrincipalSource": "Local",
    }
    return user | overrides


def _users_json(*users: object, computer: str = "WS01") -> str:
    return json.dumps({"ComputerName": computer, "Users": list(users)})


def test_windows_users_fixture_parses() -> None:
    answer = win.parse_users(_stdout("powershell-local-users/win11-office.json"), "", "ps")
    by_name = {u.name: u for u in answer.users}
    assert answer.computer == "WS01"
    assert by_name["Administrator"].rid == 500 and not by_name["Administrator"].enabled
    assert by_name["Guest"].rid == 501 and not by_name["Guest"].password_required
    alice = by_name["alice"]
    assert alice.enabled and alice.rid == 1001
    assert f"{alice.last_logon:%Y-%m-%d %H:%M}" == "2026-11-22 16:45"
    assert alice.last_logon is not None and alice.last_logon.tzinfo is not None
    assert not alice.expired(PINNED_NOW)


def test_escaped_non_ascii_names_arrive_exactly() -> None:
    # What the script prints for Björn: ASCII only, whatever code page decodes it.
    text = _users_json(_win_user(), _win_user(Name="Björn", SID="S-1-5-21-1-2-3-1001"))
    assert '"Bj\\u00f6rn"' in text and text.isascii()  # json.dumps escapes as the script does
    answer = win.parse_users(text, "", "ps")
    assert [u.name for u in answer.users] == ["Administrator", "Björn"]


def test_a_bare_user_object_is_accepted_as_a_list_of_one() -> None:
    text = json.dumps({"ComputerName": "WS01", "Users": _win_user()})
    assert len(win.parse_users(text, "", "ps").users) == 1


@pytest.mark.parametrize(
    ("stdout", "stderr", "says"),
    [
        ("", "", "no output"),
        (_users_json(_win_user()), "WARNING: something", "PowerShell reported"),
        ("Name Enabled\r\n---- -------\r\n", "", "not JSON"),
        (json.dumps([_win_user()]), "", "not the script's object with Users"),
        (json.dumps({"Users": [_win_user()]}), "", "no ComputerName"),
        (_users_json("Administrator"), "", "a user is not a JSON object"),
        (_users_json(_win_user(Name="")), "", "Name is not a string"),
        (_users_json(_win_user(SID="Administrator")), "", "SID is not a security identifier"),
        (_users_json(_win_user(Enabled="True")), "", "Enabled is not true or false"),
        (_users_json(_win_user(LastLogon="22.11.2026 16:45")), "", "LastLogon is not a UTC time"),
        (_users_json(_win_user(LastLogon="2026-13-01T00:00:00Z")), "", "LastLogon is not a UTC"),
        (_users_json(_win_user(SID="S-1-5-21-1-2-3-1001")), "", "no built-in Administrator"),
    ],
)
def test_bad_windows_user_answers_are_parse_errors(stdout: str, stderr: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        win.parse_users(stdout, stderr, "ps")


# -- Windows: groups -----------------------------------------------------------------


def test_windows_groups_by_sid_with_local_prefix_dropped_and_domains_kept() -> None:
    answer = win.parse_groups(
        _stdout("powershell-local-group-members/win11-de-bob-admin.json"), "", "ps"
    )
    admins, rdu, backup, remote, hyperv = answer.groups
    assert (admins.sid, admins.name, admins.local_name) == (
        "S-1-5-32-544",
        "Administrators",
        "Administratoren",
    )
    assert admins.member_names == ["Administrator", "CORP\\Domain Admins", "alice", "bob"]
    assert {m.object_class for m in admins.members} == {"User", "Group"}
    assert rdu.name == "Remote Desktop Users" and rdu.member_names == ["CORP\\helpdesk"]
    assert backup.member_names == []
    assert (remote.sid, remote.name, remote.local_name) == (
        "S-1-5-32-580",
        "Remote Management Users",
        "Remoteverwaltungsbenutzer",
    )
    assert (hyperv.sid, hyperv.name) == ("S-1-5-32-578", "Hyper-V Administrators")
    assert not any(g.missing for g in answer.groups)


def test_member_prefix_is_dropped_only_for_this_computer() -> None:
    assert win._member_name("ws01\\alice", "WS01") == "alice"
    assert win._member_name("WS011\\alice", "WS01") == "WS011\\alice"
    assert win._member_name("AzureAD\\JaneRoe", "WS01") == "AzureAD\\JaneRoe"
    assert win._member_name("S-1-5-21-9-9-9-1105", "WS01") == "S-1-5-21-9-9-9-1105"


def test_orphaned_sid_failure_is_a_group_error_naming_the_cause() -> None:
    answer = win.parse_groups(
        _stdout("powershell-local-group-members/win11-orphaned-sid-1789.json"), "", "ps"
    )
    admins = answer.groups[0]
    assert admins.error == "An unspecified error occurred: error code = 1789"
    assert admins.members == () and admins.local_name is None
    assert "orphaned SID" in win.group_error_reason(admins.error)
    assert "orphaned SID" in win.group_error_reason("Failed to compare two elements in the array.")
    assert (
        win.group_error_reason("Zugriff verweigert")
        == "Get-LocalGroupMember failed: Zugriff verweigert"
    )
    assert answer.groups[1].error is None


def _groups_json(groups: list[dict[str, object]]) -> str:
    return json.dumps({"ComputerName": "WS01", "Groups": groups})


def _group(sid: str, members: object = ()) -> dict[str, object]:
    return {
        "SID": sid,
        "Name": "x",
        "Members": members if members is None else list(members),
        "Error": None,
    }


ALL_GROUPS = [_group(sid) for sid in win.PRIVILEGED_GROUPS]


@pytest.mark.parametrize(
    ("groups", "says"),
    [
        (ALL_GROUPS[:2], "no answer for S-1-5-32-551"),
        ([*ALL_GROUPS, _group("S-1-5-32-544")], "unexpected or repeated group S-1-5-32-544"),
        ([*ALL_GROUPS[:2], _group("S-1-5-32-545")], "unexpected or repeated group S-1-5-32-545"),
        (
            [_group("S-1-5-32-544", ["WS01\\alice"]), *ALL_GROUPS[1:]],
            "a member is not a JSON object",
        ),
    ],
)
def test_bad_windows_group_answers_are_parse_errors(
    groups: list[dict[str, object]], says: str
) -> None:
    with pytest.raises(FactParseError, match=says):
        win.parse_groups(_groups_json(groups), "", "ps")


def _not_found(sid: str) -> dict[str, object]:
    return {
        "SID": sid,
        "Name": None,
        "Members": None,
        "Error": f"Group {sid} was not found.",
        "ErrorId": "GroupNotFound,Microsoft.PowerShell.Commands.GetLocalGroupCommand",
    }


def test_an_optional_group_this_windows_lacks_is_missing_not_empty() -> None:
    groups = [*ALL_GROUPS[:4], _not_found("S-1-5-32-578")]
    hyperv = win.parse_groups(_groups_json(groups), "", "ps").groups[4]
    assert hyperv.missing and hyperv.error and hyperv.members == ()
    # Administrators always exists: "not found" there is an error, never "absent".
    groups = [_not_found("S-1-5-32-544"), *ALL_GROUPS[1:]]
    admins = win.parse_groups(_groups_json(groups), "", "ps").groups[0]
    assert not admins.missing and admins.error


def test_null_members_mean_an_empty_group() -> None:
    groups = [_group("S-1-5-32-544", None), *ALL_GROUPS[1:]]
    assert win.parse_groups(_groups_json(groups), "", "ps").groups[0].members == ()


def test_scripts_select_groups_by_sid_never_by_name() -> None:
    assert {"S-1-5-32-580", "S-1-5-32-578"} <= set(win.PRIVILEGED_GROUPS)
    for sid in win.PRIVILEGED_GROUPS:
        assert f"'{sid}'" in win.GROUPS_SCRIPT
    assert "Administrators" not in win.GROUPS_SCRIPT and "-SID $sid" in win.GROUPS_SCRIPT
    assert "Password" not in win.USERS_SCRIPT.replace("PasswordRequired", "").replace(
        "PasswordLastSet", ""
    ).replace("PasswordExpires", "")


def test_dates_are_written_with_the_invariant_culture() -> None:
    # The current culture writes Buddhist years on a Thai Windows, Hijri ones on ar-SA.
    assert "[Globalization.CultureInfo]::InvariantCulture" in win.USERS_SCRIPT
    assert "\"yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'\"" in win.USERS_SCRIPT
    assert "ToUniversalTime()" in win.USERS_SCRIPT


@pytest.mark.parametrize("argv", [win.POWERSHELL_USERS, win.POWERSHELL_GROUPS])
def test_scripts_print_ascii_json_without_progress_by_absolute_path(argv: list[str]) -> None:
    assert argv[0] == r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    script = argv[-1]
    assert script.startswith("[Console]::OutputEncoding = [Text.UTF8Encoding]::new($false); ")
    assert "$ProgressPreference = 'SilentlyContinue'" in script
    assert "$ErrorActionPreference = 'Stop'" in script
    assert script.endswith(
        "[regex]::Replace($json, '[^\\x00-\\x7F]', "
        "{ param($m) '\\u{0:x4}' -f [int][char]$m.Value })"
    )
    assert "ConvertTo-Json" in script and "$json = ConvertTo-Json" in script


def test_powershell_fixtures_use_the_collectors_argv() -> None:
    for path in (COMMANDS / "powershell-local-users").glob("*.json"):
        assert json.loads(path.read_text())["argv"] == win.POWERSHELL_USERS, path
    for path in (COMMANDS / "powershell-local-group-members").glob("*.json"):
        assert json.loads(path.read_text())["argv"] == win.POWERSHELL_GROUPS, path


# -- Windows: collector --------------------------------------------------------------


class _Answer:
    """A runner answering every call with one exit status and stderr."""

    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode, self.stderr = returncode, stderr

    def run(self, argv: Any, *, timeout: float, env: Any = None) -> CommandResult:
        return CommandResult(tuple(argv), self.returncode, "", self.stderr)


@pytest.mark.parametrize(
    ("stderr", "error", "says"),
    [
        (
            "Get-LocalGroupMember : Access is denied.\r\n    + CategoryInfo : PermissionDenied",
            FactPermissionDenied,
            "access denied: Get-LocalGroupMember : Access is denied.",
        ),
        (
            "Get-LocalUser : The term 'Get-LocalUser' is not recognized\r\n"
            "    + FullyQualifiedErrorId : CommandNotFoundException",
            FactUnavailable,
            "LocalAccounts module is missing",
        ),
        ("Programm nicht gefunden", FactCommandFailed, "exited with status 1"),
    ],
)
def test_powershell_failures_name_the_script_briefly(
    stderr: str, error: type[FactError], says: str
) -> None:
    facts = HostFacts(
        root=WIN_HOST, runner=_Answer(1, stderr), env={}, platform="win32", now=PINNED_NOW
    )
    for read in (facts.windows_users, facts.windows_groups):
        with pytest.raises(error, match=says) as caught:
            read()
        assert "ConvertTo-Json" not in str(caught.value)


def test_windows_readers_refuse_other_platforms() -> None:
    with pytest.raises(FactUnavailable, match="not implemented for platform darwin"):
        _facts("darwin").windows_groups()


def test_no_password_material_reaches_windows_evidence() -> None:
    facts = _facts(
        "win32",
        "powershell-local-users/win11-new-accounts.json",
        "powershell-local-group-members/win11-domain-contractor.json",
        root=WIN_HOST,
    )
    text = _evidence_text(list(checks.accounts(facts, checks.AccountsParams("/none"))))
    text += _evidence_text(list(checks.privileged(facts, checks.PrivilegedParams("/none"))))
    assert "kiosk" in text and "CORP\\\\contractor7" in text
