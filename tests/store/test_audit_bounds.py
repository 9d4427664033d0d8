"""The audit log under a flood, against a real ``tillsyn serve`` (two workers) over HTTP,
on SQLite and PostgreSQL: anyone who can reach the port cannot fill the disk with it,
and refused actions are audited as well as failed authentications.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from tests.support.concurrency import run_threads
from tests.support.process import ServedStore, served_store
from tillsyn.store import tokens
from tillsyn.store.schema import audit_log

FLOOD = 2000
THREADS = 4


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedStore]:
    with served_store(request.param, tmp_path) as store:
        yield store


def _audit(store: ServedStore) -> tuple[int, int]:
    """Rows in the audit log, and the largest detail among them in bytes."""
    with store.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(audit_log)).scalar() or 0
        widest = connection.execute(select(func.max(func.length(audit_log.c.detail)))).scalar() or 0
    return int(count), int(widest)


def _flood(base: str, headers: dict[str, str], total: int) -> list[int]:
    """``total`` GETs with ``headers`` from THREADS connections; the statuses seen."""
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        seen = []
        with requests.Session() as session:
            for _ in range(total // THREADS):
                seen.append(session.get(base + "/api/v1/agents", headers=headers, timeout=60))
        with lock:
            statuses.extend(r.status_code for r in seen)

    run_threads([worker] * THREADS)
    return statuses


def test_two_thousand_bad_requests_with_megabyte_headers_leave_the_audit_log_bounded(
    served: ServedStore,
) -> None:
    auditor = {"Authorization": f"Bearer {served.token(tokens.Role.AUDITOR)}"}
    rows_before, _ = _audit(served)

    huge = _flood(served.base, {"Authorization": "Bearer " + "x" * 1_000_000}, FLOOD)
    assert huge == [431] * FLOOD  # refused from the headers alone, before any lookup
    # just under the header limit: these reach authentication, fail, then are limited
    wide = _flood(served.base, {"Authorization": "tillsyn_" + "y" * 8000}, FLOOD)
    assert set(wide) <= {401, 429} and wide.count(429) > FLOOD // 2, sorted(set(wide))

    rows_after, widest = _audit(served)
    # each worker audits its first few failures one by one, the rest as one aggregate
    # per address and minute (written when the minute is over)
    assert rows_after - rows_before <= 2 * (5 + 3), rows_after - rows_before
    assert widest < 4096  # nothing a client sent lands in a row at full size
    good = requests.get(served.base + "/api/v1/agents", headers=auditor, timeout=30)
    assert good.status_code == 200  # a good token from the same address still works


def test_limited_clients_get_429_with_retry_after(served: ServedStore) -> None:
    with requests.Session() as session:
        answers = [
            session.get(served.base + "/api/v1/agents", headers={"Authorization": "Bearer no"})
            for _ in range(100)
        ]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    assert all("retry later" in a.json()["detail"] for a in limited)


def test_a_refused_action_is_audited(served: ServedStore) -> None:
    agent_less = {"Authorization": f"Bearer {served.token(tokens.Role.AUDITOR)}"}
    refused = requests.post(
        served.base + "/api/v1/tokens", json={"role": "auditor"}, headers=agent_less, timeout=30
    )
    assert refused.status_code == 403
    with served.engine.connect() as connection:
        rows = connection.execute(select(audit_log).where(audit_log.c.action == "forbidden")).all()
    assert rows and json.loads(rows[-1].detail)["needed"] == ["admin"]


def test_the_audit_log_refuses_update_and_delete(served: ServedStore) -> None:
    requests.get(served.base + "/api/v1/agents", timeout=30)  # one audited failure
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), served.engine.begin() as connection:
            connection.exec_driver_sql(statement)
