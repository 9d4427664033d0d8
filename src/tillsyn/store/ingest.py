"""Taking in a batch of an agent's evidence: schema, ownership, chain, seals, idempotency.

A batch continues the chain the store already holds for that agent. It is checked
with the same verifier ``tillsyn verify`` uses, starting from the stored head and
trusting only the public key the agent enrolled with (never the key a seal carries).
Only records covered by a verified seal are stored: a tail after the batch's last
seal waits in the agent's outbox until a later seal covers it. On a chain break or a
bad signature, the records from the last good seal on are refused with the reason,
nothing partial of them is stored, and an alert is kept. Records the store already
holds with the same hash are acknowledged again without being stored twice, so a
replayed batch is harmless.

The store's receipt for a batch is signed after the batch's transaction has committed,
together with those of other pushes (:mod:`tillsyn.store.receipts`): the receipt is an
entry of the store's one chain, whose lock, held across the commit of a whole batch,
made every push wait for every other (bench/store_ingest.py: about 0.7 s a push with
200 agents). If the store stops between the two, the agent got no receipt, keeps the
records in its outbox and sends them again, and that replay gets the receipt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from tillsyn.agent import recordschema
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.evidence import canonical_and_hash, unb64
from tillsyn.agent.storetrust import RECEIPT
from tillsyn.agent.verify import verify_chain
from tillsyn.store import chain, columns, receipts, recordcheck
from tillsyn.store.database import write_transaction
from tillsyn.store.retention import chain_start
from tillsyn.store.schema import agents, alerts, evidence, evidence_controls


class IngestError(Exception):
    """The whole batch is refused; ``status`` is the HTTP status that says why.

    ``alert`` is (kind, detail) to keep in the alert table, in a transaction of its own
    since the batch's transaction is rolled back.
    """

    def __init__(self, status: int, reason: str, alert: tuple[str, str] | None = None) -> None:
        self.status = status
        self.reason = reason
        self.alert = alert
        super().__init__(reason)


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    held_back: int = 0  # after the last seal: resend once a seal covers them
    rejected: int = 0
    reason: str | None = None
    head_seq: int = 0
    head_hash: str = ""
    #: the store's signed receipt for what is stored (for a pure replay, the newest one)
    receipt: dict[str, Any] | None = None
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail) to keep


def _check_shape(index: int, record: Any, agent_id: str) -> dict[str, Any]:
    """``record`` if the record schema holds for it and it is this agent's; else the
    whole batch is refused, naming the record and the field, with an alert kept."""
    wrong = recordcheck.problem(record)
    if wrong is not None:
        reason = f"record {index}: {wrong}"
        raise IngestError(422, reason, ("bad_record", reason))
    if record["agent_id"] != agent_id:
        raise IngestError(
            403,
            f"record {index} belongs to agent {record['agent_id']!r}; this "
            "credential may only write its own evidence",
        )
    checked: dict[str, Any] = record  # a dict, the schema says; parsed for this request
    return checked


def store_batch(
    engine: Engine,
    writer: receipts.ReceiptWriter,
    agent_id: str,
    records: Sequence[Any],
    catalog: Catalog,
    now: datetime | None = None,
    within: Callable[[Connection], None] | None = None,
    slots: AbstractContextManager[Any] | None = None,
) -> IngestResult:
    """A push: :func:`ingest` in a write transaction (after ``within``, a check that must
    hold in that same transaction, such as the token still being valid), then, once that
    has committed, the receipt for what the store holds from ``writer``.

    ``slots`` (a semaphore) bounds how many pushes of this process are in that first
    step at once. It is CPU work under one interpreter lock: forty threads in it at once
    did it no faster than four, and starved the short steps every push waits for (the
    receipt round, a commit) of the interpreter; bench/store_ingest.py measured 8.7k
    records/s unbounded and 10.6k with four."""
    with slots or nullcontext(), write_transaction(engine) as connection:
        if within is not None:
            within(connection)
        result = ingest(connection, agent_id, records, catalog, now)
    if result.receipt is None and result.head_seq > 0:
        result.receipt = writer.receipt(agent_id)
    return result


def ingest(
    connection: Connection,
    agent_id: str,
    records: Sequence[Any],
    catalog: Catalog,
    now: datetime | None = None,
) -> IngestResult:
    """Store what verifies of ``records`` for ``agent_id`` (the caller holds a transaction).
    ``receipt`` is set when a receipt already vouches for the stored head (a replay);
    otherwise the caller asks for one once this has committed (:func:`store_batch`)."""
    when = now or datetime.now(UTC)
    moment = when.isoformat()
    batch = [_check_shape(i, r, agent_id) for i, r in enumerate(records)]
    agent = connection.execute(
        select(agents).where(agents.c.agent_id == agent_id).with_for_update()
    ).first()
    if agent is None:
        raise IngestError(403, f"agent {agent_id} is not enrolled")
    batch.sort(key=lambda r: r["seq"])
    result = IngestResult(head_seq=agent.head_seq, head_hash=agent.head_hash)

    retired = chain_start(connection, agent_id)
    retired_seq = retired[0] if retired else 0
    result.duplicates += sum(1 for r in batch if r["seq"] <= retired_seq)  # removed by retention
    known = [r for r in batch if retired_seq < r["seq"] <= agent.head_seq]
    if known:
        stored = dict(
            connection.execute(
                select(evidence.c.seq, evidence.c.hash).where(
                    (evidence.c.agent_id == agent_id)
                    & evidence.c.seq.in_([r["seq"] for r in known])
                )
            ).all()
        )
        for record in known:
            if stored.get(record["seq"]) == record["hash"]:
                result.duplicates += 1
            else:
                reason = (
                    f"record {record['seq']} differs from the one already stored: the chain "
                    "was rewritten"
                )
                raise IngestError(409, reason, ("chain_conflict", reason))
    fresh = [r for r in batch if r["seq"] > agent.head_seq]
    if not fresh:
        result.receipt = _covering(connection, agent_id, agent.head_seq, agent.head_hash)
        return result

    trusted = {agent.key_id: unb64(agent.public_key)}
    try:
        forms = {r["seq"]: canonical_and_hash(r) for r in fresh}
    except ValueError as exc:  # numbers JSON cannot carry exactly (RFC 8785 refuses them)
        raise IngestError(422, f"a record cannot be canonicalised: {exc}") from exc
    limit = recordschema.max_record_bytes()
    for record in fresh:
        size = len(forms[record["seq"]][0])
        if size > limit:
            reason = (
                f"record {record['seq']} of the chain: {size} bytes, over the {limit}-byte "
                "record limit"
            )
            raise IngestError(422, reason, ("bad_record", reason))
    report = verify_chain(
        [(r["seq"], r, forms[r["seq"]][1]) for r in fresh],
        trusted_keys=trusted,
        agent_id=agent_id,
        start=(agent.head_seq, agent.head_hash),
    )
    covered = [r for r in fresh if r["seq"] <= report.last_seal_seq]
    result.held_back = 0 if report.problem else len(fresh) - len(covered)
    if report.problem is not None:
        result.rejected = len(fresh) - len(covered)
        result.reason = str(report.problem)
        kind = "bad_signature" if "signature" in report.problem.reason else "chain_break"
        result.alerts.append((kind, result.reason))

    if covered:
        texts = {seq: full.decode() for seq, (full, _) in forms.items()}
        evidence_rows, control_rows = _rows(covered, texts, catalog, moment)
        _insert(connection, evidence_rows, control_rows)
        last = covered[-1]
        connection.execute(
            agents.update()
            .where(agents.c.agent_id == agent_id)
            .values(
                head_seq=last["seq"],
                head_hash=last["hash"],
                last_seen_at=moment,
                agent_version=last.get("agent_version"),
            )
        )
        result.head_seq, result.head_hash = last["seq"], last["hash"]
    result.stored = len(covered)
    return result  # the receipt: store_batch asks the writer, which knows the newest


def _covering(
    connection: Connection, agent_id: str, head_seq: int, head_hash: str
) -> dict[str, Any] | None:
    """The agent's newest receipt when it vouches for exactly this head, else None."""
    newest = chain.latest(connection, RECEIPT, agent_id)
    return newest if receipts.covers(newest, head_seq, head_hash) else None


def _rows(
    records: list[dict[str, Any]], texts: dict[int, str], catalog: Catalog, moment: str
) -> tuple[list[tuple[Any, ...]], list[tuple[str, int, str]]]:
    """Evidence rows (:data:`_EVIDENCE_COLUMNS`) and control rows (agent, seq, control),
    see :mod:`tillsyn.store.columns`."""
    evidence_rows: list[tuple[Any, ...]] = []
    control_rows: list[tuple[str, int, str]] = []
    for record in records:
        agent_id, seq = record["agent_id"], record["seq"]
        evidence_rows.append((*columns.values(record), moment, texts[seq]))
        control_rows.extend((agent_id, seq, c) for c in columns.controls(record, catalog))
    return evidence_rows, control_rows


#: Every column an evidence row holds: the derived ones, then what the store adds.
_EVIDENCE_COLUMNS = (*columns.DERIVED, "received_at", "body")
_CONTROL_COLUMNS = ("agent_id", "seq", "control")


def _insert(
    connection: Connection,
    evidence_rows: list[tuple[Any, ...]],
    control_rows: list[tuple[str, int, str]],
) -> None:
    """Write a batch: PostgreSQL's COPY (many times faster than row inserts, measured in
    bench/store_ingest.py), executemany elsewhere; both inside the caller's transaction.
    A record id that is already stored (another chain's) is a conflict, not a crash."""
    conflict = "a record id in this batch is already stored for another record"
    if connection.dialect.name == "postgresql":
        import psycopg.errors  # present with the postgres extra, which this dialect needs

        raw = connection.connection.driver_connection
        try:
            with raw.cursor() as cursor:  # type: ignore[union-attr]
                names = ", ".join(_EVIDENCE_COLUMNS)
                with cursor.copy(f"COPY evidence ({names}) FROM STDIN") as copy:
                    for row in evidence_rows:
                        copy.write_row(row)
                with cursor.copy(
                    "COPY evidence_controls (agent_id, seq, control) FROM STDIN"
                ) as copy:
                    for control_row in control_rows:
                        copy.write_row(control_row)
        except psycopg.errors.UniqueViolation as exc:
            raise IngestError(409, conflict) from exc
        return
    try:
        connection.execute(
            evidence.insert(),
            [dict(zip(_EVIDENCE_COLUMNS, row, strict=True)) for row in evidence_rows],
        )
        if control_rows:
            connection.execute(
                evidence_controls.insert(),
                [dict(zip(_CONTROL_COLUMNS, row, strict=True)) for row in control_rows],
            )
    except IntegrityError as exc:
        raise IngestError(409, conflict) from exc


def record_alert(
    connection: Connection,
    agent_id: str | None,
    kind: str,
    detail: str,
    now: datetime | None = None,
) -> None:
    """Keep an alert (a refused chain, a forged seal) for admins and auditors to see."""
    connection.execute(
        alerts.insert().values(
            at=(now or datetime.now(UTC)).isoformat(),
            agent_id=agent_id,
            kind=kind,
            detail=json.dumps({"reason": detail}),
        )
    )
