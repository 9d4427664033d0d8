"""Recomputing an evidence chain: hashes, order, gaps and seal signatures.

Used by ``tillsyn verify`` on the local file and, later, by the store on what agents
send. It stops at the first record that is wrong, because after a break everything
downstream disagrees too, and names that record and what is wrong with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tillsyn.agent.evidence import GENESIS_HASH, SEAL, key_id, record_hash, seal_message, unb64


@dataclass(frozen=True)
class Problem:
    """The first thing wrong: at which chain position, which record, and what."""

    seq: int
    record_id: str
    reason: str

    def __str__(self) -> str:
        name = f" ({self.record_id})" if self.record_id else ""
        return f"record {self.seq}{name}: {self.reason}"


@dataclass
class Report:
    records: int = 0  # records checked, seals included
    seals: int = 0
    unsealed: int = 0  # records after the last seal: not yet covered by a signature
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    last_seal_seq: int = 0  # everything up to here is covered by a verified signature
    problem: Problem | None = None
    key_ids: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(
    rows: Iterable[tuple[int, str] | tuple[int, dict[str, Any], str]],
    *,
    trusted_keys: Mapping[str, bytes],
    agent_id: str | None = None,
    sealed_head: tuple[int, str] | None = None,
    start: tuple[int, str] = (0, GENESIS_HASH),
) -> Report:
    """Check every stored record in order.

    ``rows`` are (position, body text) as stored, or (position, record, its computed hash)
    from a caller that already canonicalised the record (the store's ingest);
    ``trusted_keys`` maps key ids to raw Ed25519 public keys the verifier trusts (never
    the key a seal carries itself);
    ``sealed_head`` is the newest seal the agent remembers, to notice a cut-off tail;
    ``start`` is the (position, hash) the rows continue from (the store verifies batches
    that continue the chain it already holds).
    """
    report = Report(head_seq=start[0], head_hash=start[1], last_seal_seq=start[0])
    expected_seq, prev_hash = start[0] + 1, start[1]
    since_seal = 0
    for row in rows:
        position = row[0]
        if len(row) == 3:
            record: Any = row[1]
            computed: str | None = row[2]
        else:
            try:
                record = json.loads(row[1])
            except json.JSONDecodeError as exc:
                report.problem = Problem(
                    position, "", f"not valid JSON ({exc.msg}): truncated or altered"
                )
                return report
            computed = None
        problem = _check_one(
            position, record, computed, expected_seq, prev_hash, agent_id, trusted_keys, report
        )
        if problem is not None:
            report.problem = problem
            return report
        report.records += 1
        since_seal = 0 if record["kind"] == SEAL else since_seal + 1
        if record["kind"] == SEAL:
            report.last_seal_seq = expected_seq
        prev_hash = record["hash"]
        report.head_seq, report.head_hash = expected_seq, prev_hash
        expected_seq += 1
    report.unsealed = since_seal
    if sealed_head is not None:
        seq = sealed_head[0]
        if seq > report.head_seq:
            report.problem = Problem(
                report.head_seq + 1,
                "",
                (
                    f"missing: the chain ends at record {report.head_seq}, but the agent sealed "
                    f"record {seq}; records after {report.head_seq} were deleted"
                ),
            )
    return report


def _check_one(
    position: int,
    record: Any,
    computed: str | None,
    expected_seq: int,
    prev_hash: str,
    agent_id: str | None,
    trusted_keys: Mapping[str, bytes],
    report: Report,
) -> Problem | None:
    if not isinstance(record, dict):
        return Problem(position, "", "not a JSON object: altered")
    record_id = str(record.get("record_id", ""))
    seq = record.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return Problem(position, record_id, "has no sequence number: altered")
    if seq != position:
        return Problem(
            position,
            record_id,
            f"holds record {seq} at position {position}: records were reordered or renumbered",
        )
    if seq > expected_seq:
        missing = (
            f"record {expected_seq} is"
            if seq == expected_seq + 1
            else f"records {expected_seq} to {seq - 1} are"
        )
        return Problem(seq, record_id, f"{missing} missing before it: deleted")
    if seq != expected_seq:
        return Problem(position, record_id, f"repeats record {seq}: records were reordered")
    if record.get("prev_hash") != prev_hash:
        return Problem(
            seq,
            record_id,
            f"does not follow record {seq - 1}: its prev_hash does not match; "
            f"record {seq - 1} was altered or replaced",
        )
    if (computed or record_hash(record)) != record.get("hash"):
        return Problem(seq, record_id, "modified: its content no longer matches its hash")
    if agent_id is not None and record.get("agent_id") != agent_id:
        return Problem(seq, record_id, f"belongs to agent {record.get('agent_id')}, not {agent_id}")
    if record.get("kind") == SEAL:
        return _check_seal(record, seq, prev_hash, trusted_keys, report)
    return None


def _check_seal(
    seal: dict[str, Any],
    seq: int,
    prev_hash: str,
    trusted_keys: Mapping[str, bytes],
    report: Report,
) -> Problem | None:
    record_id = str(seal.get("record_id", ""))
    if seal.get("head_seq") != seq - 1 or seal.get("head_hash") != prev_hash:
        return Problem(seq, record_id, "seal does not name the chain head before it")
    kid = str(seal.get("key_id", ""))
    raw = trusted_keys.get(kid)
    if raw is None:
        return Problem(seq, record_id, f"seal is signed by unknown key {kid}")
    if key_id(raw) != kid:
        return Problem(seq, record_id, f"trusted key listed as {kid} has another fingerprint")
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(
            unb64(str(seal.get("signature", ""))), seal_message(seal)
        )
    except (InvalidSignature, ValueError):
        return Problem(seq, record_id, "seal signature does not verify")
    report.seals += 1
    report.key_ids.add(kid)
    return None
