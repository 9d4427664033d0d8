"""The store's own audit trail: every authentication failure and every admin action.

Written in a transaction of its own, so a refused request (whose transaction is rolled
back) still leaves its trace.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from tillsyn.store.schema import audit_log


def record(engine: Engine, actor: str, action: str, **detail: Any) -> None:
    with engine.begin() as connection:
        connection.execute(
            audit_log.insert().values(
                at=datetime.now(UTC).isoformat(),
                actor=actor,
                action=action,
                detail=json.dumps(detail, sort_keys=True, default=str),
            )
        )
