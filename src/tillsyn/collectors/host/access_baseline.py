"""The approved access baseline: a small YAML file kept under change control.

::

    approved_by: Jane Roe (CISO)          # who approved this state
    approved_at: 2026-03-01               # when (date, or RFC 3339 time)
    accounts:
      interactive: [root, alice, bob]     # accounts allowed an interactive login shell
    privileged:
      groups:                             # members allowed in each privileged group
        sudo: [alice, bob]
        docker: [ci]
      sudo_grants:                        # effective sudo grants, as the evidence writes them
                                          # (Linux, macOS; a Windows baseline needs none)
        - "root ALL=(ALL : ALL) ALL"
        - "alice ALL=(ALL : ALL) ALL"
      sudo_defaults: []                   # weakening Defaults that are approved
    ssh_keys:                             # authorized key fingerprints per account
      alice: ["SHA256:2W0Xh0nV3UxXgZ1q9lT2Q3pB8yqTj5aH1m2vFv0gKqM"]

Every section a check compares against must be present (an empty list approves
nothing); unknown keys, duplicate keys and wrong types are refused with the file and the
key path, because a typo must never read as "nothing approved" or "no baseline".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import yaml

from tillsyn.collectors.errors import FactParseError

FACT = "host.access.baseline"
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
_SECTIONS = {
    "accounts": {"interactive"},
    "privileged": {"groups", "sudo_grants", "sudo_defaults"},
    "ssh_keys": None,  # account name -> fingerprints
}


@dataclass(frozen=True)
class Baseline:
    """An approved baseline; a section is None when the file does not have it."""

    path: str
    approved_by: str
    approved_at: datetime
    interactive_accounts: frozenset[str] | None
    privileged_groups: dict[str, frozenset[str]] | None
    sudo_grants: frozenset[str] | None
    sudo_defaults: frozenset[str] | None
    ssh_keys: dict[str, frozenset[str]] | None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _names(value: Any, where: str, path: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise FactParseError(FACT, path, f"{where} must be a list of names")
    return frozenset(value)


def _when(value: Any, path: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _when(datetime.fromisoformat(value.replace("Z", "+00:00")), path)
        except ValueError:
            pass
    raise FactParseError(FACT, path, f"approved_at {value!r} is not a date or RFC 3339 time")


def parse_baseline(text: str, path: str) -> Baseline:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise FactParseError(FACT, where, f"not valid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise FactParseError(FACT, path, "the baseline must be a mapping")
    unknown = sorted(set(data) - {"approved_by", "approved_at", *_SECTIONS})
    if unknown:
        raise FactParseError(FACT, path, f"unknown key(s) {', '.join(map(str, unknown))}")
    approved_by = data.get("approved_by")
    if not isinstance(approved_by, str) or not approved_by.strip():
        raise FactParseError(FACT, path, "approved_by is missing or empty")
    if "approved_at" not in data:
        raise FactParseError(FACT, path, "approved_at is missing")
    approved_at = _when(data["approved_at"], path)
    for section, allowed in _SECTIONS.items():
        value = data.get(section)
        if section in data and not isinstance(value, dict):
            raise FactParseError(FACT, path, f"{section} must be a mapping")
        if allowed is not None and isinstance(value, dict):
            extra = sorted(set(value) - allowed)
            if extra:
                raise FactParseError(FACT, path, f"unknown key(s) {section}.{', '.join(extra)}")

    interactive = None
    if "accounts" in data:
        if "interactive" not in data["accounts"]:
            raise FactParseError(FACT, path, "accounts.interactive is missing")
        interactive = _names(data["accounts"]["interactive"], "accounts.interactive", path)

    groups = grants = defaults = None
    if "privileged" in data:
        section = data["privileged"]
        if "groups" not in section:
            raise FactParseError(FACT, path, "privileged.groups is missing")
        if not isinstance(section["groups"], dict):
            raise FactParseError(FACT, path, "privileged.groups must map group names to lists")
        groups = {
            str(name): _names(members or [], f"privileged.groups.{name}", path)
            for name, members in section["groups"].items()
        }
        # Absent (None) rather than empty: the Linux/macOS check then says the section is
        # missing; Windows has no sudo and does not ask for it.
        if "sudo_grants" in section:
            grants = _names(section["sudo_grants"] or [], "privileged.sudo_grants", path)
        defaults = _names(section.get("sudo_defaults") or [], "privileged.sudo_defaults", path)

    keys: dict[str, frozenset[str]] | None = None
    if "ssh_keys" in data:
        keys = {}
        for user, prints in data["ssh_keys"].items():
            found = _names(prints or [], f"ssh_keys.{user}", path)
            bad = sorted(p for p in found if not _FINGERPRINT.match(p))
            if bad:
                raise FactParseError(
                    FACT, path, f"ssh_keys.{user}: {bad[0]!r} is not a SHA256:... fingerprint"
                )
            keys[str(user)] = found

    return Baseline(
        path=path,
        approved_by=approved_by.strip(),
        approved_at=approved_at,
        interactive_accounts=interactive,
        privileged_groups=groups,
        sudo_grants=grants,
        sudo_defaults=defaults,
        ssh_keys=keys,
    )
