"""Local accounts and groups: strict parsers for /etc/passwd, /etc/group and /etc/shadow.

Only the *state* derived from a password field ever leaves this module (set, locked,
never set, empty): the hash itself is read, classified and dropped, so it cannot reach
a fact, an error message or evidence. Parse errors quote the line with its password
field masked for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from tillsyn.collectors.errors import FactParseError

#: Login shells that refuse an interactive session.
NOLOGIN_SHELLS = frozenset(
    {
        "/usr/sbin/nologin",
        "/sbin/nologin",
        "/bin/false",
        "/usr/bin/false",
        "/bin/sync",  # the historic 'sync' account runs sync(1) and exits
        "/usr/bin/sync",
        "/sbin/shutdown",
        "/sbin/halt",
        "/usr/sbin/shutdown",
        "/usr/sbin/halt",
    }
)

PasswordState = Literal["set", "locked", "never_set", "empty", "in_passwd", "unknown"]


@dataclass(frozen=True)
class Account:
    """One line of /etc/passwd."""

    name: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str
    #: "shadow" when the passwd field is ``x`` (the usual case), else the state it shows.
    passwd_field: Literal["shadow", "empty", "locked", "hash"]
    #: macOS only: one of Apple's service accounts with the shell it ships with, unable
    #: to log in with a password (see :mod:`.access_macos`), so not interactive. Never
    #: set on Linux.
    no_login_service: bool = False

    @property
    def interactive(self) -> bool:
        """An empty shell field means /bin/sh to login(1), so it is interactive."""
        return not self.no_login_service and self.shell not in NOLOGIN_SHELLS


@dataclass(frozen=True)
class Group:
    """One line of /etc/group (the explicit member list; primary members come from passwd)."""

    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ShadowState:
    """What /etc/shadow says about one account, without the hash."""

    name: str
    password: PasswordState
    locked: bool
    expires_on: date | None  # the account (not password) expiry date, field 8
    #: False where the source does not hold the expiry date (macOS: pwpolicy, not read).
    expiry_known: bool = True

    def expired(self, today: date) -> bool:
        return self.expires_on is not None and self.expires_on <= today


def _masked(fields: list[str]) -> str:
    """A line for an error message with the password field replaced."""
    return ":".join([*fields[:1], "<password field>", *fields[2:]]) if len(fields) > 1 else ""


def _int_field(value: str, what: str, fact: str, call: str, lineno: int, shown: str) -> int:
    if not value.isdigit():
        raise FactParseError(fact, f"{call}:{lineno}", f"{what} {value!r} is not a number", shown)
    return int(value)


def _lines(text: str) -> list[tuple[int, str]]:
    return [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]


def parse_passwd(text: str, call: str = "/etc/passwd") -> tuple[Account, ...]:
    """Strict parse: seven fields, numeric ids; NIS compat lines (``+``/``-``) are refused."""
    fact = "host.access.accounts"
    accounts: list[Account] = []
    for lineno, line in _lines(text):
        fields = line.split(":")
        shown = _masked(fields)
        if line[0] in "+-":
            raise FactParseError(
                fact, f"{call}:{lineno}", "NIS compat entries are not supported", shown
            )
        if len(fields) != 7:
            raise FactParseError(
                fact, f"{call}:{lineno}", f"expected 7 fields, found {len(fields)}", shown
            )
        name, secret, uid, gid, gecos, home, shell = fields
        if not name:
            raise FactParseError(fact, f"{call}:{lineno}", "empty account name", shown)
        kind: Literal["shadow", "empty", "locked", "hash"]
        if secret == "x":  # noqa: S105 - the shadow marker, not a password
            kind = "shadow"
        elif secret == "":
            kind = "empty"
        elif secret[0] in "!*":
            kind = "locked"
        else:
            kind = "hash"
        accounts.append(
            Account(
                name=name,
                uid=_int_field(uid, "uid", fact, call, lineno, shown),
                gid=_int_field(gid, "gid", fact, call, lineno, shown),
                gecos=gecos,
                home=home,
                shell=shell or "/bin/sh",
                passwd_field=kind,
            )
        )
    if not accounts:
        raise FactParseError(fact, call, "no account at all (root is always present)", text)
    return tuple(accounts)


def parse_group(text: str, call: str = "/etc/group") -> tuple[Group, ...]:
    fact = "host.access.groups"
    groups: list[Group] = []
    for lineno, line in _lines(text):
        fields = line.split(":")
        shown = _masked(fields)
        if line[0] in "+-":
            raise FactParseError(
                fact, f"{call}:{lineno}", "NIS compat entries are not supported", shown
            )
        if len(fields) != 4:
            raise FactParseError(
                fact, f"{call}:{lineno}", f"expected 4 fields, found {len(fields)}", shown
            )
        name, _secret, gid, members = fields
        groups.append(
            Group(
                name=name,
                gid=_int_field(gid, "gid", fact, call, lineno, shown),
                members=tuple(m.strip() for m in members.split(",") if m.strip()),
            )
        )
    return tuple(groups)


def password_state(field: str) -> tuple[PasswordState, bool]:
    """(state, locked) from a shadow password field, e.g. ``!`` -> (never_set, True).

    ``!`` or ``!!`` (RHEL) alone, ``*`` and ``!*`` mean no password was ever set; a
    ``!`` before a hash is a locked password (``passwd -l``); an empty field lets the
    account log in without a password where PAM allows ``nullok``.
    """
    if field == "":
        return "empty", False
    stripped = field.lstrip("!")
    locked = field.startswith(("!", "*"))
    if stripped in ("", "*") or field.startswith("*"):
        return "never_set", True
    return ("locked" if locked else "set"), locked


def parse_shadow(text: str, call: str = "/etc/shadow") -> dict[str, ShadowState]:
    """Strict parse of /etc/shadow keeping only derived state (the hash is dropped here)."""
    fact = "host.access.shadow"
    states: dict[str, ShadowState] = {}
    epoch = date(1970, 1, 1)
    for lineno, line in _lines(text):
        fields = line.split(":")
        shown = _masked(fields)
        if len(fields) != 9:
            raise FactParseError(
                fact, f"{call}:{lineno}", f"expected 9 fields, found {len(fields)}", shown
            )
        name, secret, expire = fields[0], fields[1], fields[7]
        state, locked = password_state(secret)
        expires_on = None
        if expire:
            days = _int_field(expire, "expiry day", fact, call, lineno, shown)
            expires_on = epoch + timedelta(days=days)
        states[name] = ShadowState(name, state, locked, expires_on)
    return states


def members_of(group: Group, accounts: tuple[Account, ...]) -> tuple[str, ...]:
    """Explicit members plus the accounts whose primary group it is, sorted, unique."""
    primary = {a.name for a in accounts if a.gid == group.gid}
    return tuple(sorted(primary | set(group.members)))
