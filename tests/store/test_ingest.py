"""Ingest on SQLite and PostgreSQL: chains continue, seals verify, replays are harmless."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select, text

from tests.support.chains import build_chain, result_body
from tillsyn.agent import identity as identity_module
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.evidence import b64, record_hash, seal_message
from tillsyn.agent.ids import uuid7
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.store import tokens
from tillsyn.store.database import write_transaction
from tillsyn.store.enrolment import EnrolmentError, enrol
from tillsyn.store.ingest import IngestError, ingest
from tillsyn.store.schema import agents, evidence, evidence_controls, migrate
from tillsyn.store.storekey import StoreKey

#: The store's signing key for these tests, which call the store's functions directly.
KEY = StoreKey(Ed25519PrivateKey.generate(), Path("store.key"))


def _records(state_dir: Path) -> list[dict[str, Any]]:
    store = LocalEvidence(state_dir)
    try:
        return [json.loads(body) for _, body in store.rows()]
    finally:
        store.close()


def _enrolled(engine: Engine, state_dir: Path) -> str:
    identity = identity_module.load_or_create(state_dir)
    with write_transaction(engine) as connection:
        token = tokens.create(connection, tokens.Role.ENROL)
        principal = tokens.authenticate(connection, token)
        enrol(connection, KEY, principal, identity.agent_id, b64(identity.public_key_raw), "laptop")
    return identity.agent_id


def _ingest(engine: Engine, agent_id: str, records: list[dict[str, Any]], catalog: Catalog) -> Any:
    with engine.begin() as connection:
        return ingest(connection, agent_id, records, catalog)


def test_a_sealed_chain_is_stored_with_rolled_up_controls(
    engine: Engine, tmp_path: Path, catalog: Catalog
) -> None:
    build_chain(tmp_path, runs=2, per_run=3)
    agent_id = _enrolled(engine, tmp_path)
    records = _records(tmp_path)
    result = _ingest(engine, agent_id, records[:4], catalog)
    assert (result.stored, result.duplicates, result.rejected, result.head_seq) == (4, 0, 0, 4)
    result = _ingest(engine, agent_id, records, catalog)  # a replay plus the next run
    assert (result.stored, result.duplicates) == (4, 4)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(evidence)).scalar() == 8
        controls = set(connection.execute(select(evidence_controls.c.control)).scalars())
        head = connection.execute(select(agents.c.head_seq)).scalar()
    assert controls == {"iso27001:2022/A.8.13"}  # roll-up happens at query time
    assert head == 8


def test_records_after_the_last_seal_are_held_back(
    engine: Engine, tmp_path: Path, catalog: Catalog
) -> None:
    build_chain(tmp_path, runs=1, per_run=2)
    identity = identity_module.load(tmp_path)
    store = LocalEvidence(tmp_path)
    store.append([result_body(identity.agent_id, uuid7(), 9)])
    store.close()
    agent_id = _enrolled(engine, tmp_path)
    result = _ingest(engine, agent_id, _records(tmp_path), catalog)
    assert (result.stored, result.held_back, result.head_seq) == (3, 1, 3)


def test_an_agent_cannot_write_another_agents_records(
    engine: Engine, tmp_path: Path, catalog: Catalog
) -> None:
    build_chain(tmp_path / "a", runs=1, per_run=1)
    build_chain(tmp_path / "b", runs=1, per_run=1)
    agent_a = _enrolled(engine, tmp_path / "a")
    _enrolled(engine, tmp_path / "b")
    with pytest.raises(IngestError) as caught:
        _ingest(engine, agent_a, _records(tmp_path / "b"), catalog)
    assert caught.value.status == 403


def test_a_forged_seal_is_refused_with_nothing_partial_stored(
    engine: Engine, tmp_path: Path, catalog: Catalog
) -> None:
    build_chain(tmp_path, runs=2, per_run=2)  # 1-2, seal 3, 4-5, seal 6
    agent_id = _enrolled(engine, tmp_path)
    records = _records(tmp_path)
    forged = records[5]
    forged["signature"] = b64(Ed25519PrivateKey.generate().sign(seal_message(forged)))
    forged["hash"] = record_hash(forged)
    result = _ingest(engine, agent_id, records, catalog)
    assert (result.stored, result.rejected) == (3, 3)
    assert "seal signature does not verify" in str(result.reason)
    assert result.alerts[0][0] == "bad_signature"


def test_a_gap_in_the_chain_is_refused(engine: Engine, tmp_path: Path, catalog: Catalog) -> None:
    build_chain(tmp_path, runs=2, per_run=2)
    agent_id = _enrolled(engine, tmp_path)
    records = _records(tmp_path)
    result = _ingest(engine, agent_id, records[:2] + records[3:], catalog)
    assert result.stored == 0
    assert "record 3 is missing" in str(result.reason)


def test_a_rewritten_stored_record_is_a_conflict(
    engine: Engine, tmp_path: Path, catalog: Catalog
) -> None:
    build_chain(tmp_path, runs=1, per_run=2)
    agent_id = _enrolled(engine, tmp_path)
    records = _records(tmp_path)
    _ingest(engine, agent_id, records, catalog)
    records[0]["message"] = "rewritten"
    records[0]["hash"] = record_hash(records[0])
    with pytest.raises(IngestError) as caught:
        _ingest(engine, agent_id, records, catalog)
    assert caught.value.status == 409
    assert caught.value.alert is not None


def test_unenrolled_agents_and_malformed_records_are_refused(
    engine: Engine, tmp_path: Path, catalog: Catalog
) -> None:
    build_chain(tmp_path, runs=1, per_run=1)
    records = _records(tmp_path)
    with pytest.raises(IngestError, match="not enrolled"):
        _ingest(engine, records[0]["agent_id"], records, catalog)
    agent_id = _enrolled(engine, tmp_path)
    for broken, says in (
        ({**records[0], "seq": "1"}, 'record 0: seq: "1" is not of type "integer"'),
        ({**records[0], "seq": 0}, "record 0: seq: 0 is less than the minimum"),
        ({k: v for k, v in records[0].items() if k != "hash"}, '"hash" is a required property'),
        ({**records[0], "status": "fine"}, "record 0: status: "),
        ([1, 2], "record 0: is a JSON array, not an object"),
        ({**records[0], "kind": "other"}, "record 0: kind: must be 'result' or 'seal'"),
    ):
        with pytest.raises(IngestError, match=says):
            _ingest(engine, agent_id, [broken], catalog)


def test_evidence_rows_cannot_be_updated_or_deleted(
    engine: Engine, tmp_path: Path, catalog: Catalog
) -> None:
    build_chain(tmp_path, runs=1, per_run=1)
    agent_id = _enrolled(engine, tmp_path)
    _ingest(engine, agent_id, _records(tmp_path), catalog)
    for statement in ("UPDATE evidence SET status = 'pass'", "DELETE FROM evidence"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


def test_enrolment_tokens_are_single_use_and_bound(engine: Engine, tmp_path: Path) -> None:
    identity = identity_module.load_or_create(tmp_path)
    with engine.begin() as connection:
        token = tokens.create(connection, tokens.Role.ENROL)
        principal = tokens.authenticate(connection, token)
        agent_token, _ = enrol(
            connection, KEY, principal, identity.agent_id, b64(identity.public_key_raw)
        )
        bound = tokens.authenticate(connection, agent_token)
        assert (bound.role, bound.agent_id) == (tokens.Role.AGENT, identity.agent_id)
        with pytest.raises(tokens.TokenError, match=r"already used at .* \(by agent"):
            tokens.authenticate(connection, token)
        auditor = tokens.authenticate(connection, tokens.create(connection, tokens.Role.AUDITOR))
        with pytest.raises(EnrolmentError, match="cannot enrol"):
            enrol(connection, KEY, auditor, uuid7(), b64(identity.public_key_raw))


def test_a_record_id_stored_for_another_record_is_a_conflict(
    engine: Engine, tmp_path: Path, catalog: Catalog
) -> None:
    build_chain(tmp_path / "a", runs=1, per_run=2)
    build_chain(tmp_path / "b", runs=1, per_run=2)
    agent_a = _enrolled(engine, tmp_path / "a")
    agent_b = _enrolled(engine, tmp_path / "b")
    _ingest(engine, agent_a, _records(tmp_path / "a"), catalog)
    # Agent B signs a chain that reuses one of A's record ids: valid chain, clashing id.
    identity = identity_module.load(tmp_path / "b")
    store = LocalEvidence(tmp_path / "c")
    run_id = uuid7()
    clash = result_body(agent_b, run_id, 1) | {
        "record_id": _records(tmp_path / "a")[0]["record_id"]
    }
    store.append([clash])
    store.seal(identity, run_id, "test", uuid7())
    store.close()
    with pytest.raises(IngestError) as caught:
        _ingest(engine, agent_b, _records(tmp_path / "c"), catalog)
    assert caught.value.status == 409
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(evidence)).scalar() == 3


def test_a_token_that_expires_after_authentication_no_longer_acts(engine: Engine) -> None:
    """Authentication and the write are separate transactions: the write re-checks."""
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with engine.begin() as connection:
        token = tokens.create(
            connection, tokens.Role.ENROL, expires_at=start + timedelta(seconds=1), now=start
        )
        principal = tokens.authenticate(connection, token, now=start)
    later = start + timedelta(seconds=2)
    with engine.begin() as connection:
        with pytest.raises(tokens.TokenError, match="expired"):
            tokens.still_valid(connection, principal, later)
        with pytest.raises(EnrolmentError, match="expired") as refused:
            enrol(connection, KEY, principal, uuid7(), b64(bytes(32)), now=later)
        assert refused.value.status == 401


def test_a_version_1_store_migrates_and_keeps_its_tokens(tmp_path: Path) -> None:
    """A store made by 0.1.0 (schema v1) gains the spent-token columns on the next start."""
    from sqlalchemy import create_engine

    from tillsyn.store.schema import MIGRATIONS, schema_version

    old = create_engine(f"sqlite:///{tmp_path / 'v1.sqlite3'}")
    with old.begin() as connection:
        # What 0.1.0 made: this version's v1 step, less what v2 and v3 added since.
        MIGRATIONS[0](connection)
        for table, column in (
            ("tokens", "used_at"),
            ("tokens", "used_by"),
            ("audit_log", "chain_seq"),
            ("retention_log", "chain_seq"),
        ):
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        connection.execute(text("DROP TABLE store_chain"))
        connection.execute(text("DROP TABLE store_chain_head"))
        connection.execute(schema_version.insert().values(version=1, applied_at="2026-11-01"))
        connection.execute(
            text(
                "INSERT INTO tokens (token_id, secret_hash, role, agent_id, created_at, "
                "expires_at, revoked_at, note) VALUES "
                "('abc', 'h', 'auditor', NULL, '2026-11-01', NULL, NULL, '')"
            )
        )
    assert migrate(old) == len(MIGRATIONS)
    with old.connect() as connection:
        (info,) = tokens.listing(connection)
    assert (info.token_id, info.used_at, info.state("2026-12-01")) == ("abc", None, "active")
