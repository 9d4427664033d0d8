"""The store's side of the record schema: every pushed record is validated against
``evidence.schema.json`` before anything else reads it.

A record that is validly chained and signed can still be oddly shaped (a ``target``
that is a string, a 10,000-character ``record_id``, ``observed_at: "yesterday"``);
stored, such a record would break every reader of the searchable columns, for every
auditor. The compiled validator (jsonschema-rs) costs a few microseconds a record,
so it runs on every record of every batch. Formats are asserted, not only annotated.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs

from tillsyn.agent.evidence import RESULT, SCHEMA, SEAL
from tillsyn.agent.recordschema import document, max_depth, too_deep

#: At most this much of a validator's message is returned: it quotes the offending
#: value, which may be megabytes.
_MESSAGE_LIMIT = 200


@cache
def _validators() -> dict[str, Any]:
    """One validator per kind, so that an error names the field, not "oneOf failed"."""
    whole = document()
    return {
        kind: jsonschema_rs.validator_for(
            {"$schema": whole["$schema"], "$defs": whole["$defs"], "$ref": f"#/$defs/{kind}"},
            validate_formats=True,
        )
        for kind in (RESULT, SEAL)
    }


def problem(record: Any) -> str | None:
    """What is wrong with ``record`` (the field and why), or None when the schema holds."""
    if not isinstance(record, dict):
        return f"is a JSON {_json_type(record)}, not an object"
    if record.get("schema") != SCHEMA:
        return f"schema: must be {SCHEMA!r}"
    kind = record.get("kind")
    validator = _validators().get(kind) if isinstance(kind, str) else None
    if validator is None:
        return f"kind: must be {RESULT!r} or {SEAL!r}"
    for name in ("observed", "expected"):  # the rest has a fixed shape
        if too_deep(record.get(name), max_depth() - 1):
            return f"{name}: nested deeper than {max_depth()} levels (the record is level 1)"
    if validator.is_valid(record):
        return None
    error = next(iter(validator.iter_errors(record)))
    where = "/".join(str(step) for step in error.instance_path) or "(the record)"
    message = error.message
    if len(message) > _MESSAGE_LIMIT:
        message = message[:_MESSAGE_LIMIT] + "…"
    return f"{where}: {message}"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null"
