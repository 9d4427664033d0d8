"""Property-based fuzzing of the served OpenAPI document: no request may cause a 5xx.

schemathesis reads the schema the running store serves and generates valid and invalid
requests for every operation, sent with an admin token (so they reach the handlers) over a real
socket; hypothesis drives the generation.
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sqlalchemy import Engine

from tests.support.server import serving
from tillsyn.agent.catalog import Catalog
from tillsyn.store import tokens
from tillsyn.store.app import create_app
from tillsyn.store.storekey import StoreKey

EXAMPLES = 30


def test_no_request_produces_a_server_error(
    engine: Engine, catalog: Catalog, store_key: StoreKey
) -> None:
    with engine.begin() as connection:
        admin = tokens.create(connection, tokens.Role.ADMIN)
    headers = {"Authorization": f"Bearer {admin}"}
    failures: list[str] = []
    unsatisfiable = 0
    with serving(create_app(engine, catalog, store_key)) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 9  # every route is in the served document

        for operation, mode in itertools.product(operations, GenerationMode):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: Any) -> None:
                response = case.call(base_url=base, headers=headers, timeout=30)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> "
                        f"{response.status_code}: {response.text[:200]}"
                    )

            try:
                exercise()
            except Unsatisfiable:  # nothing in this operation can be made invalid
                assert mode is GenerationMode.NEGATIVE
                unsatisfiable += 1
    assert failures == []
    assert unsatisfiable < len(operations)  # most operations were also fuzzed with bad input
