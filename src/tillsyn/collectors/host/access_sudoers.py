"""The sudoers grammar (sudoers(5), sudo 1.9) and the effective grants it gives.

Parsing follows the manual's EBNF: logical lines joined by a trailing backslash, ``#``
comments (except ``#include``/``#includedir`` and ``#123`` user ids), double-quoted
words and backslash escapes, ``@include``/``@includedir`` (and the ``#`` forms) with
sudo's rules for relative paths, ``%h`` and skipped file names; the four alias kinds;
``Defaults`` with their bindings; user specifications with several host blocks, Runas
specs, options and tags that carry over to the following commands.

Resolution follows sudo's matching: in a list the *last* matching item decides, an odd
number of ``!`` negates, aliases are expanded recursively (a negated alias flips the
polarity of what it contains), ``%group`` and ``%#gid`` resolve to the accounts whose
primary or supplementary group it is, ``#uid`` to the accounts with that uid. A list
that also matches an account this host does not know (``ALL``, ``ALL, !bob``) is a grant
to the principal ``ALL``, with the local accounts it excludes. Netgroups (``+ng``) and
non-Unix groups (``%:grp``) cannot be resolved from files: they stay principals as
written. Anything the grammar does not allow is a :class:`FactParseError` naming file
and line: sudo itself refuses to run on a sudoers file it cannot parse, so a partial
reading would describe a policy that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host.access_accounts import Account, Group

FACT = "host.access.sudo"

#: Tags that carry over to the commands after them (sudoers(5) Tag_Spec).
TAGS = frozenset(
    {
        "EXEC",
        "NOEXEC",
        "FOLLOW",
        "NOFOLLOW",
        "LOG_INPUT",
        "NOLOG_INPUT",
        "LOG_OUTPUT",
        "NOLOG_OUTPUT",
        "MAIL",
        "NOMAIL",
        "INTERCEPT",
        "NOINTERCEPT",
        "PASSWD",
        "NOPASSWD",
        "SETENV",
        "NOSETENV",
    }
)
#: Each tag's opposite: setting one clears the other.
_OPPOSITE = {
    **{t: "NO" + t for t in ("EXEC", "FOLLOW", "LOG_INPUT", "LOG_OUTPUT", "MAIL")},
    **{t: "NO" + t for t in ("INTERCEPT", "PASSWD", "SETENV")},
}
_OPPOSITE |= {v: k for k, v in _OPPOSITE.items()}
#: Option_Spec names (reserved words).
OPTIONS = frozenset({"ROLE", "TYPE", "NOTBEFORE", "NOTAFTER", "TIMEOUT", "CWD", "CHROOT"})
DIGESTS = frozenset({"sha224", "sha256", "sha384", "sha512"})
ALIAS_KINDS = {
    "User_Alias": "user",
    "Runas_Alias": "runas",
    "Host_Alias": "host",
    "Cmnd_Alias": "cmnd",
    "Cmd_Alias": "cmnd",
}
_ALIAS_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_INCLUDE = re.compile(r"^[@#](include|includedir)\s+(.+?)\s*$")
_DEFAULTS = re.compile(r"^Defaults(?:([@:!>])\s*((?:[^\s,\\]|\\.)+(?:\s*,\s*(?:[^\s,\\]|\\.)+)*))?")
_PARAM = re.compile(r"^(!*)\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:(\+=|-=|=)\s*(.*))?$", re.S)
#: sudo's hard limit on nested includes.
MAX_DEPTH = 128


@dataclass(frozen=True)
class Token:
    kind: str  # "word" or "op"
    text: str
    space: bool  # whitespace before it
    quoted: bool = False


@dataclass(frozen=True)
class Item:
    """One list member as written: ``!%admins`` is Item(True, "%admins")."""

    negated: bool
    text: str

    def render(self) -> str:
        return ("!" if self.negated else "") + self.text


@dataclass(frozen=True)
class DefaultsEntry:
    """One parameter of a ``Defaults`` line, e.g. ``Defaults:%sudo !authenticate``."""

    binding: str  # "" global, "@" host, ":" user, "!" command, ">" runas
    targets: tuple[str, ...]
    name: str
    operator: str  # "" flag, "=", "+=", "-="
    value: str
    negated: bool
    source: str

    def render(self) -> str:
        scope = f"Defaults{self.binding}{','.join(self.targets)}"
        flag = ("!" if self.negated else "") + self.name
        return f"{scope} {flag}" + (f" {self.operator} {self.value}" if self.operator else "")


@dataclass(frozen=True)
class CmndSpec:
    runas_users: tuple[Item, ...] | None  # None: no Runas_Spec given (runas_default)
    runas_groups: tuple[Item, ...]
    tags: frozenset[str]
    options: tuple[tuple[str, str], ...]
    command: Item


@dataclass(frozen=True)
class UserSpec:
    users: tuple[Item, ...]
    hosts: tuple[Item, ...]
    commands: tuple[CmndSpec, ...]
    source: str


@dataclass
class Sudoers:
    """The parsed policy: every file read, in order, and what they define."""

    files: list[str] = field(default_factory=list)
    aliases: dict[str, dict[str, tuple[Item, ...]]] = field(
        default_factory=lambda: {k: {} for k in ("user", "runas", "host", "cmnd")}
    )
    alias_sources: dict[tuple[str, str], str] = field(default_factory=dict)
    defaults: list[DefaultsEntry] = field(default_factory=list)
    specs: list[UserSpec] = field(default_factory=list)


@dataclass(frozen=True)
class SudoGrant:
    """One command one principal may run through sudo, after aliases and groups."""

    principal: str  # an account, "ALL", or an unresolvable "+netgroup" / "%:group"
    via: str  # the user list as written ("%sudo", "ADMINS", "ALL, !bob")
    excluded: tuple[str, ...]  # for "ALL": local accounts the list excludes
    hosts: tuple[str, ...]
    runas: str  # "ALL : ALL", "root", "operator : operator"
    command: str  # "ALL", "/usr/bin/systemctl restart nginx", "sudoedit /etc/motd"
    negated: bool
    tags: tuple[str, ...]
    options: tuple[str, ...]
    source: str

    @property
    def nopasswd(self) -> bool:
        return "NOPASSWD" in self.tags

    @property
    def all_commands(self) -> bool:
        return self.command == "ALL" and not self.negated

    @property
    def key(self) -> str:
        """The canonical one-line form baselines list: ``alice ALL=(ALL : ALL) NOPASSWD: ALL``."""
        tags = "".join(f"{t}: " for t in self.tags if t in ("NOPASSWD", "SETENV"))
        bang = "!" if self.negated else ""
        who = self.principal
        if self.excluded:
            who += f" (except {','.join(self.excluded)})"
        return f"{who} {','.join(self.hosts)}=({self.runas}) {tags}{bang}{self.command}"


@dataclass(frozen=True)
class SudoPolicy:
    """The effective sudo policy of a host."""

    files: tuple[str, ...]
    grants: tuple[SudoGrant, ...]
    defaults: tuple[DefaultsEntry, ...]
    warnings: tuple[str, ...]


# -- lexing -------------------------------------------------------------------------


def _strip_comment(line: str, at_start: bool) -> str:
    """``line`` without its comment; ``#`` followed by a digit is a uid, not a comment."""
    quoted = escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            if at_start and i == len(line) - len(line.lstrip()) and _INCLUDE.match(line.lstrip()):
                return line
            if i + 1 < len(line) and line[i + 1].isdigit():
                continue
            return line[:i]
    return line


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each entry: comments stripped, continuations joined."""
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        content = _strip_comment(raw, at_start=not pending)
        if not pending:
            start = number
        body = content.rstrip()
        trailing = len(body) - len(body.rstrip("\\"))
        if trailing % 2 == 1:
            pending += body[:-1] + " "
            continue
        pending += content
        if pending.strip():
            yield start, pending.strip()
        pending = ""
    if pending.strip():
        yield start, pending.strip()


_STOP = set(",:=()") | {" ", "\t"}


def tokenize(line: str, where: str) -> list[Token]:
    tokens: list[Token] = []
    i, n, space = 0, len(line), True
    while i < n:
        ch = line[i]
        if ch in " \t":
            space, i = True, i + 1
            continue
        if ch in ",:=()":
            tokens.append(Token("op", ch, space))
            space, i = False, i + 1
            continue
        if ch == "!" and (space or not tokens or tokens[-1].kind == "op"):
            tokens.append(Token("op", "!", space))
            space, i = False, i + 1
            continue
        if ch == '"':
            j, out = i + 1, []
            while j < n and line[j] != '"':
                if line[j] == "\\" and j + 1 < n:
                    j += 1
                out.append(line[j])
                j += 1
            if j >= n:
                raise FactParseError(FACT, where, "unterminated double quote", line)
            tokens.append(Token("word", "".join(out), space, quoted=True))
            space, i = False, j + 1
            continue
        regex = ch == "^"
        out = []
        if line.startswith("%:", i):  # a non-Unix group: the colon belongs to the name
            out.append("%:")
            i += 2
        while i < n and (line[i] not in _STOP or (regex and line[i] in "():=")):
            if line[i] == "\\" and i + 1 < n:
                if line[i + 1] == "x" and re.match(r"[0-9A-Fa-f]{2}", line[i + 2 : i + 4]):
                    out.append(chr(int(line[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                # Inside arguments, escapes of sudoers' special characters reach fnmatch
                # as the plain character; keep the character.
                out.append(line[i + 1])
                i += 2
                continue
            out.append(line[i])
            i += 1
        tokens.append(Token("word", "".join(out), space))
        space = False
    return tokens


# -- parsing ------------------------------------------------------------------------


class _Cursor:
    def __init__(self, tokens: list[Token], where: str, line: str) -> None:
        self.tokens, self.pos, self.where, self.line = tokens, 0, where, line

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            self.fail("unexpected end of entry")
        self.pos += 1
        return token

    def at_op(self, op: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text == op

    def expect_op(self, op: str) -> None:
        token = self.peek()
        if token is None or token.kind != "op" or token.text != op:
            self.fail(f"expected '{op}'" + (f" before {token.text!r}" if token else " at end"))
        self.pos += 1

    def fail(self, reason: str) -> NoReturn:
        raise FactParseError(FACT, self.where, f"syntax error: {reason}", self.line)

    def done(self) -> bool:
        return self.pos >= len(self.tokens)


def _item(cur: _Cursor) -> Item:
    bangs = 0
    while cur.at_op("!"):
        cur.take()
        bangs += 1
    token = cur.take()
    if token.kind != "word":
        cur.fail(f"expected a name, found {token.text!r}")
    return Item(bangs % 2 == 1, token.text)


def _list(cur: _Cursor, stop: Callable[[_Cursor], bool]) -> tuple[Item, ...]:
    """A comma-separated list of names, ending where ``stop`` says."""
    items = [_item(cur)]
    while cur.at_op(",") and not stop(cur):
        cur.take()
        items.append(_item(cur))
    return tuple(items)


def _command(cur: _Cursor) -> Item:
    """``!* [digest:]command [args]``: consecutive words up to ``,`` ``:`` or the end."""
    bangs = 0
    while cur.at_op("!"):
        cur.take()
        bangs += 1
    token = cur.take()
    if token.kind != "word":
        cur.fail(f"expected a command, found {token.text!r}")
    words = [token.text if not token.quoted or token.text else '""']
    digest = ""
    if token.text in DIGESTS and cur.at_op(":"):
        cur.take()
        digest = f"{token.text}:{cur.take().text}"
        while cur.at_op("=") and not cur.tokens[cur.pos].space:  # base64 padding
            cur.take()
            digest += "="
        token = cur.take()
        words = [token.text]
    while (nxt := cur.peek()) is not None and nxt.kind == "word":
        cur.take()
        words.append(nxt.text if not nxt.quoted or nxt.text else '""')
    text = " ".join(words)
    name = words[0]
    if not (
        name.startswith(("/", "^"))
        or name in ("sudoedit", "list", "ALL")
        or (_ALIAS_NAME.match(text) and not digest)
    ):
        cur.fail(f"command {text!r} is not a fully qualified path, ALL or an alias")
    return Item(bangs % 2 == 1, f"{digest} {text}" if digest else text)


def _cmnd_specs(cur: _Cursor) -> tuple[list[CmndSpec], bool]:
    """Commands after ``=``; returns them and whether a ``:`` starts another host block."""
    specs: list[CmndSpec] = []
    runas_users: tuple[Item, ...] | None = None
    runas_groups: tuple[Item, ...] = ()
    tags: set[str] = set()
    options: dict[str, str] = {}
    while True:
        if cur.at_op("("):
            cur.take()
            users: list[Item] = []
            groups: list[Item] = []
            target = users
            while not cur.at_op(")"):
                if cur.at_op(":"):
                    cur.take()
                    target = groups
                    continue
                if cur.at_op(","):
                    cur.take()
                    continue
                target.append(_item(cur))
            cur.take()
            runas_users, runas_groups = tuple(users), tuple(groups)
        while True:
            token, after = cur.peek(), cur.peek(1)
            if token is None or token.kind != "word" or after is None or after.kind != "op":
                break
            if token.text in OPTIONS and after.text == "=":
                cur.take()
                cur.take()
                options[token.text] = cur.take().text
            elif token.text in TAGS and after.text == ":":
                cur.take()
                cur.take()
                tags.discard(_OPPOSITE[token.text])
                tags.add(token.text)
            else:
                break
        command = _command(cur)
        specs.append(
            CmndSpec(
                runas_users, runas_groups, frozenset(tags), tuple(sorted(options.items())), command
            )
        )
        if cur.done():
            return specs, False
        if cur.at_op(","):
            cur.take()
            continue
        if cur.at_op(":"):
            cur.take()
            return specs, True
        cur.fail(f"unexpected {cur.take().text!r} after a command")


def _split_params(text: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return parts


def _parse_defaults(line: str, where: str, policy: Sudoers) -> None:
    match = _DEFAULTS.match(line)
    if match is None or (match.end() < len(line) and not line[match.end()].isspace()):
        raise FactParseError(FACT, where, "syntax error: malformed Defaults binding", line)
    binding = match.group(1) or ""
    targets = tuple(t.strip() for t in (match.group(2) or "").split(",") if t.strip())
    rest = line[match.end() :].strip()
    if not rest:
        raise FactParseError(FACT, where, "syntax error: Defaults without a parameter", line)
    for part in _split_params(rest):
        param = _PARAM.match(part)
        if param is None:
            raise FactParseError(
                FACT, where, f"syntax error: bad Defaults parameter {part!r}", line
            )
        bangs, name, operator, value = param.groups()
        value = (value or "").strip()
        if operator and not value:
            raise FactParseError(FACT, where, f"syntax error: Defaults {name} has no value", line)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        policy.defaults.append(
            DefaultsEntry(binding, targets, name, operator or "", value, len(bangs) % 2 == 1, where)
        )


def _parse_alias(kind: str, cur: _Cursor, where: str, policy: Sudoers) -> None:
    while True:
        name = cur.take()
        if name.kind != "word" or not _ALIAS_NAME.match(name.text) or name.text == "ALL":
            cur.fail(f"bad alias name {name.text!r}")
        if name.text in OPTIONS or name.text in TAGS:
            cur.fail(f"alias name {name.text!r} is a reserved word")
        cur.expect_op("=")
        if kind == "cmnd":
            members = [_command(cur)]
            while cur.at_op(","):
                cur.take()
                members.append(_command(cur))
            items = tuple(members)
        else:
            items = _list(cur, lambda c: False)
        if name.text in policy.aliases[kind]:
            first = policy.alias_sources[(kind, name.text)]
            cur.fail(f"alias {name.text} redefined (first defined at {first})")
        policy.aliases[kind][name.text] = items
        policy.alias_sources[(kind, name.text)] = where
        if cur.done():
            return
        cur.expect_op(":")


def _parse_user_spec(cur: _Cursor, where: str, policy: Sudoers) -> None:
    users = [_item(cur)]
    while cur.at_op(","):
        cur.take()
        users.append(_item(cur))
    blocks: list[tuple[tuple[Item, ...], list[CmndSpec]]] = []
    while True:
        hosts = [_item(cur)]
        while cur.at_op(","):
            cur.take()
            hosts.append(_item(cur))
        cur.expect_op("=")
        specs, more = _cmnd_specs(cur)
        blocks.append((tuple(hosts), specs))
        if not more:
            break
    for hosts_block, specs in blocks:
        policy.specs.append(UserSpec(tuple(users), hosts_block, tuple(specs), where))


ReadFile = Callable[[str], str]
ListDir = Callable[[str], list[str]]


def parse_sudoers(
    path: str, read: ReadFile, listdir: ListDir, hostname: str, policy: Sudoers | None = None
) -> Sudoers:
    """Parse ``path`` and everything it includes, in sudo's order.

    ``read`` raises FactError for a file it cannot read (an @include of a missing file
    makes sudo refuse to run); ``listdir`` returns [] for a missing @includedir
    directory, which sudo silently skips.
    """
    policy = policy or Sudoers()
    _parse_file(path, read, listdir, hostname, policy, depth=0)
    return policy


def _parse_file(
    path: str, read: ReadFile, listdir: ListDir, hostname: str, policy: Sudoers, depth: int
) -> None:
    if depth > MAX_DEPTH:
        raise FactParseError(FACT, path, f"more than {MAX_DEPTH} nested includes (a loop?)")
    policy.files.append(path)
    text = read(path)
    directory = path.rsplit("/", 1)[0] or "/"
    for lineno, line in logical_lines(text):
        where = f"{path}:{lineno}"
        include = _INCLUDE.match(line)
        if include:
            target = _include_path(include.group(2), where, line)
            target = target.replace("%h", hostname)
            if not target.startswith("/"):
                target = f"{directory}/{target}"
            if include.group(1) == "include":
                _parse_file(target, read, listdir, hostname, policy, depth + 1)
            else:
                for name in sorted(listdir(target)):
                    if name.endswith("~") or "." in name:
                        continue
                    _parse_file(f"{target}/{name}", read, listdir, hostname, policy, depth + 1)
            continue
        if line.startswith("Defaults") and (len(line) == 8 or line[8] in " \t@:!>"):
            _parse_defaults(line, where, policy)
            continue
        tokens = tokenize(line, where)
        cur = _Cursor(tokens, where, line)
        first = tokens[0]
        if first.kind == "word" and first.text in ALIAS_KINDS and not first.quoted:
            cur.take()
            _parse_alias(ALIAS_KINDS[first.text], cur, where, policy)
        else:
            _parse_user_spec(cur, where, policy)


def _include_path(raw: str, where: str, line: str) -> str:
    raw = raw.strip()
    if raw.startswith('"'):
        if not raw.endswith('"') or len(raw) < 2:
            raise FactParseError(FACT, where, "unterminated double quote in include path", line)
        return raw[1:-1].replace("\\\\", "\\")
    if re.search(r"(?<!\\)\s", raw):
        raise FactParseError(FACT, where, "include path has unescaped white space", line)
    return re.sub(r"\\(.)", r"\1", raw)


# -- resolution ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Who:
    """A user being matched: an account of this host, or ``None`` for any other user."""

    account: Account | None
    groups: frozenset[str]
    gids: frozenset[int]


class Resolver:
    """Expands aliases and decides which accounts a user list matches."""

    def __init__(
        self, policy: Sudoers, accounts: tuple[Account, ...], groups: tuple[Group, ...]
    ) -> None:
        self.policy = policy
        self.accounts = accounts
        self.warnings: list[str] = []
        self.unresolved: set[str] = set()
        by_gid = {g.gid: g.name for g in groups}
        self.people: list[_Who] = []
        for account in accounts:
            names = {g.name for g in groups if account.name in g.members}
            gids = {g.gid for g in groups if account.name in g.members} | {account.gid}
            if account.gid in by_gid:
                names.add(by_gid[account.gid])
            self.people.append(_Who(account, frozenset(names), frozenset(gids)))

    def _alias(self, kind: str, name: str, stack: tuple[str, ...]) -> tuple[Item, ...] | None:
        if name in stack:
            raise FactParseError(
                FACT,
                self.policy.alias_sources.get((kind, name), "sudoers"),
                f"alias loop: {' -> '.join((*stack, name))}",
            )
        items = self.policy.aliases[kind].get(name)
        if items is None and _ALIAS_NAME.match(name) and name != "ALL":
            self.warnings.append(f"{kind} alias {name} is used but never defined")
        return items

    def user_matches(
        self, items: tuple[Item, ...], who: _Who, stack: tuple[str, ...] = ()
    ) -> bool | None:
        """sudo's userlist_matches: the last item that matches decides; None if none."""
        for item in reversed(items):
            result = self._user_item(item.text, who, stack)
            if result is not None:
                return result != item.negated
        return None

    def _user_item(self, text: str, who: _Who, stack: tuple[str, ...]) -> bool | None:
        if text == "ALL":
            return True
        if text.startswith(("+", "%:")):
            self.unresolved.add(text)
            return None
        if _ALIAS_NAME.match(text) and not text.startswith("%"):
            items = self._alias("user", text, stack)
            if items is not None:
                return self.user_matches(items, who, (*stack, text))
        if who.account is None:
            return None
        if text.startswith("%#") and text[2:].isdigit():
            return int(text[2:]) in who.gids or None
        if text.startswith("%"):
            return text[1:] in who.groups or None
        if text.startswith("#") and text[1:].isdigit():
            return int(text[1:]) == who.account.uid or None
        return text == who.account.name or None

    def principals(self, items: tuple[Item, ...]) -> tuple[list[str], list[str]]:
        """(principals, excluded): accounts matched, or ``ALL`` plus the accounts excluded."""
        self.unresolved = set()
        if self.user_matches(items, _Who(None, frozenset(), frozenset())):
            excluded = [
                w.account.name
                for w in self.people
                if w.account is not None and self.user_matches(items, w) is not True
            ]
            return ["ALL", *sorted(self._positive_unresolved(items))], sorted(excluded)
        matched = [
            w.account.name
            for w in self.people
            if w.account is not None and self.user_matches(items, w) is True
        ]
        return sorted(set(matched)) + sorted(self._positive_unresolved(items)), []

    def _positive_unresolved(self, items: tuple[Item, ...], flip: bool = False) -> set[str]:
        found: set[str] = set()
        for item in items:
            negated = item.negated != flip
            if item.text.startswith(("+", "%:")) and not negated:
                found.add(item.text)
            elif _ALIAS_NAME.match(item.text):
                inner = self.policy.aliases["user"].get(item.text)
                if inner is not None:
                    found |= self._positive_unresolved(inner, negated)
        return found

    def expand(self, kind: str, items: tuple[Item, ...], stack: tuple[str, ...] = ()) -> list[Item]:
        """Aliases replaced by their members, polarity carried through."""
        out: list[Item] = []
        for item in items:
            members = self._alias(kind, item.text, stack) if _ALIAS_NAME.match(item.text) else None
            if members is None:
                out.append(item)
                continue
            for inner in self.expand(kind, members, (*stack, item.text)):
                out.append(Item(inner.negated != item.negated, inner.text))
        return out


def _runas_text(spec: CmndSpec, resolver: Resolver, runas_default: str) -> str:
    if spec.runas_users is None and not spec.runas_groups:
        return runas_default
    users = ", ".join(i.render() for i in resolver.expand("runas", spec.runas_users or ()))
    groups = ", ".join(i.render() for i in resolver.expand("runas", spec.runas_groups))
    return f"{users} : {groups}" if groups else users


def effective_grants(
    policy: Sudoers, accounts: tuple[Account, ...], groups: tuple[Group, ...]
) -> SudoPolicy:
    """Every (principal, command) grant of the policy, in file order."""
    resolver = Resolver(policy, accounts, groups)
    runas_default = "root"
    for entry in policy.defaults:
        if entry.binding == "" and entry.name == "runas_default" and entry.operator == "=":
            runas_default = entry.value
    grants: list[SudoGrant] = []
    for spec in policy.specs:
        principals, excluded = resolver.principals(spec.users)
        via = ", ".join(i.render() for i in spec.users)
        hosts = tuple(i.render() for i in resolver.expand("host", spec.hosts))
        for cmnd in spec.commands:
            runas = _runas_text(cmnd, resolver, runas_default)
            for command in resolver.expand("cmnd", (cmnd.command,)):
                for principal in principals:
                    grants.append(
                        SudoGrant(
                            principal=principal,
                            via=via,
                            excluded=tuple(excluded) if principal == "ALL" else (),
                            hosts=hosts,
                            runas=runas,
                            command=command.text,
                            negated=command.negated,
                            tags=tuple(sorted(cmnd.tags)),
                            options=tuple(f"{k}={v}" for k, v in cmnd.options),
                            source=spec.source,
                        )
                    )
    return SudoPolicy(
        files=tuple(policy.files),
        grants=tuple(grants),
        defaults=tuple(policy.defaults),
        warnings=tuple(dict.fromkeys(resolver.warnings)),
    )
