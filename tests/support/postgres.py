"""PostgreSQL for tests: a schema of its own per test on the server named by
TILLSYN_TEST_POSTGRES (default: the CI server at 127.0.0.1:5432, database test, trust
auth). A test that needs it fails in CI when it cannot connect and is skipped, loudly,
elsewhere.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.conftest import IN_CI

POSTGRES = os.environ.get(
    "TILLSYN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_engine() -> tuple[Engine, str]:
    """An engine whose search_path is a fresh schema; fails or skips when unreachable."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server decides the same
        admin.dispose()
        message = f"PostgreSQL at {POSTGRES} is not reachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    admin.dispose()
    engine = create_engine(POSTGRES, connect_args={"options": f"-csearch_path={schema}"})
    return engine, schema


def drop_schema(schema: str) -> None:
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
