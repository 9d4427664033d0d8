"""The store's signed statements, as the store writes them and agents and auditors check them.

The store keeps its own hash chain, apart from the agents' chains: an entry for each
enrolment (agent id and public key), each acknowledgement it gives an agent (a
*receipt*: agent id, chain head, time), each retention removal and each audit event.
Every entry is signed with the store's Ed25519 key, which lives outside the store's
database, and names the hash of the entry before it. So an entry cannot be forged or
altered without that key, and one cannot be removed from the middle without breaking
the chain; a removal at the tail is caught by receipts held outside the store (agents
keep theirs) or a pinned copy of the keys.

An entry reads::

    {"schema": "tillsyn.store-chain/v1", "seq": 7, "prev_hash": "...", "kind": "receipt",
     "at": "2026-12-07T10:00:00.000000Z", "agent_id": "...", "data": {...},
     "key_id": "ed25519:...", "signature": "...", "hash": "..."}

``hash`` is SHA-256 over the canonical JSON (RFC 8785) without ``hash``; ``signature``
covers the canonical JSON without ``signature`` and ``hash``, behind a domain prefix so
that no agent seal can ever be passed off as a store entry or the other way round.
This module does no I/O; the store's side is :mod:`tillsyn.store.chain`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tillsyn.agent.evidence import GENESIS_HASH, canonical, key_id, record_hash, unb64

SCHEMA = "tillsyn.store-chain/v1"
ENROLMENT = "enrolment"
RECEIPT = "receipt"
RETENTION = "retention"
AUDIT = "audit"
KINDS = (ENROLMENT, RECEIPT, RETENTION, AUDIT)
_PREFIX = b"tillsyn-store-v1\n"


def signed_message(entry: Mapping[str, Any]) -> bytes:
    """What the store's signature covers: the entry without ``signature`` and ``hash``."""
    return _PREFIX + canonical({k: v for k, v in entry.items() if k not in ("signature", "hash")})


class StoreTrustError(Exception):
    """A store entry or receipt that does not verify; the message says which and why."""


@dataclass(frozen=True)
class StorePublicKey:
    """The store's public key as an agent or auditor holds it (pinned or fetched)."""

    raw: bytes

    @property
    def key_id(self) -> str:
        return key_id(self.raw)

    @classmethod
    def from_b64(cls, text: str) -> StorePublicKey:
        try:
            raw = unb64(text)
        except ValueError as exc:
            raise StoreTrustError(f"the store key is not base64: {exc}") from exc
        if len(raw) != 32:
            raise StoreTrustError("the store key is not a raw 32-byte Ed25519 key")
        return cls(raw)


def check_entry(entry: Any, key: StorePublicKey) -> str | None:
    """Why ``entry`` is not a genuine store entry signed by ``key``; None when it is."""
    if not isinstance(entry, dict) or entry.get("schema") != SCHEMA:
        return "not a store chain entry"
    if entry.get("kind") not in KINDS:
        return f"unknown kind {str(entry.get('kind'))[:32]!r}"
    if entry.get("key_id") != key.key_id:
        return f"signed by key {str(entry.get('key_id'))[:40]}, not the store's {key.key_id}"
    try:
        if record_hash(entry) != entry.get("hash"):
            return "modified: its content no longer matches its hash"
        Ed25519PublicKey.from_public_bytes(key.raw).verify(
            unb64(str(entry.get("signature", ""))), signed_message(entry)
        )
    except (InvalidSignature, ValueError, TypeError):
        return "the store's signature does not verify"
    return None


def verify_receipt(entry: Any, key: StorePublicKey, agent_id: str) -> dict[str, Any]:
    """The receipt's data when ``entry`` is a genuine receipt for ``agent_id``."""
    problem = check_entry(entry, key)
    if problem is None and entry.get("kind") != RECEIPT:
        problem = f"a {entry.get('kind')} entry, not a receipt"
    if problem is None and entry.get("agent_id") != agent_id:
        problem = f"a receipt for agent {entry.get('agent_id')}, not {agent_id}"
    if problem is not None:
        raise StoreTrustError(f"store receipt refused: {problem}")
    data = entry["data"]
    if not isinstance(data, dict):
        raise StoreTrustError("store receipt refused: it holds no data")
    return data


@dataclass
class ChainReport:
    """What :func:`verify_store_chain` found: the entries by kind and the first problem."""

    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problem: str | None = None


def verify_store_chain(entries: Iterable[Any], key: StorePublicKey) -> ChainReport:
    """Check a whole store chain from its start: signatures, order and links."""
    report = ChainReport()
    for entry in entries:
        expected = report.head_seq + 1
        problem = check_entry(entry, key)
        if problem is None and entry.get("seq") != expected:
            problem = f"holds entry {entry.get('seq')} where entry {expected} belongs: removed"
        if problem is None and entry.get("prev_hash") != report.head_hash:
            problem = f"does not follow entry {expected - 1}: an entry was removed or replaced"
        if problem is not None:
            report.problem = f"store chain entry {expected}: {problem}"
            return report
        report.entries += 1
        report.head_seq, report.head_hash = expected, entry["hash"]
    return report
