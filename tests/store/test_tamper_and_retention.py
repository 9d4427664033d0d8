"""Tampering directly in the store's database is named by `tillsyn verify --store`;
retention removes old evidence yet leaves a chain that verifies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.support.chains import build_chain
from tests.support.cli import tillsyn
from tests.support.server import serving
from tillsyn.agent import identity as identity_module
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.evidence import b64
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.store import enrolment, ingest, retention, tokens
from tillsyn.store.app import create_app
from tillsyn.store.database import write_transaction
from tillsyn.store.storekey import StoreKey


def _load(engine: Engine, key: StoreKey, state: Path, catalog: Catalog, runs: int = 2) -> None:
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
        ingest.ingest(connection, key, identity.agent_id, records, catalog)


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
