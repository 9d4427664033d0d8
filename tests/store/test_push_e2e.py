"""End to end over real sockets: enrol, run and push with the CLI, read back, verify."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from tests.support.cli import tillsyn
from tests.support.server import free_port, serving
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.agent.storeclient import StoreLink
from tillsyn.store import tokens
from tillsyn.store.app import create_app
from tillsyn.store.storekey import StoreKey


def _token(engine: Engine, role: tokens.Role) -> str:
    with engine.begin() as connection:
        return tokens.create(connection, role)


def test_enrol_run_push_and_verify_the_store(
    engine: Engine, catalog: Catalog, tmp_path: Path, store_key: StoreKey
) -> None:
    with serving(create_app(engine, catalog, store_key)) as base:
        for name in ("laptop", "server"):
            state = tmp_path / name
            enrolled = tillsyn("enroll", base, _token(engine, tokens.Role.ENROL), state=state)
            assert enrolled.returncode == 0, enrolled.stderr
            ran = tillsyn("run", "--push", "--json", state=state)
            assert "pushed" in ran.stdout, ran.stderr
            again = tillsyn("push", state=state)
            assert again.returncode == 0 and "pushed 0 records" in again.stdout
        token_file = tmp_path / "auditor.token"
        token_file.write_text(_token(engine, tokens.Role.AUDITOR))
        verified = tillsyn("verify", "--store", base, "--token-file", str(token_file))
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.count("seals verified") == 2
        assert "0 chain(s) with problems" in verified.stdout


def test_a_store_that_is_down_keeps_the_outbox_until_it_is_back(
    engine: Engine, catalog: Catalog, tmp_path: Path, store_key: StoreKey
) -> None:
    state = tmp_path / "agent"
    with serving(create_app(engine, catalog, store_key)) as base:
        assert (
            tillsyn("enroll", base, _token(engine, tokens.Role.ENROL), state=state).returncode == 0
        )
    link = StoreLink.load(state)
    dead = StoreLink(f"http://127.0.0.1:{free_port()}", link.token)
    dead.save(state)
    for _ in range(2):
        tillsyn("run", state=state)
    config = tmp_path / "c.yaml"
    config.write_text("agent: {push_attempts: 2}\n")
    failed = tillsyn("push", "--config", str(config), state=state)
    assert failed.returncode == 1
    assert "records wait in the outbox" in failed.stderr
    local = LocalEvidence(state)
    waiting = local.undelivered(dead.url)
    local.close()
    assert waiting > 0
    with serving(create_app(engine, catalog, store_key)) as base:
        StoreLink(base, link.token).save(state)
        delivered = tillsyn("push", state=state)
        assert delivered.returncode == 0, delivered.stderr
        assert f"pushed {waiting} records" in delivered.stdout
