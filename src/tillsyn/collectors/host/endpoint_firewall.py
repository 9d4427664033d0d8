"""Reading the kernel packet filter: does incoming traffic end in a drop?

The kernel's ruleset is the truth; front-ends (ufw, firewalld) only write it, so the
verdict comes from what ``nft -j list ruleset`` and ``iptables-save``/``ip6tables-save``
print, and the front-ends' own status is kept as evidence beside it.

Netfilter semantics decide how chains combine. Every base chain on the input hook sees
each packet and a drop in any of them is final, so incoming traffic is *default-deny* for
an IP version as soon as ONE input base chain of that version denies what it does not
explicitly allow. A chain denies by default when its policy is drop or when its walk ends
in an unconditional drop or reject, unless first:

- an unconditional ``accept`` (or a jump/goto to a chain that accepts everything) lets
  every packet through: the chain is *open*;
- an ``accept`` that only tests the input interface (``iifname "eth0" accept``,
  ``-i eth0 -j ACCEPT``, firewalld's trusted zone) opens everything on that interface:
  also *open*; ``lo`` is the exception, accepting loopback traffic is normal;
- a conditional ``return`` (or a goto to a chain that may return) sends some packets back
  to the caller, so a later drop in the same chain no longer catches everything (ufw's
  ``ufw-not-local`` chain returns every packet addressed to this host before its drop).

Conditional accepts are the allow-list and do not open a chain. Matches whose breadth
cannot be judged (an ``xt`` match, a rate limit, an address) count as conditions; the
analysis never follows verdict maps. That keeps it conservative: it can say "open" for a
filter that is in fact closed only through verdict maps, never "deny" for an open one
whose openness is written as a plain accept.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Literal

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.parsing import load_json

Outcome = Literal["deny", "open", "continue"]
IpVersion = Literal["ipv4", "ipv6"]

FACT = "host.endpoint.packet_filter"

#: nftables families whose input hook sees each IP version.
NFT_FAMILY_VERSIONS: dict[str, tuple[IpVersion, ...]] = {
    "ip": ("ipv4",),
    "ip6": ("ipv6",),
    "inet": ("ipv4", "ipv6"),
}

#: nft statements that neither match nor decide (they only count, log or mark).
_NFT_NEUTRAL = frozenset({"counter", "log", "mangle", "notrack", "meta", "ct", "set"})

#: iptables targets that neither match nor decide.
_IPT_NEUTRAL_TARGETS = frozenset({"LOG", "NFLOG", "MARK", "CONNMARK", "CT", "NOTRACK", "AUDIT"})

_MAX_DEPTH = 32


@dataclass(frozen=True)
class Rule:
    """One rule reduced to what the default-deny walk needs."""

    number: int  # 1-based position in its chain
    text: str  # how the rule reads (for evidence)
    verdict: str  # accept, drop, reject, return, jump, goto, or "" (no verdict)
    target: str = ""  # the chain a jump/goto goes to
    conditional: bool = True
    interface_only: bool = False  # its only conditions test a non-loopback input interface


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[Rule, ...]
    policy: str = ""  # base chains: accept or drop


@dataclass(frozen=True)
class InputChain:
    """A base chain on the input hook and what it does with traffic nobody allowed."""

    source: str  # the command that showed it
    table: str  # "inet filter", "ip filter"
    name: str
    versions: tuple[IpVersion, ...]
    policy: str
    outcome: Literal["deny", "open"]
    reason: str
    rules: int

    def describe(self) -> str:
        return f"{self.table} {self.name} ({self.source}): {self.reason}"

    def evidence(self) -> dict[str, object]:
        return {
            "source": self.source,
            "table": self.table,
            "chain": self.name,
            "policy": self.policy,
            "rules": self.rules,
            "outcome": self.outcome,
            "reason": self.reason,
        }


@dataclass
class _Walk:
    chains: dict[str, Chain]
    stack: list[str] = field(default_factory=list)


def _evaluate(walk: _Walk, chain: Chain) -> tuple[Outcome, str]:
    """What ``chain`` does with a packet that no conditional accept took."""
    if len(walk.stack) > _MAX_DEPTH or chain.name in walk.stack:
        return "continue", f"jump depth limit at {chain.name}"
    walk.stack.append(chain.name)
    try:
        may_return = False
        for rule in chain.rules:
            where = f"{chain.name} rule {rule.number} ({rule.text})"
            if rule.verdict == "accept":
                if not rule.conditional:
                    return "open", f"{where} accepts every packet"
                if rule.interface_only:
                    return "open", f"{where} accepts everything arriving on an interface"
            elif rule.verdict in ("drop", "reject"):
                if not rule.conditional:
                    if may_return:
                        return "continue", f"{where} drops only what earlier returns left"
                    return "deny", f"{where} drops the rest"
            elif rule.verdict == "return":
                if not rule.conditional:
                    return "continue", f"{where} returns"
                may_return = True
            elif rule.verdict in ("jump", "goto"):
                sub = walk.chains.get(rule.target)
                if sub is None:
                    continue  # a target nft/iptables accepted but we do not know: no effect
                outcome, why = _evaluate(walk, sub)
                if outcome == "open" and (not rule.conditional or rule.interface_only):
                    return "open", f"{where} → {why}"
                if rule.conditional:
                    if rule.verdict == "goto" and outcome == "continue":
                        may_return = True
                    continue
                if outcome == "deny":
                    return ("continue" if may_return else "deny"), f"{where} → {why}"
                if rule.verdict == "goto":
                    return "continue", f"{where} → {why}"
        return "continue", f"{chain.name} ends without a verdict"
    finally:
        walk.stack.pop()


def judge_input_chain(
    chains: dict[str, Chain],
    base: Chain,
    *,
    source: str,
    table: str,
    versions: tuple[IpVersion, ...],
) -> InputChain:
    """Walk one input base chain and say whether it denies by default."""
    outcome, why = _evaluate(_Walk(chains), base)
    if outcome == "continue":
        outcome = "deny" if base.policy == "drop" else "open"
        why = f"policy {base.policy or 'accept'}"
    return InputChain(
        source=source,
        table=table,
        name=base.name,
        versions=versions,
        policy=base.policy or "accept",
        outcome=outcome,
        reason=why,
        rules=len(base.rules),
    )


# -- nftables ---------------------------------------------------------------------------


def _nft_condition_is_interface(expr: object) -> bool | None:
    """True: an input-interface match on something other than lo; False: only lo; None: other."""
    if not isinstance(expr, dict) or "match" not in expr:
        return None
    match = expr["match"]
    left = match.get("left") if isinstance(match, dict) else None
    if not (isinstance(left, dict) and isinstance(left.get("meta"), dict)):
        return None
    if left["meta"].get("key") not in ("iifname", "iif"):
        return None
    right = match.get("right")
    names = right.get("set") if isinstance(right, dict) else [right]
    loopback = match.get("op") in ("==", "in") and isinstance(names, list) and names == ["lo"]
    return not loopback


def _nft_value(value: object) -> str:
    """An nft JSON operand the way ``nft list`` would write it, roughly."""
    if isinstance(value, dict):
        if "set" in value:
            return _nft_value(value["set"])
        for key in ("meta", "ct"):
            if isinstance(value.get(key), dict):
                return f"{'ct ' if key == 'ct' else ''}{value[key].get('key', '?')}"
        if isinstance(value.get("payload"), dict):
            payload = value["payload"]
            return f"{payload.get('protocol', '?')} {payload.get('field', '?')}"
        if isinstance(value.get("prefix"), dict):
            prefix = value["prefix"]
            return f"{prefix.get('addr')}/{prefix.get('len')}"
        return next(iter(value), "?")
    if isinstance(value, list):
        return "{" + ", ".join(_nft_value(v) for v in value) + "}"
    return json.dumps(value) if isinstance(value, str) else str(value)


def _nft_text(expr: object) -> str:
    """One rule expression as text, for evidence (``iifname == "eth0"``, ``jump x``)."""
    if not isinstance(expr, dict) or len(expr) != 1:
        return "?"
    ((key, value),) = expr.items()
    if key == "match" and isinstance(value, dict):
        op = value.get("op", "==")
        return f"{_nft_value(value.get('left'))} {op} {_nft_value(value.get('right'))}"
    if key in ("jump", "goto") and isinstance(value, dict):
        return f"{key} {value.get('target', '?')}"
    if key == "xt" and isinstance(value, dict):
        return f"xt {value.get('type', '')} {value.get('name', '?')}"
    return str(key)


def _nft_rule(number: int, exprs: list[object]) -> Rule:
    verdict, target = "", ""
    conditions: list[object] = []
    for expr in exprs:
        if not isinstance(expr, dict) or len(expr) != 1:
            conditions.append(expr)
            continue
        ((key, value),) = expr.items()
        if key in ("accept", "drop", "reject", "return"):
            verdict = key
        elif key in ("jump", "goto") and isinstance(value, dict):
            verdict, target = key, str(value.get("target", ""))
        elif key == "xt" and isinstance(value, dict) and value.get("type") == "target":
            name = str(value.get("name", ""))
            if name == "REJECT":
                verdict = "reject"
            elif name not in _IPT_NEUTRAL_TARGETS:
                conditions.append(expr)  # an unknown target: never read as a verdict
        elif key in _NFT_NEUTRAL and key != "match":
            continue
        else:
            conditions.append(expr)
    interface = [_nft_condition_is_interface(c) for c in conditions]
    text = " ".join(_nft_text(e) for e in exprs)
    return Rule(
        number=number,
        text=text,
        verdict=verdict,
        target=target,
        conditional=bool(conditions),
        interface_only=bool(conditions) and all(i is True for i in interface),
    )


def parse_nft_ruleset(stdout: str, call: str) -> tuple[InputChain, ...]:
    """Input base chains of ``nft -j list ruleset`` (families ip, ip6, inet)."""
    data = load_json(FACT, call, stdout)
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise FactParseError(FACT, call, "expected an object with an 'nftables' list", stdout)
    chains: dict[tuple[str, str], dict[str, dict[str, object]]] = {}
    rules: dict[tuple[str, str, str], list[Rule]] = {}
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise FactParseError(FACT, call, "ruleset item is not a one-key object", str(item))
        ((kind, body),) = item.items()
        if not isinstance(body, dict):
            raise FactParseError(FACT, call, f"{kind} item is not an object", str(item))
        family, table = str(body.get("family", "")), str(body.get("table", ""))
        if kind == "chain":
            if "name" not in body:
                raise FactParseError(FACT, call, "chain without a name", str(item))
            chains.setdefault((family, table), {})[str(body["name"])] = body
        elif kind == "rule":
            exprs = body.get("expr")
            if not isinstance(exprs, list) or "chain" not in body:
                raise FactParseError(FACT, call, "rule without 'chain' and 'expr'", str(item))
            key = (family, table, str(body["chain"]))
            rules.setdefault(key, []).append(_nft_rule(len(rules.get(key, [])) + 1, exprs))
    found: list[InputChain] = []
    for (family, table), bodies in sorted(chains.items()):
        versions = NFT_FAMILY_VERSIONS.get(family)
        if versions is None:
            continue  # bridge, arp, netdev: not the IP input path
        known = {
            name: Chain(name, tuple(rules.get((family, table, name), ())), str(b.get("policy", "")))
            for name, b in bodies.items()
        }
        for name, body in sorted(bodies.items()):
            if body.get("hook") != "input" or body.get("type") != "filter":
                continue
            if body.get("policy") not in ("accept", "drop"):
                raise FactParseError(
                    FACT, call, f"input chain {name} has no accept/drop policy", str(body)
                )
            found.append(
                judge_input_chain(
                    known, known[name], source="nft", table=f"{family} {table}", versions=versions
                )
            )
    return tuple(found)


# -- iptables-save ----------------------------------------------------------------------

#: iptables-save names the nf_tables backend in its header; the legacy one names none.
_IPT_HEADER = re.compile(r"^# Generated by ip6?tables-save v[\d.]+(?: \((?P<backend>\w+)\))?")
#: Its error lines start with the same version stamp (``iptables-save v1.8.9 (nf_tables): ``).
_IPT_ERROR = re.compile(r"^ip6?tables(?:-legacy)?-save v[\d.]+(?: \((?P<backend>\w+)\))?:")


#: iptables-nft's note for nf_tables tables or chains it cannot show (nft's own tables).
INCOMPATIBLE_MARK = "use 'nft' tool"


def iptables_backend(text: str) -> str:
    """``nf_tables`` or ``legacy`` from an iptables-save header or error line, else ``""``."""
    for line in text.splitlines():
        header = _IPT_HEADER.match(line)
        if header:
            return header.group("backend") or "legacy"
        error = _IPT_ERROR.match(line)
        if error:
            return error.group("backend") or "legacy"
    return ""


def _ipt_rule(number: int, chain: str, tokens: list[str], declared: set[str]) -> Rule:
    verdict, target = "", ""
    conditions: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in ("-j", "-g") and index + 1 < len(tokens):
            name = tokens[index + 1]
            if name in declared:  # a chain of this table (INPUT_ZONES, DOCKER-USER, ufw-...)
                verdict, target = ("goto" if token == "-g" else "jump"), name  # noqa: S105
            elif name in ("ACCEPT", "DROP", "REJECT", "RETURN"):
                verdict = {"ACCEPT": "accept", "DROP": "drop"}.get(name, name.lower())
            elif name not in _IPT_NEUTRAL_TARGETS:
                conditions.append(name)  # an extension target we do not model: not a verdict
            break  # what follows is the target's own options
        if token == "-m" and tokens[index + 1 : index + 2] == ["comment"]:  # noqa: S105
            index += 4 if tokens[index + 2 : index + 3] == ["--comment"] else 2
            continue
        conditions.append(token)
        index += 1
    interface_only = (
        len(conditions) in (2, 3)
        and conditions[-2] == "-i"
        and (conditions[-1] != "lo" or conditions[0] == "!")
        and (len(conditions) == 2 or conditions[0] == "!")
    )
    return Rule(
        number=number,
        text=" ".join(["-A", chain, *tokens]),
        verdict=verdict,
        target=target,
        conditional=bool(conditions),
        interface_only=interface_only,
    )


def parse_iptables_save(
    stdout: str, call: str, version: IpVersion
) -> tuple[str, tuple[InputChain, ...]]:
    """The backend and the ``filter`` table's INPUT chain from ``iptables-save`` output."""
    backend = iptables_backend(stdout)
    table = ""
    tables: dict[str, dict[str, Chain]] = {}
    rules: dict[tuple[str, str], list[Rule]] = {}
    policies: dict[tuple[str, str], str] = {}
    for number, line in enumerate(stdout.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:].strip()
            tables.setdefault(table, {})
        elif line == "COMMIT":
            table = ""
        elif line.startswith(":") and table:
            parts = line[1:].split()
            if len(parts) < 2:
                raise FactParseError(FACT, call, f"line {number}: bad chain line", line)
            policies[(table, parts[0])] = parts[1]
            rules.setdefault((table, parts[0]), [])
        elif line.startswith("-A ") and table:
            try:
                tokens = shlex.split(line)
            except ValueError as exc:
                raise FactParseError(FACT, call, f"line {number}: {exc}", line) from exc
            if len(tokens) < 2:
                raise FactParseError(FACT, call, f"line {number}: rule without chain", line)
            key = (table, tokens[1])
            if key not in rules:
                raise FactParseError(FACT, call, f"line {number}: rule in undeclared chain", line)
            declared = {name for (t, name) in policies if t == table}
            rules[key].append(_ipt_rule(len(rules[key]) + 1, tokens[1], tokens[2:], declared))
        else:
            raise FactParseError(FACT, call, f"line {number}: not iptables-save output", line)
    if table:
        raise FactParseError(FACT, call, f"table {table} has no COMMIT (output cut short)", "")
    found: list[InputChain] = []
    if ("filter", "INPUT") in policies:
        filter_chains = {
            name: Chain(name, tuple(rules[(t, name)]), policies[(t, name)].lower())
            for (t, name) in policies
            if t == "filter"
        }
        policy = policies[("filter", "INPUT")]
        if policy not in ("ACCEPT", "DROP"):
            raise FactParseError(FACT, call, f"INPUT policy {policy!r} is not ACCEPT/DROP", policy)
        found.append(
            judge_input_chain(
                filter_chains,
                filter_chains["INPUT"],
                source=call.split(" ")[0],
                table="filter",
                versions=(version,),
            )
        )
    return backend, tuple(found)


# -- front-ends -------------------------------------------------------------------------


@dataclass(frozen=True)
class UfwStatus:
    active: bool
    incoming: str  # deny, reject, allow; "" when inactive


def parse_ufw_status(stdout: str, call: str) -> UfwStatus:
    """``ufw status verbose``: ``Status: active`` and ``Default: deny (incoming), ...``."""
    fact = "host.endpoint.firewall_frontends"
    status = re.search(r"^Status: (active|inactive)$", stdout, re.MULTILINE)
    if status is None:
        raise FactParseError(fact, call, "no 'Status: active|inactive' line", stdout)
    if status.group(1) == "inactive":
        return UfwStatus(False, "")
    default = re.search(r"^Default: (\w+) \(incoming\)", stdout, re.MULTILINE)
    if default is None:
        raise FactParseError(fact, call, "active but no 'Default: ... (incoming)' line", stdout)
    return UfwStatus(True, default.group(1))


@dataclass(frozen=True)
class FirewalldZone:
    name: str
    target: str
    active: bool
    default: bool
    interfaces: tuple[str, ...]
    sources: tuple[str, ...]


def parse_firewalld_zones(stdout: str, call: str) -> tuple[FirewalldZone, ...]:
    """``firewall-cmd --list-all-zones``: one block per zone, ``target:`` in each."""
    fact = "host.endpoint.firewall_frontends"
    zones: list[FirewalldZone] = []
    header = re.compile(r"^(\S+)(?: \(([^)]*)\))?\s*$")
    block: list[str] = []

    def close() -> None:
        if not block:
            return
        match = header.match(block[0])
        if match is None:
            raise FactParseError(fact, call, "zone block without a zone name", block[0])
        flags = {f.strip() for f in (match.group(2) or "").split(",")}
        values: dict[str, str] = {}
        for line in block[1:]:
            key, sep, value = line.strip().partition(":")
            if sep:
                values[key.strip()] = value.strip()
        if "target" not in values:
            raise FactParseError(fact, call, f"zone {match.group(1)} has no target", block[0])
        zones.append(
            FirewalldZone(
                name=match.group(1),
                target=values["target"],
                active="active" in flags,
                default="default" in flags,
                interfaces=tuple(values.get("interfaces", "").split()),
                sources=tuple(values.get("sources", "").split()),
            )
        )
        block.clear()

    for line in stdout.splitlines():
        if not line.strip():
            close()
        elif not line.startswith((" ", "\t")) and block:
            close()
            block.append(line)
        else:
            block.append(line)
    close()
    if not zones:
        raise FactParseError(fact, call, "no zone in the output", stdout)
    return tuple(zones)
