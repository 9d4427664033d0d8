"""The one definition of an evidence record: ``evidence.schema.json``, and what the
agent's writer takes from it.

The schema (JSON Schema 2020-12) is the contract between every agent version and the
store: the store refuses (422) every record it refuses, and serves it at
``/api/v1/schema/evidence`` for anyone who reads evidence. The agent does not run a
validator while it collects (the endpoint daemon stays small); instead its writer
reads the same document's length limits and cuts what a check produced to fit them,
with a visible marker, so a very long message or path never makes a record the store
would refuse. ``tests/agent/test_record_schema.py`` validates what real runs write.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from tillsyn.agent.evidence import canonical

SCHEMA_FILE = "evidence.schema.json"
CUT_MARKER = " …[cut]"

#: The free-text fields a check, a plugin or a configuration fills, as (path in the
#: record, where its limit is in the schema). Every other string has a fixed format.
_CUT_FIELDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("message",), ("result", "message")),
    (("resource", "id"), ("resource", "id")),
    (("check", "id"), ("check", "id")),
    (("check", "title"), ("check", "title")),
    (("check", "version"), ("check", "version")),
    (("target", "id"), ("target", "id")),
    (("target", "name"), ("target", "name")),
    (("exception", "id"), ("exception", "id")),
    (("exception", "approved_by"), ("exception", "approved_by")),
    (("exception", "justification"), ("exception", "justification")),
)


#: The fields the local store adds when it chains a record, each at its longest.
_CHAIN_FIELDS_AT_MOST = {"seq": 2**53 - 1, "prev_hash": "0" * 64, "hash": "0" * 64}


@cache
def document() -> dict[str, Any]:
    """The schema as published (parsed once per process)."""
    text = resources.files("tillsyn.agent").joinpath(SCHEMA_FILE).read_text("utf-8")
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def max_record_bytes() -> int:
    """The largest canonical size of one record."""
    return int(document()["x-tillsyn-max-record-bytes"])


def max_depth() -> int:
    """How deep arrays and objects may nest in a record, the record being level 1."""
    return int(document()["x-tillsyn-max-depth"])


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays or objects more than ``limit`` levels deep (itself
    level 1), found without recursion, so that any depth is answered."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            members: Any = item.values()
        elif isinstance(item, list):
            members = item
        else:
            continue
        if level > limit:
            return True
        stack.extend((member, level + 1) for member in members if isinstance(member, dict | list))
    return False


def max_length(definition: str, field: str) -> int:
    """``maxLength`` of ``field`` in ``$defs/<definition>``."""
    return int(document()["$defs"][definition]["properties"][field]["maxLength"])


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and the marker."""
    if len(text) <= limit:
        return text
    return text[: limit - len(CUT_MARKER)] + CUT_MARKER


def fit(record: dict[str, Any]) -> dict[str, Any]:
    """Cut ``record``'s free text to the schema's limits (in place), and when the whole
    record is still over the size limit, replace ``observed`` and ``expected`` by a
    note of their size: a record is written either way, and says what it left out."""
    for path, (definition, field) in _CUT_FIELDS:
        holder: Any = record
        for step in path[:-1]:
            holder = holder.get(step) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and isinstance(holder.get(path[-1]), str):
            holder[path[-1]] = cut(holder[path[-1]], max_length(definition, field))
    for name in ("observed", "expected"):
        if too_deep(record.get(name), max_depth() - 1):  # the record is level 1
            record[name] = {
                "cut": f"{name} evidence left out: nested deeper than the record limit of "
                f"{max_depth()} levels"
            }
    # measured as the store will: with the chain fields the local store adds, at their
    # longest, so that no record passes here and is refused there
    size = len(canonical({**record, **_CHAIN_FIELDS_AT_MOST}))
    if size > max_record_bytes():
        for name in ("observed", "expected"):
            if name in record:
                part = len(canonical({name: record[name]}))
                record[name] = {
                    "cut": f"{part} bytes of {name} evidence left out: over the "
                    f"{max_record_bytes()}-byte record limit"
                }
    return record
