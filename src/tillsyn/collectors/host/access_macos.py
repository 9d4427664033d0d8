"""macOS: local accounts and groups from Directory Services (``dscl -plist . -readall``).

A module of its own because macOS keeps its accounts in the local directory node
(/var/db/dslocal), not in /etc/passwd, which only serves single-user mode. ``dscl -plist
. -readall /Users ATTR...`` prints every record as a dictionary whose keys are the
attribute names (``dsAttrTypeStandard:UniqueID``, ``dsAttrTypeNative:IsHidden``) and
whose values are lists of strings, in an XML property list. The plist form, because the
plain form changes layout when a value holds a space (Armin Briegel, "Parsing dscl
Output in Scripts"). The first ``RecordName`` is the name; later ones are aliases
(``root`` is also ``BUILTIN\\Local System``). A missing ``PrimaryGroupID`` means 20
(Apple's directory data specification); a missing ``UserShell`` means /bin/sh, as an
empty shell field does to login(1).

Service accounts. macOS hides accounts whose name starts with ``_`` and those below UID
500 (daemon, nobody, _www ...; loginwindow's Hide500Users). Hidden is not harmless: a
hidden account with a shell is a known way back in (an admin created at UID 499), and
not only through a password: an SSH key or ``sudo -u`` needs none, so a ``*`` Password
does not make a shell harmless. An account with a nologin/false shell is not
interactive, as on Linux; the only other exemption is Apple's own service accounts that
ship with a shell (:data:`SHIPPED_SERVICE_SHELLS`: ``_mbsetupuser`` /bin/bash,
``_uucp`` /usr/sbin/uucico), by name, UID *and* that shell, and only while they cannot
log in with a password (``Password`` is ``*``, or the AuthenticationAuthority says
``;DisabledUser;``). Any other account with a login shell, hidden or not, is
interactive and judged against the baseline.

Password state, never the password. ``Password`` reads ``********`` when the hash lives
in the shadow store and ``*`` when there is none; anything else would be a legacy crypt
hash and is classified here, then dropped. ShadowHashData (the hash) is never asked for.
``AuthenticationAuthority`` names the methods: ``;ShadowHash;`` a local password,
``;DisabledUser;`` a disabled account (the old authority kept after it),
``;LocalCachedUser;`` a mobile account cached from a directory. Reads by a non-root
user are reported to come back without AuthenticationAuthority (JumpCloud's "re-enable a
disabled Mac user" notes say to read it as root); an account with a ``********``
password and a shell but no authority therefore makes the state unreadable, never
"not disabled". Account expiry lives in pwpolicy and is not read.

Error messages quote attribute values only for the attributes in :data:`SHOWN_ATTRIBUTES`
(names, ids, shells, homes): a Password value may be a legacy crypt hash, and
AuthenticationAuthority and ShadowHashData carry hash lists and principals, so those
(and any attribute not on that list) are never quoted.

Groups: ``GroupMembership`` lists short names, ``NestedGroups`` the GeneratedUID of member
groups (Active Directory groups allowed to administer the Mac are nested into ``admin``
this way). A nested local group is itself a member, written ``group:<name>``, so any
nesting is drift against the baseline (``dseditgroup -o edit -a staff -t group admin``
makes every user an admin in one step), and is expanded: its GroupMembership, the users
whose PrimaryGroupID is its GID (staff, 20, is every user's) and its own nested groups.
The computed built-in groups whose members are rules, not lists (everyone,
localaccounts, netaccounts, authedusers, interactusers, netusers, consoleusers:
:data:`RULE_GROUPS`) are written ``group:<name> (all users)``, never expanded to
nothing. A GUID that is no local group stays a member written ``nested-group:<GUID>``,
so it is judged rather than dropped.
"""

from __future__ import annotations

import plistlib
import re
from dataclasses import dataclass
from typing import Any, Literal
from xml.parsers.expat import ExpatError

from tillsyn.collectors.errors import FactParseError, FactPermissionDenied
from tillsyn.collectors.host.access_accounts import NOLOGIN_SHELLS, Account, Group, ShadowState

USERS_FACT = "host.access.macos_users"
GROUPS_FACT = "host.access.macos_groups"
DSCL = "/usr/bin/dscl"
USER_ATTRIBUTES = (
    "RecordName",
    "UniqueID",
    "PrimaryGroupID",
    "UserShell",
    "NFSHomeDirectory",
    "RealName",
    "Password",
    "AuthenticationAuthority",
    "IsHidden",
)
GROUP_ATTRIBUTES = (
    "RecordName",
    "PrimaryGroupID",
    "GroupMembership",
    "NestedGroups",
    "GeneratedUID",
)
DSCL_USERS = [DSCL, "-plist", ".", "-readall", "/Users", *USER_ATTRIBUTES]
DSCL_GROUPS = [DSCL, "-plist", ".", "-readall", "/Groups", *GROUP_ATTRIBUTES]
#: Below this UID macOS treats an account as a system one (loginwindow Hide500Users).
FIRST_USER_UID = 500
#: Apple's service accounts that ship with a login shell: (name, UID) -> that shell.
SHIPPED_SERVICE_SHELLS = {("_mbsetupuser", 248): "/bin/bash", ("_uucp", 4): "/usr/sbin/uucico"}
#: Attributes whose values may be quoted in an error message (never a password field,
#: AuthenticationAuthority or ShadowHashData).
SHOWN_ATTRIBUTES = frozenset(
    {
        "RecordName",
        "UniqueID",
        "PrimaryGroupID",
        "UserShell",
        "NFSHomeDirectory",
        "RealName",
        "IsHidden",
        "GeneratedUID",
        "GroupMembership",
        "NestedGroups",
    }
)
#: Computed groups whose membership is a rule over all (local, network, logged-in ...)
#: users rather than a list.
RULE_GROUPS = frozenset(
    {
        "everyone",
        "localaccounts",
        "netaccounts",
        "authedusers",
        "interactusers",
        "netusers",
        "consoleusers",
    }
)
SHADOW_MARKER = "********"  # what dscl prints instead of a hash
NO_PASSWORD = "*"  # noqa: S105 - the "no password" marker, not a password
_ID = re.compile(r"^-?\d+$")


@dataclass(frozen=True)
class MacUser:
    """One user record, reduced to what the checks need (no hash, no authority data)."""

    account: Account
    #: Which kinds the AuthenticationAuthority names (ShadowHash, DisabledUser ...);
    #: None when the answer held no AuthenticationAuthority at all.
    authorities: frozenset[str] | None
    hidden: bool

    @property
    def disabled(self) -> bool:
        return self.authorities is not None and "DisabledUser" in self.authorities


def _shown(key: str, value: object) -> str:
    """``value`` for an error message: quoted only for an attribute on the allow-list."""
    if key.split(":", 1)[-1] in SHOWN_ATTRIBUTES:
        return repr(value)
    return f"<{type(value).__name__} withheld: {key} may hold password data>"


def _records(stdout: str, fact: str, call: str) -> list[dict[str, list[str]]]:
    if not stdout.strip():
        raise FactParseError(fact, call, "no output")
    try:
        loaded: Any = plistlib.loads(stdout.encode("utf-8"))
    except (plistlib.InvalidFileException, ExpatError, ValueError, TypeError) as exc:
        # The text is not quoted: a record cut anywhere could put a value of any
        # attribute into the snippet.
        raise FactParseError(
            fact, call, f"not a property list ({exc}; {len(stdout)} characters)"
        ) from exc
    if not isinstance(loaded, list):
        raise FactParseError(fact, call, f"not a list of records but a {type(loaded).__name__}")
    records = []
    for record in loaded:
        if not isinstance(record, dict):
            raise FactParseError(
                fact, call, f"a record is not a dictionary but a {type(record).__name__}"
            )
        out: dict[str, list[str]] = {}
        for key, values in record.items():
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise FactParseError(
                    fact, call, f"{key} is not a list of strings", _shown(str(key), values)
                )
            out[str(key).split(":", 1)[-1]] = values
        records.append(out)
    return records


def _one(record: dict[str, list[str]], key: str, name: str, fact: str, call: str) -> str | None:
    values = record.get(key)
    if not values:
        return None
    if len(values) > 1:
        raise FactParseError(
            fact, call, f"{name}: {key} has {len(values)} values", _shown(key, values)
        )
    return values[0]


def _number(value: str | None, key: str, name: str, fact: str, call: str) -> int:
    if value is None or not _ID.match(value):
        raise FactParseError(fact, call, f"{name}: {key} {value!r} is not a number")
    return int(value)


def _name(record: dict[str, list[str]], fact: str, call: str) -> str:
    names = record.get("RecordName")
    if not names or not names[0]:
        raise FactParseError(fact, call, "a record without a RecordName", repr(sorted(record)))
    return names[0]


def _passwd_field(value: str | None) -> Literal["shadow", "empty", "locked", "hash"]:
    """The Password attribute as a state; a legacy crypt hash is reduced to "hash" here."""
    if value is None or value == SHADOW_MARKER:
        return "shadow"
    if value == NO_PASSWORD:
        return "locked"
    return "empty" if value == "" else "hash"


def _authority_kinds(values: list[str]) -> frozenset[str]:
    """The tags of ``version;tag;data`` values: ``;ShadowHash;HASHLIST:<...>`` is ShadowHash,
    ``;DisabledUser;;ShadowHash;`` (or ``<;ShadowHash;>``) DisabledUser and the tag it
    keeps. Only tags are kept, never the data (principals, hash lists)."""
    kinds: set[str] = set()
    for value in values:
        _version, _, rest = value.partition(";")
        tag, _, data = rest.partition(";")
        if tag:
            kinds.add(tag)
        if tag == "DisabledUser" and data.strip("<>"):
            kinds |= _authority_kinds([data.strip("<>")])
    return frozenset(kinds)


def is_service(name: str, uid: int) -> bool:
    """A macOS service account by name or UID (hidden by loginwindow); root (UID 0) is
    judged like any account. Hidden is not exempt: see :func:`shipped_service`."""
    return uid != 0 and (name.startswith("_") or uid < FIRST_USER_UID)


def shipped_service(name: str, uid: int, shell: str) -> bool:
    """One of Apple's service accounts with the login shell it ships with."""
    return SHIPPED_SERVICE_SHELLS.get((name, uid)) == shell


def parse_users(stdout: str, call: str) -> tuple[MacUser, ...]:
    fact = USERS_FACT
    users: list[MacUser] = []
    seen: set[str] = set()
    for record in _records(stdout, fact, call):
        name = _name(record, fact, call)
        if name in seen:
            raise FactParseError(fact, call, f"user {name} listed twice")
        seen.add(name)
        uid = _number(_one(record, "UniqueID", name, fact, call), "UniqueID", name, fact, call)
        gid_text = _one(record, "PrimaryGroupID", name, fact, call)
        gid = 20 if gid_text is None else _number(gid_text, "PrimaryGroupID", name, fact, call)
        password = _one(record, "Password", name, fact, call)
        authority = record.get("AuthenticationAuthority")
        kinds = None if authority is None else _authority_kinds(authority)
        field = _passwd_field(password)
        cannot_log_in = field == "locked" or (kinds is not None and "DisabledUser" in kinds)
        shell = _one(record, "UserShell", name, fact, call) or "/bin/sh"
        account = Account(
            name=name,
            uid=uid,
            gid=gid,
            gecos=(record.get("RealName") or [""])[0],  # a display name: the first one
            home=_one(record, "NFSHomeDirectory", name, fact, call) or "",
            shell=shell,
            passwd_field=field,
            no_login_service=cannot_log_in and shipped_service(name, uid, shell),
        )
        hidden = (_one(record, "IsHidden", name, fact, call) or "0").strip() in ("1", "YES")
        users.append(MacUser(account, kinds, hidden))
    if not users:
        raise FactParseError(fact, call, "no account at all (root is always present)", stdout)
    return tuple(users)


def auth_states(users: tuple[MacUser, ...], call: str) -> dict[str, ShadowState]:
    """Password and disabled state per account, from Password and AuthenticationAuthority.

    An account that may log in (a ``********`` password and a login shell) but came back
    without AuthenticationAuthority means dscl withheld it: the whole answer is refused,
    as unreadable /etc/shadow is on Linux.
    """
    withheld = sorted(
        u.account.name
        for u in users
        if u.authorities is None
        and u.account.passwd_field == "shadow"  # noqa: S105 - a state name
        and u.account.shell not in NOLOGIN_SHELLS
    )
    if withheld:
        raise FactPermissionDenied(
            "host.access.shadow",
            call,
            f"no AuthenticationAuthority for {', '.join(withheld)}: dscl shows it to root "
            "only, so which accounts are disabled is unknown; run the agent as root",
        )
    states: dict[str, ShadowState] = {}
    for user in users:
        name, kinds = user.account.name, user.authorities
        if kinds is not None and "DisabledUser" in kinds:
            states[name] = ShadowState(name, "locked", True, None, expiry_known=False)
        elif kinds is not None and kinds & {"ShadowHash", "LocalCachedUser"}:
            states[name] = ShadowState(name, "set", False, None, expiry_known=False)
        elif user.account.passwd_field == "locked":  # noqa: S105 - Password "*"
            states[name] = ShadowState(name, "never_set", True, None, expiry_known=False)
    return states


def parse_groups(stdout: str, call: str, users: tuple[Account, ...]) -> tuple[Group, ...]:
    """Groups with nested groups kept as ``group:<name>`` members and expanded (see the
    module docstring); ``users`` give the nested groups' primary-group members."""
    fact = GROUPS_FACT
    raw: list[tuple[str, int, list[str], list[str]]] = []
    by_guid: dict[str, int] = {}
    for record in _records(stdout, fact, call):
        name = _name(record, fact, call)
        gid_text = _one(record, "PrimaryGroupID", name, fact, call)
        gid = _number(gid_text, "PrimaryGroupID", name, fact, call)
        guid = _one(record, "GeneratedUID", name, fact, call)
        if guid:
            by_guid[guid.upper()] = len(raw)
        raw.append((name, gid, record.get("GroupMembership", []), record.get("NestedGroups", [])))
    if not raw:
        raise FactParseError(fact, call, "no group at all (admin is always present)", stdout)

    def expand(index: int, stack: frozenset[int]) -> set[str]:
        _group, _gid, members, nested = raw[index]
        out = set(members)
        for guid in nested:
            inner = by_guid.get(guid.upper())
            if inner is None:
                out.add(f"nested-group:{guid.upper()}")
                continue
            if inner in stack:  # a loop adds nothing new
                continue
            inner_name, inner_gid = raw[inner][0], raw[inner][1]
            if inner_name in RULE_GROUPS:
                out.add(f"group:{inner_name} (all users)")
                continue
            out.add(f"group:{inner_name}")
            out |= {a.name for a in users if a.gid == inner_gid}
            out |= expand(inner, stack | {inner})
        return out

    groups = []
    for index, (name, gid, _members, _nested) in enumerate(raw):
        members = tuple(sorted(m for m in expand(index, frozenset({index})) if m))
        groups.append(Group(name=name, gid=gid, members=members))
    return tuple(groups)
