"""Opening the store's database: a SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

SQLITE_FILE = "store.sqlite3"


def url_for(database: str | None, state_dir: Path) -> str:
    """A SQLAlchemy URL: ``postgresql://`` is given the psycopg 3 driver; none means SQLite."""
    if not database:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return f"sqlite:///{state_dir / SQLITE_FILE}"
    for prefix in ("postgresql://", "postgres://"):
        if database.startswith(prefix):
            return "postgresql+psycopg://" + database[len(prefix) :]
    return database


def open_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that changes state after reading it: commit at the end, roll back on error.

    On SQLite it starts with ``BEGIN IMMEDIATE``, taking the write lock before anything is
    read, so a check-then-act step (is this token unused? is this the chain head?) sees
    the newest committed state and cannot interleave with another writer: without it two
    transactions read the same state and both act on it (issue 8's enrolment race). On
    PostgreSQL the statements themselves lock what they decide on (a conditional
    ``UPDATE``, ``SELECT ... FOR UPDATE``).
    """
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield connection
