"""The evidence record: a result plus who, what and when, chained and sealed.

Every record carries ``prev_hash`` (the previous record's ``hash``) and its own
``hash``: SHA-256 over the record's canonical JSON without ``hash``, canonical meaning
RFC 8785 (JCS: sorted keys, no insignificant whitespace, ECMAScript number formatting),
so any language can recompute it. The records of one agent form one chain. A run ends
with a *seal* record holding the agent's Ed25519 signature over the seal's own body,
which names the chain head it closes: one signature covers every record before it,
instead of a signature per record.

This module is the record schema the store imports; it does no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from pathlib import PurePath
from typing import Any

import rfc8785

SCHEMA = "tillsyn.evidence/v1"
GENESIS_HASH = "0" * 64
RESULT = "result"
SEAL = "seal"


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: one fixed spelling for hashing."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in evidence; use an aware UTC datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jsonable(value: Any, path: str = "observed") -> Any:
    """Turn check output into plain JSON values, refusing what JSON cannot say exactly.

    Datetimes become RFC 3339 UTC strings, tuples and sets lists, enums their values,
    dataclasses dicts. NaN, infinities, bytes and arbitrary objects raise ``TypeError``
    naming where they were found: evidence must not depend on ``repr``.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > _MAX_EXACT:
            raise TypeError(f"{path}: integer {value} is beyond what JSON numbers hold exactly")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{path}: {value} is not a finite number")
        return value
    if isinstance(value, Enum):
        return jsonable(value.value, path)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value), path)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: key {key!r} is not a string")
            out[key] = jsonable(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [jsonable(item, f"{path}[{i}]") for i, item in enumerate(items)]
    raise TypeError(f"{path}: {type(value).__name__} is not JSON evidence")


#: Secret material that must never be kept as evidence: private keys and password hashes
#: (crypt(3) formats as found in /etc/shadow). A last line of defence behind the checks.
_SECRET_PATTERNS = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\$(?:1|2[abxy]?|5|6|7|y|gy|sha1|md5)\$[./A-Za-z0-9$=,]{8,}"), "a password hash"),
)


def find_secret(value: Any, path: str = "evidence") -> str | None:
    """Where ``value`` (plain JSON) holds secret material, as ``path: what``; else None."""
    if isinstance(value, str):
        for pattern, what in _SECRET_PATTERNS:
            if pattern.search(value):
                return f"{path} holds {what}"
        return None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = find_secret(item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
        if found:
            return found
    return None


def canonical(body: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON bytes of ``body``.

    For the values evidence holds, the C JSON encoder with sorted keys writes RFC 8785
    exactly once integral floats are written as integers (ECMAScript prints 26.0 as
    26); :func:`_portable` makes that copy, or returns ``_NOT_PORTABLE`` where the two
    could differ (floats that ECMAScript writes with an exponent, integers beyond 2**53,
    characters that sort or escape differently), and those go through the reference
    implementation. A property test holds both paths to the same bytes.
    """
    portable = _portable(body)
    if portable is not _NOT_PORTABLE:
        return json.dumps(
            portable, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    return bytes(rfc8785.dumps(body))


_MAX_EXACT = 2**53 - 1  # the largest integer an IEEE double (a JSON number) holds exactly
_NOT_PORTABLE = object()


def _safe_text(text: str) -> bool:
    return text.isascii() or all(ord(c) < 0xD800 for c in text)


def _portable(value: Any) -> Any:
    """A copy json.dumps writes exactly as RFC 8785 does, or ``_NOT_PORTABLE``."""
    kind = type(value)
    if kind is str:
        return value if _safe_text(value) else _NOT_PORTABLE
    if kind is dict:
        out = {}
        for key, member in value.items():
            if type(key) is not str or not _safe_text(key):
                return _NOT_PORTABLE
            converted = _portable(member)
            if converted is _NOT_PORTABLE:
                return _NOT_PORTABLE
            out[key] = converted
        return out
    if kind is list:
        items = []
        for member in value:
            converted = _portable(member)
            if converted is _NOT_PORTABLE:
                return _NOT_PORTABLE
            items.append(converted)
        return items
    if kind is int:
        return value if -_MAX_EXACT <= value <= _MAX_EXACT else _NOT_PORTABLE
    if kind is float:
        if value.is_integer():  # ECMAScript writes 26.0 as 26; beyond 2**53, its own way
            return int(value) if abs(value) <= _MAX_EXACT else _NOT_PORTABLE
        # Python's repr and ECMAScript agree (shortest round-trip digits, no exponent)
        # between 1e-4 and 1e16; outside, their exponent notations differ.
        return value if 1e-4 <= abs(value) < 1e16 else _NOT_PORTABLE
    if value is None or kind is bool:
        return value
    return _NOT_PORTABLE


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``record`` without its ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def _stdlib_compact(value: Any) -> bytes:
    if isinstance(value, dict) and any(type(k) is not str for k in value):
        raise TypeError("a key that is not a string")  # json.dumps would coerce it
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@cache
def _compact_sorted_encoder() -> Callable[[Any], bytes]:
    """Compact, key-sorted JSON bytes, as the stdlib writes them: with orjson where it
    is installed (the store's extras bring it; about ten times faster, the same bytes
    for parsed JSON, held to RFC 8785 by the property tests), else the stdlib."""
    try:
        import orjson
    except ImportError:
        return _stdlib_compact
    option = orjson.OPT_SORT_KEYS

    def encode(value: Any) -> bytes:
        return orjson.dumps(value, option=option)

    return encode


def _compact_sorted(value: Any) -> bytes:
    # chosen on first use, so that an agent that never takes in records (only the store
    # does) never imports orjson, even where it is installed
    return _compact_sorted_encoder()(value)


def canonical_and_hash(record: Mapping[str, Any]) -> tuple[bytes, str]:
    """The record's canonical bytes (with ``hash``) and the hash of its content.

    Only for records parsed from JSON (what the store takes in, every record once):
    orjson writes NaN as null and dates and UUIDs as strings where :func:`canonical`
    refuses them, and parsed JSON holds none of those. A C encoder writes them, and
    :func:`_json_output_is_canonical` accepts its output only where it cannot differ
    from RFC 8785; anything else takes :func:`canonical`'s way.
    The portability walk this skips was most of ingest's CPU (bench/store_ingest.py).
    """
    try:
        full = _compact_sorted(record)
    except (TypeError, ValueError):  # a non-str key, an integer beyond 64 bits, too deep
        return canonical(record), record_hash(record)
    if not _json_output_is_canonical(full):
        return canonical(record), record_hash(record)
    content = _compact_sorted({k: v for k, v in record.items() if k != "hash"})
    return full, hashlib.sha256(content).hexdigest()


# A number json.dumps may write otherwise than ECMAScript: an integral float ("26.0"),
# any exponent form, or an integer of 16 digits or more (beyond 2**53 when it matters).
# Numbers follow ":", "," or "[" in compact output; inside a string the same text only
# sends the record the careful way, which is never wrong.
_SUSPECT_NUMBER = re.compile(rb"[:,\[]-?(?:\d+\.0[,\]}]|[\d.]+[eE]|\d{16})")
# A UTF-8 lead byte of a character that may be U+D800 or beyond.
_HIGH_LEAD = re.compile(rb"[\xed-\xff]")


def _json_output_is_canonical(text: bytes) -> bool:
    """True when compact, key-sorted JSON output equals RFC 8785 for this UTF-8 text.

    Below U+D800 code-point key order is RFC 8785's UTF-16 order and no character
    escapes differently (a UTF-8 lead byte below 0xED starts a character below U+D000;
    0xED and above may be U+D800 or beyond, so those take the careful way); numbers are
    screened by :data:`_SUSPECT_NUMBER`. Keys that are not strings never get here.
    """
    if not text.isascii() and _HIGH_LEAD.search(text):
        return False
    return _SUSPECT_NUMBER.search(text) is None


def seal_message(seal: Mapping[str, Any]) -> bytes:
    """What the seal signature covers: the seal's canonical JSON without signature and hash."""
    body = {k: v for k, v in seal.items() if k not in ("hash", "signature")}
    return b"tillsyn-seal-v1\n" + canonical(body)


def key_id(public_key_raw: bytes) -> str:
    """A short, stable name for an Ed25519 public key: ``ed25519:`` + 16 hex of its SHA-256."""
    return "ed25519:" + hashlib.sha256(public_key_raw).hexdigest()[:16]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
