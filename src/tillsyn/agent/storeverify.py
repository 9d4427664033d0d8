"""``tillsyn verify --store``: recompute everything a reader of the store sees from signed
text, and check it against what is held outside the store's database.

What is checked, for every agent and the store itself:

- the store's own chain (:mod:`tillsyn.agent.storetrust`): every entry signed by the
  store key (pinned with ``--pin``, else as the store publishes it), numbered and linked;
- each agent's public key against the store's signed enrolment entry, and against the
  pinned keys when given (a substituted key, and a chain re-signed with it, is caught);
- each agent's evidence chain from where the signed retention entries say it resumes,
  with the same verifier the agent uses, trusting only the enrolled key;
- the agent's head against the store's newest signed receipt (records deleted from the
  end and the head rewound is caught), and last-seen time and version against it;
- every searchable column and control row against what the signed text says
  (:mod:`tillsyn.store.columns`): a ``status`` edited from fail to pass is caught;
- the retention and audit tables against their signed entries, both ways;
- with ``--receipts``, every receipt an agent kept: the store must still hold the
  entry, and the records it acknowledged (a store rewritten wholesale, its chain
  truncated included, cannot produce them).

Problems are named with the agent, the row and the column; nothing stops at the first
agent with a problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from tillsyn.agent import receipts as receipts_module
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.evidence import GENESIS_HASH, canonical, key_id, unb64
from tillsyn.agent.storetrust import (
    AUDIT,
    ENROLMENT,
    RECEIPT,
    RETENTION,
    StorePublicKey,
    StoreTrustError,
    check_entry,
    verify_store_chain,
)
from tillsyn.agent.verify import verify_chain
from tillsyn.store.columns import DERIVED, controls, derive

PINNED_KEYS_SCHEMA = "tillsyn.pinned-keys/v1"


class StoreReadError(Exception):
    """The store could not be read (down, refused the token, answered nonsense)."""


@dataclass
class AgentVerdict:
    agent_id: str
    hostname: str
    records: int = 0
    seals: int = 0
    problems: list[str] = field(default_factory=list)
    #: records stored after the newest receipt (verified by the agent's seals; a push
    #: under way, or a store stopped before signing its receipt)
    unacknowledged: int = 0


@dataclass
class StoreVerdict:
    store_key_id: str = ""
    key_pinned: bool = False
    chain_entries: int = 0
    agents: list[AgentVerdict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # about the store as a whole
    receipts_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not any(a.problems for a in self.agents)


class StoreReader:
    """Read-only calls to a store with an auditor or admin token (an agent's for its own)."""

    def __init__(self, url: str, token: str, ca_file: str | None = None) -> None:
        self.base = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.verify: str | bool = ca_file or True

    def close(self) -> None:
        self.session.close()

    def get(self, path: str, **params: Any) -> Any:
        try:
            answer = self.session.get(
                self.base + path, params=params, timeout=60, verify=self.verify
            )
        except requests.RequestException as exc:
            raise StoreReadError(f"{self.base} unreachable: {exc}") from exc
        if answer.status_code != 200:
            raise StoreReadError(f"{path} answered {answer.status_code}: {answer.text[:200]}")
        try:
            return answer.json()
        except ValueError as exc:
            raise StoreReadError(f"{path} answered with something that is not JSON") from exc

    def chain(self, agent: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            params: dict[str, Any] = {"after": after, "limit": 1000}
            if agent:
                params["agent"] = agent
            page = self.get("/api/v1/store/chain", **params)
            found.extend(page["entries"])
            if page["next_after"] is None:
                return found
            after = int(page["next_after"])

    def evidence(self, agent_id: str) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
        """(stored position, record, stored columns) of one agent, in chain order."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"agent": agent_id, "limit": 1000, "columns": "true"}
            if cursor:
                params["cursor"] = cursor
            page = self.get("/api/v1/evidence", **params)
            yield from zip(page["positions"], page["records"], page["columns"], strict=True)
            cursor = page["next_cursor"]
            if not cursor:
                return

    def audit(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = 0
        while page := self.get("/api/v1/audit", after_id=after, limit=1000):
            found.extend(page)
            after = int(page[-1]["id"])
        return found


def load_pins(path: Path) -> dict[str, Any]:
    """A ``tillsyn store export-keys`` document; StoreTrustError when it is not one."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreTrustError(f"cannot read pinned keys {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("schema") != PINNED_KEYS_SCHEMA:
        raise StoreTrustError(f"{path} is not a `tillsyn store export-keys` document")
    return document


def verify_store(
    reader: StoreReader,
    catalog: Catalog,
    *,
    pins: dict[str, Any] | None = None,
    receipt_files: Sequence[Path] = (),
) -> StoreVerdict:
    verdict = StoreVerdict()
    published = StorePublicKey.from_b64(reader.get("/.well-known/tillsyn-store-key")["public_key"])
    key = published
    if pins is not None:
        key = StorePublicKey.from_b64(pins["store_key"]["public_key"])
        verdict.key_pinned = True
        if published.raw != key.raw:
            verdict.problems.append(
                f"the store now publishes key {published.key_id}, but {key.key_id} was pinned"
            )
    verdict.store_key_id = key.key_id
    entries = reader.chain()
    report = verify_store_chain(entries, key)
    verdict.chain_entries = report.entries
    if report.problem:
        verdict.problems.append(report.problem)
    good = entries[: report.entries]
    by_agent: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for entry in good:
        if entry.get("agent_id"):
            by_agent.setdefault(entry["agent_id"], {}).setdefault(entry["kind"], []).append(entry)
    agents = reader.get("/api/v1/agents")
    pinned_agents = {a["agent_id"]: a for a in (pins or {}).get("agents", [])}
    for agent in agents:
        verdict.agents.append(
            _verify_agent(
                reader, catalog, agent, by_agent.get(agent["agent_id"], {}), pinned_agents
            )
        )
    listed = {a["agent_id"] for a in agents}
    for agent_id, kinds in by_agent.items():
        if ENROLMENT in kinds and agent_id not in listed:
            verdict.problems.append(
                f"agent {agent_id} was enrolled (store chain) but is not listed"
            )
    for agent_id in pinned_agents.keys() - listed:
        verdict.problems.append(f"pinned agent {agent_id} is no longer listed by the store")
    verdict.problems.extend(_compare_rows(reader.get("/api/v1/retention"), good, RETENTION))
    verdict.problems.extend(_compare_rows(reader.audit(), good, AUDIT))
    for path in receipt_files:
        verdict.receipts_checked += _check_receipts(reader, key, path, good, verdict)
    return verdict


def _verify_agent(
    reader: StoreReader,
    catalog: Catalog,
    agent: dict[str, Any],
    signed: dict[str, list[dict[str, Any]]],
    pinned: dict[str, dict[str, Any]],
) -> AgentVerdict:
    verdict = AgentVerdict(agent["agent_id"], agent.get("hostname") or "")
    problems = verdict.problems
    enrolments = signed.get(ENROLMENT, [])
    if len(enrolments) != 1:
        problems.append(
            f"the store's chain holds {len(enrolments)} enrolments of this agent, not 1"
        )
    else:
        data = enrolments[0]["data"]
        for column in ("public_key", "key_id", "hostname", "enrolled_at"):
            if data.get(column) != agent.get(column):
                problems.append(
                    f"agents.{column} is {str(agent.get(column))[:60]!r} but the signed "
                    f"enrolment says {str(data.get(column))[:60]!r}: altered in the database"
                )
    if (
        agent["agent_id"] in pinned
        and pinned[agent["agent_id"]]["public_key"] != agent["public_key"]
    ):
        problems.append("its public key is not the pinned one: the key was substituted")
    try:
        raw = unb64(agent["public_key"])
    except ValueError:
        problems.append("its public key is not base64")
        return verdict
    retained = signed.get(RETENTION, [])
    start = (
        (int(retained[-1]["data"]["to_seq"]), str(retained[-1]["data"]["last_hash"]))
        if retained
        else (0, GENESIS_HASH)
    )
    resumes = agent.get("resumes_at")
    shown = (int(resumes["seq"]), str(resumes["hash"])) if resumes else (0, GENESIS_HASH)
    if shown != start:
        problems.append(
            f"the store says its chain resumes at record {shown[0]}, but the signed retention "
            f"entries say {start[0]}: a retention row was forged or removed"
        )
    stored: list[tuple[int, str]] = []
    hashes: dict[int, Any] = {}
    for position, record, columns in reader.evidence(agent["agent_id"]):
        stored.append((position, canonical(record).decode()))
        hashes[position] = record.get("hash") if isinstance(record, dict) else None
        problems.extend(_column_problems(position, record, columns, catalog))
    chain = verify_chain(
        stored, trusted_keys={key_id(raw): raw}, agent_id=agent["agent_id"], start=start
    )
    verdict.records, verdict.seals = chain.records, chain.seals
    if chain.problem is not None:
        problems.append(f"evidence does NOT verify: {chain.problem}")
        return verdict
    listed = (int(agent["head_seq"]), str(agent["head_hash"]))
    # The listed head must be a record of the verified chain (or where it resumes): a head
    # moved past it would have the store refuse the agent's next honest push as a rewrite.
    # It may be behind the chain's end: the evidence was read after the agents list.
    if listed != start and (listed[0] > chain.head_seq or hashes.get(listed[0]) != listed[1]):
        problems.append(
            f"agents.head_seq/head_hash say the chain ends at record {listed[0]}, which is "
            f"not a record of the stored chain (it ends at {chain.head_seq}): altered"
        )
    receipts = signed.get(RECEIPT, [])
    if not receipts:
        # A first push whose receipt is not signed yet: the agent's seals verified it.
        verdict.unacknowledged = max(0, chain.head_seq - start[0])
        return verdict
    receipt = receipts[-1]
    data = receipt["data"]
    head = (int(data["head_seq"]), str(data["head_hash"]))
    # Records stored after the newest receipt (a push under way, or a store stopped before
    # its receipt) are not a problem: the agent's own seals verified them above, and the
    # agent, which got no receipt for them, sends them again. Fewer records than a receipt
    # vouches for, or others, are.
    if listed[0] < head[0] or (listed[0] == head[0] and listed != head):
        problems.append(
            f"the store says its chain ends at {listed[0]}, but its newest signed "
            f"receipt is for record {head[0]}"
        )
    if head[0] > start[0] and chain.head_seq < head[0]:
        problems.append(
            f"the store acknowledged record {head[0]} (receipt {receipt['seq']}) but holds "
            f"records only to {chain.head_seq}: records after it were deleted"
        )
    elif head[0] > start[0] and hashes.get(head[0]) != head[1]:
        problems.append(
            f"record {head[0]} is not the one receipt {receipt['seq']} acknowledged: replaced"
        )
    verdict.unacknowledged = max(0, chain.head_seq - head[0])
    if listed == head and not data.get("adopted"):
        if _instant(agent.get("last_seen_at")) != _instant(receipt["at"]):
            problems.append("agents.last_seen_at differs from its newest signed receipt")
        if agent.get("agent_version") != data.get("agent_version"):
            problems.append("agents.agent_version differs from its newest signed receipt")
    return verdict


def _column_problems(
    position: int, record: dict[str, Any], stored: dict[str, Any], catalog: Catalog
) -> list[str]:
    try:
        expected = {**derive(record), "controls": controls(record, catalog)}
    except (KeyError, TypeError, AttributeError) as exc:
        return [f"record {position}: its text is not a record ({exc})"]
    return [
        f"record {position}: column {name} is {str(stored.get(name))[:60]!r} in the database "
        f"but {str(value)[:60]!r} in the signed text: altered"
        for name, value in expected.items()
        if name in (*DERIVED, "controls") and stored.get(name) != value
    ]


def _compare_rows(
    rows: list[dict[str, Any]], entries: list[dict[str, Any]], kind: str
) -> list[str]:
    """Rows of the retention or audit table against their signed entries, both ways."""
    signed = {e["seq"]: e for e in entries if e["kind"] == kind}
    adopted = {int(e["data"]["row_id"]): e for e in signed.values() if "row_id" in e["data"]}
    table = "retention_log" if kind == RETENTION else "audit_log"
    problems: list[str] = []
    matched: set[int] = set()
    for row in rows:
        entry = signed.get(row.get("chain_seq")) if row.get("chain_seq") else adopted.get(row["id"])
        if entry is None:
            problems.append(f"{table} row {row['id']} has no signed store chain entry: forged")
            continue
        matched.add(entry["seq"])
        for name, value in _row_view(row, kind).items():
            if entry["data"].get(name) != value:
                problems.append(
                    f"{table} row {row['id']}: {name} differs from signed entry {entry['seq']}"
                )
        if kind == RETENTION and entry.get("agent_id") != row.get("agent_id"):
            problems.append(f"{table} row {row['id']}: agent differs from entry {entry['seq']}")
    for seq in sorted(signed.keys() - matched):
        problems.append(f"store chain entry {seq} ({kind}) has no {table} row: the row was removed")
    return problems


def _row_view(row: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == AUDIT:
        return {"actor": row["actor"], "action": row["action"], "detail": row["detail"]}
    return {
        name: row[name]
        for name in (
            "cutoff",
            "from_seq",
            "to_seq",
            "first_hash",
            "last_hash",
            "removed",
            "record_ids",
            "actor",
        )
    }


def _check_receipts(
    reader: StoreReader,
    key: StorePublicKey,
    path: Path,
    entries: list[dict[str, Any]],
    verdict: StoreVerdict,
) -> int:
    """Receipts an agent kept (a file, or a folder searched for receipts files)."""
    files = sorted(path.rglob(receipts_module.RECEIPTS_FILE)) if path.is_dir() else [path]
    by_seq = {e["seq"]: e for e in entries}
    checked = 0
    for file in files:
        for entry in receipts_module.load(file):
            checked += 1
            problem = check_entry(entry, key)
            where = f"receipt {entry.get('seq')} in {file}"
            if problem is not None:
                verdict.problems.append(f"{where}: {problem}")
                continue
            held = by_seq.get(entry["seq"])
            if held is None or held["hash"] != entry["hash"]:
                verdict.problems.append(
                    f"{where}: the store no longer holds this receipt in its chain: its chain "
                    "was truncated or rewritten"
                )
            agent = next((a for a in verdict.agents if a.agent_id == entry["agent_id"]), None)
            if agent is None:
                verdict.problems.append(f"{where}: agent {entry['agent_id']} is not in the store")
    return checked


def _instant(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class AgainstStore:
    """What ``tillsyn verify --against-store`` found on an agent."""

    receipts: int = 0
    acknowledged_to: int = 0
    compared: int = 0
    retained_to: int = 0
    problems: list[str] = field(default_factory=list)


def verify_against_store(
    reader: StoreReader, key: StorePublicKey, agent_id: str, state_dir: Path
) -> AgainstStore:
    """Prove, from this agent's own chain and kept receipts, that the store still holds
    everything it acknowledged: each kept receipt is still in the store's chain, and
    every local record up to the newest receipt is stored unchanged, or was removed by
    a signed retention entry that names this agent's own hashes."""
    from tillsyn.agent.localstore import LocalEvidence

    found = AgainstStore()
    kept = receipts_module.load(state_dir)
    found.receipts = len(kept)
    newest = receipts_module.newest(kept, key, agent_id)
    if newest is None:
        found.problems.append("no receipts kept: nothing the store acknowledged to compare")
        return found
    found.acknowledged_to = int(newest["data"]["head_seq"])
    entries = {e["seq"]: e for e in reader.chain(agent_id)}
    for entry in kept:
        held = entries.get(entry["seq"])
        if held is None or held["hash"] != entry["hash"]:
            found.problems.append(
                f"the store no longer holds its receipt {entry['seq']} (for record "
                f"{entry['data']['head_seq']}): its chain was truncated or rewritten"
            )
    retained = [e for e in entries.values() if e["kind"] == RETENTION]
    for entry in retained:
        problem = check_entry(entry, key)
        if problem:
            found.problems.append(f"retention entry {entry['seq']}: {problem}")
    local = LocalEvidence(state_dir)
    try:
        mine = {seq: json.loads(body) for seq, body in local.rows()}
    finally:
        local.close()
    start = max((int(e["data"]["to_seq"]) for e in retained), default=0)
    found.retained_to = start
    for entry in retained:
        to_seq = int(entry["data"]["to_seq"])
        if to_seq in mine and mine[to_seq]["hash"] != entry["data"]["last_hash"]:
            found.problems.append(
                f"retention entry {entry['seq']} claims to have removed up to record {to_seq} "
                "with a hash this agent never wrote"
            )
    stored = {position: record for position, record, _ in reader.evidence(agent_id)}
    for seq in range(start + 1, found.acknowledged_to + 1):
        record = mine.get(seq)
        if record is None:
            continue  # not in the local file (a reinstalled agent keeps receipts only)
        found.compared += 1
        if seq not in stored:
            found.problems.append(f"record {seq} was acknowledged but the store no longer has it")
        elif canonical(stored[seq]) != canonical(record):
            found.problems.append(f"record {seq} is stored otherwise than this agent wrote it")
    return found
