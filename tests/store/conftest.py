"""Store databases for tests: a SQLite file and a PostgreSQL schema of its own, per test.

PostgreSQL's address comes from TILLSYN_TEST_POSTGRES (default: the CI server at
127.0.0.1:5432, database test, trust auth). A test that needs it fails in CI when it
cannot connect and is skipped, loudly, elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from tests.support.postgres import drop_schema, postgres_engine
from tillsyn.store import storekey
from tillsyn.store.schema import migrate
from tillsyn.store.storekey import StoreKey


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        built = create_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
        migrate(built)
        yield built
        built.dispose()
        return
    built, schema = postgres_engine()
    migrate(built)
    yield built
    built.dispose()
    drop_schema(schema)


@pytest.fixture
def store_key(tmp_path: Path) -> StoreKey:
    """The store's signing key, in a file of its own as ``tillsyn serve`` keeps it."""
    return storekey.load_or_create(tmp_path / "store-state" / storekey.KEY_FILE)
