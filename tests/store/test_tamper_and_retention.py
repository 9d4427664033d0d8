"""Tampering directly in the store's database is named by `tillsyn verify --store`;
retention removes old evidence yet leaves a chain that verifies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, text

from tests.support.chains import build_chain
from tests.support.cli import tillsyn
from tests.support.server import serving
from tillsyn.agent import identity as identity_module
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.evidence import GENESIS_HASH, b64, canonical, record_hash, seal_message
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.store import audit, enrolment, ingest, retention, tokens
from tillsyn.store.app import create_app
from tillsyn.store.database import write_transaction
from tillsyn.store.receipts import ReceiptWriter
from tillsyn.store.schema import retention_log
from tillsyn.store.storekey import StoreKey


def _enrolled_records(
    engine: Engine, key: StoreKey, state: Path, runs: int
) -> tuple[str, list[dict[str, object]]]:
    """Add ``runs`` sealed runs to the agent in ``state``, enrol it if it is not yet, and
    return its id and every record of its chain."""
    build_chain(state, runs=runs, per_run=3)
    identity = identity_module.load(state)
    local = LocalEvidence(state)
    records = [json.loads(body) for _, body in local.rows()]
    local.close()
    with write_transaction(engine) as connection:
        principal = tokens.authenticate(connection, tokens.create(connection, tokens.Role.ADMIN))
        if identity.agent_id not in {
            r[0] for r in connection.execute(text("SELECT agent_id FROM agents"))
        }:
            enrolment.enrol(
                connection, key, principal, identity.agent_id, b64(identity.public_key_raw), "host"
            )
    return identity.agent_id, records


def _load(engine: Engine, key: StoreKey, state: Path, catalog: Catalog, runs: int = 2) -> None:
    agent_id, records = _enrolled_records(engine, key, state, runs)
    ingest.store_batch(engine, ReceiptWriter(engine, key), agent_id, records, catalog)


def _unguarded(engine: Engine, *statements: str) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE evidence DISABLE TRIGGER evidence_append_only"))
        else:
            connection.execute(text("DROP TRIGGER evidence_no_update"))
            connection.execute(text("DROP TRIGGER evidence_no_delete"))
        for statement in statements:
            connection.execute(text(statement))


@pytest.fixture
def verify(
    engine: Engine, catalog: Catalog, tmp_path: Path, store_key: StoreKey
) -> Iterator[object]:
    token = tmp_path / "auditor.token"
    with engine.begin() as connection:
        token.write_text(tokens.create(connection, tokens.Role.AUDITOR))
    with serving(create_app(engine, catalog, store_key)) as base:
        yield lambda: tillsyn("verify", "--store", base, "--token-file", str(token))


@pytest.mark.parametrize(
    ("statements", "says"),
    [
        (
            [
                'UPDATE evidence SET body = replace(body, \'"status":"pass"\', '
                '\'"status":"fail"\') WHERE seq = 2'
            ],
            "record 2 (",
        ),
        (["DELETE FROM evidence WHERE seq = 3"], "record 3 is missing"),
        (
            [
                "UPDATE evidence SET seq = -2 WHERE seq = 2",
                "UPDATE evidence SET seq = 2 WHERE seq = 5",
                "UPDATE evidence SET seq = 5 WHERE seq = -2",
            ],
            "reordered",
        ),
    ],
)
def test_verify_store_names_the_tampered_record(
    engine: Engine,
    catalog: Catalog,
    tmp_path: Path,
    store_key: StoreKey,
    verify: object,
    statements: list[str],
    says: str,
) -> None:
    _load(engine, store_key, tmp_path / "agent", catalog)
    assert verify().returncode == 0  # type: ignore[operator]
    _unguarded(engine, *statements)
    done = verify()  # type: ignore[operator]
    assert done.returncode == 1
    assert "evidence does NOT verify" in done.stderr
    assert says in done.stderr


def test_retention_removes_old_sealed_evidence_and_the_rest_still_verifies(
    engine: Engine, catalog: Catalog, tmp_path: Path, verify: object, store_key: StoreKey
) -> None:
    state = tmp_path / "agent"
    _load(engine, store_key, state, catalog)
    with write_transaction(engine) as connection:
        cutoff = datetime.now(UTC) + timedelta(hours=1)
        removed = retention.apply(connection, store_key, cutoff, "test")
    assert [(r.from_seq, r.to_seq, r.count) for r in removed] == [(1, 8, 8)]
    _load(engine, store_key, state, catalog, runs=1)  # the agent goes on: records 9-12
    done = verify()  # type: ignore[operator]
    assert done.returncode == 0, done.stderr
    assert "4 records and 1 seals verified" in done.stdout
    with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
        connection.execute(text("DELETE FROM evidence"))


def _unguard_all(connection: Connection) -> None:
    """What a login that owns the tables can do: switch every append-only guard off."""
    if connection.dialect.name == "postgresql":
        for table in ("evidence", "audit_log", "retention_log", "store_chain"):
            connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        return
    for (name,) in connection.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    ).all():
        connection.execute(text(f'DROP TRIGGER "{name}"'))


def _substitute_key(connection: Connection) -> None:
    """Replace the agent's enrolled key by the attacker's and re-sign every seal with it,
    rebuilding the whole chain, so that every record and seal verifies under the new key."""
    forger = identity_module.AgentIdentity(agent_id="", private_key=Ed25519PrivateKey.generate())
    rows = connection.execute(text("SELECT agent_id, seq, body FROM evidence ORDER BY seq")).all()
    prev = GENESIS_HASH
    for agent_id, seq, body in rows:
        record = json.loads(body)
        record["prev_hash"] = prev
        if record["kind"] == "seal":
            record["head_hash"] = prev
            record["key_id"] = forger.key_id
            record["public_key"] = b64(forger.public_key_raw)
            record.pop("signature", None)
            record.pop("hash", None)
            record["signature"] = b64(forger.sign(seal_message(record)))
        record["hash"] = prev = record_hash(record)
        connection.execute(
            text("UPDATE evidence SET body = :b, hash = :h WHERE agent_id = :a AND seq = :s"),
            {"b": canonical(record).decode(), "h": prev, "a": agent_id, "s": seq},
        )
    connection.execute(
        text("UPDATE agents SET public_key = :p, key_id = :k, head_hash = :h"),
        {"p": b64(forger.public_key_raw), "k": forger.key_id, "h": prev},
    )


def _truncate_and_rewind(connection: Connection) -> None:
    """Remove the newest run (records 5-8) and move the stored head back to record 4."""
    connection.execute(text("DELETE FROM evidence_controls WHERE seq > 4"))
    connection.execute(text("DELETE FROM evidence WHERE seq > 4"))
    connection.execute(
        text(
            "UPDATE agents SET head_seq = 4, head_hash = (SELECT hash FROM evidence WHERE seq = 4)"
        )
    )


def _forge_retention(connection: Connection) -> None:
    """Remove the first run and claim, in retention_log, that retention did it."""
    first = connection.execute(text("SELECT agent_id, hash FROM evidence WHERE seq = 1")).one()
    last = connection.execute(text("SELECT hash FROM evidence WHERE seq = 4")).scalar()
    ids = [r[0] for r in connection.execute(text("SELECT record_id FROM evidence WHERE seq <= 4"))]
    connection.execute(text("DELETE FROM evidence_controls WHERE seq <= 4"))
    connection.execute(text("DELETE FROM evidence WHERE seq <= 4"))
    connection.execute(
        retention_log.insert().values(
            at=datetime.now(UTC).isoformat(),
            actor="retention",
            agent_id=first.agent_id,
            cutoff=datetime.now(UTC).isoformat(),
            from_seq=1,
            to_seq=4,
            first_hash=first.hash,
            last_hash=last,
            removed=4,
            record_ids=json.dumps(ids),
        )
    )


def _statement(*statements: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        for statement in statements:
            connection.execute(text(statement))

    return run


@pytest.mark.parametrize(
    ("attack", "says"),
    [
        (_statement("UPDATE evidence SET status = 'fail' WHERE seq = 2"), "column status"),
        (_statement("UPDATE evidence SET kind = 'seal' WHERE seq = 2"), "column kind"),
        (_statement("UPDATE evidence SET resource = 'x:y' WHERE seq = 6"), "column resource"),
        (_statement("DELETE FROM evidence_controls WHERE seq = 3"), "controls"),
        (_substitute_key, "key"),
        (_truncate_and_rewind, "receipt"),
        (_forge_retention, "retention_log row"),
        (_statement("DELETE FROM audit_log"), "has no audit_log row: the row was removed"),
        (_statement("UPDATE agents SET head_seq = 50"), "not a record of the stored chain"),
    ],
    ids=[
        "status",
        "kind",
        "resource",
        "control rows",
        "key substitution",
        "truncation with head rewind",
        "forged retention row",
        "deleted audit row",
        "head moved past the chain",
    ],
)
def test_verify_store_catches_what_the_stores_own_database_login_can_do(
    engine: Engine,
    catalog: Catalog,
    tmp_path: Path,
    store_key: StoreKey,
    verify: object,
    attack: Callable[[Connection], None],
    says: str,
) -> None:
    _load(engine, store_key, tmp_path / "agent", catalog)
    audit.record(engine, store_key, "admin-token", "token_created", role="auditor")
    assert verify().returncode == 0  # type: ignore[operator]
    with engine.begin() as connection:
        _unguard_all(connection)
        attack(connection)
    done = verify()  # type: ignore[operator]
    assert done.returncode == 1, done.stdout
    assert says in done.stderr, done.stderr


def test_records_stored_before_their_receipt_verify_and_a_replay_gets_the_receipt(
    engine: Engine, catalog: Catalog, tmp_path: Path, store_key: StoreKey, verify: object
) -> None:
    state = tmp_path / "agent"
    _load(engine, store_key, state, catalog)  # records 1-8, acknowledged
    agent_id, records = _enrolled_records(engine, store_key, state, runs=1)  # 9-12 waiting
    # The store stops after the batch's transaction commits and before its receipt.
    with write_transaction(engine) as connection:
        assert ingest.ingest(connection, agent_id, records, catalog).stored == 4
    done = verify()  # type: ignore[operator]
    assert done.returncode == 0, done.stderr
    assert "12 records and 3 seals verified (4 stored since the store's newest receipt)" in (
        done.stdout
    )
    # The agent got no receipt, so it sends the batch again: that replay gets one.
    again = ingest.store_batch(engine, ReceiptWriter(engine, store_key), agent_id, records, catalog)
    assert (again.stored, again.duplicates) == (0, 12)
    assert again.receipt is not None and again.receipt["data"]["head_seq"] == 12
    done = verify()  # type: ignore[operator]
    assert done.returncode == 0, done.stderr
    assert "stored since" not in done.stdout


def test_a_first_push_before_its_receipt_verifies(
    engine: Engine, catalog: Catalog, tmp_path: Path, store_key: StoreKey, verify: object
) -> None:
    agent_id, records = _enrolled_records(engine, store_key, tmp_path / "agent", runs=1)
    with write_transaction(engine) as connection:  # stored; the receipt not signed yet
        assert ingest.ingest(connection, agent_id, records, catalog).stored == 4
    done = verify()  # type: ignore[operator]
    assert done.returncode == 0, done.stderr
    assert "(4 stored since the store's newest receipt)" in done.stdout


def test_a_store_chain_head_moved_back_behind_the_store_is_503_naming_verify(
    engine: Engine, catalog: Catalog, tmp_path: Path, store_key: StoreKey
) -> None:
    _load(engine, store_key, tmp_path / "agent", catalog)
    with engine.begin() as connection:  # the head row is not append-only: it moves
        connection.execute(text("UPDATE store_chain_head SET seq = seq - 2"))
    with serving(create_app(engine, catalog, store_key)) as base:
        # an audited failure needs a chain entry, which can no longer be numbered
        answer = requests.get(
            base + "/api/v1/agents", headers={"Authorization": "Bearer x"}, timeout=30
        )
    assert answer.status_code == 503, answer.text
    assert "tillsyn verify --store" in answer.json()["detail"]
