"""``tillsyn serve`` as its own process, on a free loopback port, over SQLite or PostgreSQL.

Attack tests need what a user runs: a separate server process (here with two uvicorn
workers, so requests race across processes as well as threads), reached over a real
socket. The test keeps an engine on the same database to look behind the API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, create_engine

from tests.support.chains import build_chain
from tests.support.postgres import POSTGRES, drop_schema, postgres_engine
from tests.support.server import free_port
from tillsyn.agent import identity as identity_module
from tillsyn.agent.evidence import b64
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.store import tokens
from tillsyn.store.schema import migrate


@dataclass
class ServedStore:
    """A running store: its base URL, its database URL and an engine onto that database."""

    base: str
    database: str
    engine: Engine
    process: subprocess.Popen[str]
    state_dir: Path  # holds the store's key: admin commands on this store need it

    def token(self, role: tokens.Role) -> str:
        with self.engine.begin() as connection:
            return tokens.create(connection, role)


def database_for(backend: str, tmp_path: Path) -> tuple[str, Engine, str | None]:
    """A database URL ``tillsyn serve --database`` accepts, an engine on it, and the
    PostgreSQL schema to drop afterwards (None for SQLite)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return url, create_engine(url), None
    engine, schema = postgres_engine()
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    return url, engine, schema


@contextmanager
def served_store(
    backend: str,
    tmp_path: Path,
    workers: int = 2,
    extra: tuple[str, ...] = (),
    database: tuple[str, Engine] | None = None,
) -> Iterator[ServedStore]:
    """Start ``tillsyn serve`` on ``backend`` ("sqlite" or "postgresql") until the block
    ends; on a fresh database, or on ``database`` (a URL to serve with, already
    migrated, and an engine the test looks behind the API with; kept afterwards)."""
    if database is None:
        url, engine, schema = database_for(backend, tmp_path)
        migrate(engine)
    else:
        (url, engine), schema = database, None
    state_dir = tmp_path / "store-state"
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillsyn.cli",
            "serve",
            "--database",
            url,
            "--state-dir",
            str(state_dir),
            "--port",
            str(port),
            "--workers",
            str(workers),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"tillsyn serve exited {process.returncode}: "
                    + (tmp_path / "serve.log").read_text()[-2000:]
                )
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("tillsyn serve did not start listening in 30 s")
            time.sleep(0.1)
        yield ServedStore(base, url, engine, process, state_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        engine.dispose()
        if schema:
            drop_schema(schema)


def enrolled_chain(
    store: ServedStore,
    state: Path,
    runs: int,
    per_run: int,
    sealed_at: datetime | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """An agent with ``runs`` sealed runs in its outbox, enrolled over HTTP with a fresh
    enrolment token; its credential and the records of its chain."""
    build_chain(state, runs=runs, per_run=per_run, sealed_at=sealed_at)
    identity = identity_module.load(state)
    answer = requests.post(
        store.base + "/api/v1/enroll",
        json={"agent_id": identity.agent_id, "public_key": b64(identity.public_key_raw)},
        headers={"Authorization": f"Bearer {store.token(tokens.Role.ENROL)}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    local = LocalEvidence(state)
    records = [json.loads(body) for _, body in local.rows()]
    local.close()
    return answer.json()["token"], records


def push(store: ServedStore, credential: str, records: list[dict[str, Any]]) -> requests.Response:
    """POST ``records`` to the store as the agent holding ``credential``."""
    return requests.post(
        store.base + "/api/v1/evidence",
        json={"records": records},
        headers={"Authorization": f"Bearer {credential}"},
        timeout=60,
    )


def run_retention(store: ServedStore, older_than: str) -> subprocess.CompletedProcess[str]:
    """``tillsyn store retention --older-than OLDER_THAN`` on this store, as its admin."""
    from tests.support.cli import tillsyn

    return tillsyn(
        "store",
        "retention",
        "--older-than",
        older_than,
        "--database",
        store.database,
        "--state-dir",
        str(store.state_dir),
    )
