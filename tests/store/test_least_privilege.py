"""Least privilege in the database: `tillsyn store init-db` makes an application role that
`tillsyn serve` runs as, and that role cannot change or remove what the store holds.

Against the PostgreSQL server tests use (trust auth, so a role needs no password to log
in from 127.0.0.1); SQLite has no roles, and init-db says so plainly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from tests.support.cli import tillsyn
from tests.support.postgres import POSTGRES, drop_schema, postgres_engine
from tests.support.process import ServedStore, enrolled_chain, push, served_store
from tillsyn.store import tokens


@dataclass
class Roles:
    schema: str
    owner_url: str  # what init-db and retention log in with
    app_url: str  # what serve logs in with
    owner: Engine
    app: Engine
    role: str


def _url(user: str, schema: str) -> str:
    url = make_url(POSTGRES).set(username=user)
    return f"{url.render_as_string(hide_password=False)}?options=-csearch_path%3D{schema}"


@pytest.fixture
def roles(tmp_path: Path) -> Iterator[Roles]:
    owner, schema = postgres_engine()
    role = f"tillsyn_app_{uuid.uuid4().hex[:8]}"
    owner_user = make_url(POSTGRES).username or "postgres"
    found = Roles(
        schema,
        _url(owner_user, schema),
        _url(role, schema),
        owner,
        create_engine(_url(role, schema)),
        role,
    )
    try:
        yield found
    finally:
        found.app.dispose()
        owner.dispose()
        drop_schema(schema)
        admin = create_engine(POSTGRES)
        with admin.begin() as connection:
            if connection.execute(text(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'")).first():
                connection.execute(text(f'DROP OWNED BY "{role}"'))
                connection.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def _init_db(roles: Roles, state: Path) -> None:
    done = tillsyn(
        "store", "init-db", "--database", roles.owner_url, "--app-role", roles.role, state=state
    )
    assert done.returncode == 0, done.stderr
    assert f"application role {roles.role} may:" in done.stdout
    assert "evidence: SELECT, INSERT" in done.stdout


def _push_one_chain(store: ServedStore, state: Path) -> None:
    # sealed a day ago, so that retention of what is older than an hour removes it all
    day_ago = datetime.now(UTC) - timedelta(days=1)
    credential, records = enrolled_chain(store, state, runs=2, per_run=3, sealed_at=day_ago)
    pushed = push(store, credential, records)
    assert pushed.status_code == 200 and pushed.json()["stored"] == 8, pushed.text


def _refused(engine: Engine, *statements: str) -> str:
    """The database's refusal of ``statements`` run in one transaction as ``engine``'s role."""
    with pytest.raises(DBAPIError) as raised, engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    return str(raised.value.orig)


def test_the_application_role_serves_but_cannot_change_or_remove_anything(
    roles: Roles, tmp_path: Path
) -> None:
    _init_db(roles, tmp_path / "init")
    with served_store("postgresql", tmp_path, database=(roles.app_url, roles.owner)) as store:
        _push_one_chain(store, tmp_path / "agent")
        auditor = {"Authorization": f"Bearer {store.token(tokens.Role.AUDITOR)}"}
        for path in ("/api/v1/controls", "/api/v1/evidence", "/metrics", "/api/v1/audit"):
            assert requests.get(store.base + path, headers=auditor, timeout=30).ok, path
        state_dir = store.state_dir

    app = roles.app
    assert "permission denied" in _refused(app, "UPDATE evidence SET status = 'pass'")
    assert "permission denied" in _refused(app, "DELETE FROM evidence")
    assert "must be owner" in _refused(app, "ALTER TABLE evidence DISABLE TRIGGER USER")
    assert "permission denied" in _refused(
        app, "SET LOCAL tillsyn.retention = 'on'", "DELETE FROM evidence"
    )
    assert "permission denied" in _refused(app, "UPDATE audit_log SET actor = 'x'")
    assert "permission denied" in _refused(app, "DELETE FROM audit_log")
    assert "permission denied" in _refused(app, "DELETE FROM store_chain")
    assert "permission denied" in _refused(
        app,
        "INSERT INTO retention_log (at, actor, agent_id, cutoff, from_seq, to_seq, "
        "first_hash, last_hash, removed, record_ids) VALUES ('a','b','c','d',1,2,'e','f',1,'[]')",
    )
    assert "must be owner" in _refused(app, "DROP TABLE evidence")

    # Even a role granted DELETE outright cannot open the guard with the session flag:
    # only the owner's retention can.
    with roles.owner.begin() as connection:
        connection.execute(text(f'GRANT DELETE ON evidence TO "{roles.role}"'))
    assert "append-only" in _refused(
        app, "SET LOCAL tillsyn.retention = 'on'", "DELETE FROM evidence"
    )
    with app.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM evidence")).scalar() == 8

    # Retention as the application role fails, with nothing removed; as the owner it works.
    as_app = tillsyn(
        "store", "retention", "--older-than", "1h", "--database", roles.app_url,
        "--state-dir", str(state_dir),
    )  # fmt: skip
    assert as_app.returncode != 0
    assert "nothing removed" in as_app.stderr
    as_owner = tillsyn(
        "store", "retention", "--older-than", "1h", "--database", roles.owner_url,
        "--state-dir", str(state_dir),
    )  # fmt: skip
    assert as_owner.returncode == 0, as_owner.stderr
    assert "8 records older than" in as_owner.stdout


def test_init_db_refuses_to_make_the_owner_the_application_role(
    roles: Roles, tmp_path: Path
) -> None:
    owner_user = make_url(POSTGRES).username or "postgres"
    done = tillsyn(
        "store", "init-db", "--database", roles.owner_url, "--app-role", owner_user,
        state=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "must not be" in done.stderr and "owns the schema" in done.stderr


def test_init_db_on_sqlite_says_what_protects_it(tmp_path: Path) -> None:
    done = tillsyn("store", "init-db", "--state-dir", str(tmp_path), state=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "whoever can write this file can change it" in done.stdout
    assert "verify --store" in done.stdout
