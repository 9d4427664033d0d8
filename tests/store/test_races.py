"""Races on credentials, tried as an attacker would: many requests at the same instant
against a real ``tillsyn serve`` process (two workers) over HTTP, on SQLite and PostgreSQL.

Whatever the timing, a one-time enrolment token enrols one agent, an agent id is
enrolled once, a revoked credential writes nothing once the revocation has answered,
and retention running beside an agent's replays never makes the store refuse them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from tests.support.cli import tillsyn
from tests.support.concurrency import at_once
from tests.support.process import ServedStore, enrolled_chain, push, run_retention, served_store
from tillsyn.agent.evidence import b64
from tillsyn.store import tokens
from tillsyn.store.schema import agents, audit_log, evidence
from tillsyn.store.schema import tokens as tokens_table

CONCURRENT = 20
TRIALS = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedStore]:
    # Every refused attempt is to be audited one by one here, and the racers all come
    # from 127.0.0.1: the per-address limit and aggregation (tested on their own in
    # test_audit_bounds.py) are set out of the way.
    audited_each = ("--auth-failure-limit", "100000", "--auth-failures-audited", "100000")
    with served_store(request.param, tmp_path, extra=audited_each) as store:
        yield store


def _enrol_call(
    base: str, token: str, agent_id: str | None = None
) -> Callable[[requests.Session], requests.Response]:
    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    body = {"agent_id": agent_id or str(uuid.uuid4()), "public_key": b64(key), "hostname": "x"}

    def call(session: requests.Session) -> requests.Response:
        return session.post(
            base + "/api/v1/enroll",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    return call


def _count(store: ServedStore, table: Any, *where: Any) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0
        )


def _statuses(answers: list[Any]) -> list[int]:
    return sorted(a.status_code if isinstance(a, requests.Response) else -1 for a in answers)


def test_one_enrolment_token_enrols_one_agent_however_many_ask_at_once(
    served: ServedStore,
) -> None:
    for trial in range(TRIALS):
        token = served.token(tokens.Role.ENROL)
        token_id = token.split("_")[1]
        before_agents = _count(served, agents)
        before_audit = _count(served, audit_log)
        answers = at_once(served.base, [_enrol_call(served.base, token) for _ in range(CONCURRENT)])
        statuses = _statuses(answers)
        assert statuses.count(200) == 1, f"trial {trial}: {statuses}"
        refused = [a for a in answers if a.status_code != 200]
        assert {a.status_code for a in refused} <= {401, 409}, statuses
        for answer in refused:  # a reason a person can act on, never a stack trace
            detail = answer.json()["detail"]
            assert "token" in detail and ("used" in detail or "revoked" in detail), detail
        assert _count(served, agents) == before_agents + 1
        # One agent credential, issued to the winner; the token is spent.
        winner = next(a for a in answers if a.status_code == 200).json()
        with served.engine.connect() as connection:
            credentials = connection.execute(
                select(tokens_table.c.agent_id).where(tokens_table.c.role == "agent")
            ).all()
            spent = connection.execute(
                select(tokens_table.c.used_at, tokens_table.c.used_by).where(
                    tokens_table.c.token_id == token_id
                )
            ).one()
            actions = [
                row.action
                for row in connection.execute(
                    select(audit_log.c.action).order_by(audit_log.c.id).offset(before_audit)
                )
            ]
        assert [c.agent_id for c in credentials].count(winner["agent_id"]) == 1
        assert len(credentials) == trial + 1
        assert spent.used_at and spent.used_by == winner["agent_id"]
        # Every refused attempt left its trace in the audit log.
        assert actions.count("agent_enrolled") == 1
        assert actions.count("enrol_refused") + actions.count("auth_failed") == CONCURRENT - 1
        # The spent token enrols nobody afterwards either.
        late = at_once(served.base, [_enrol_call(served.base, token)])[0]
        assert late.status_code == 401


def test_an_agent_id_is_enrolled_once_even_with_many_tokens_at_once(served: ServedStore) -> None:
    for trial in range(TRIALS):
        agent_id = str(uuid.uuid4())
        enrol_tokens = [served.token(tokens.Role.ENROL) for _ in range(CONCURRENT)]
        answers = at_once(
            served.base, [_enrol_call(served.base, t, agent_id) for t in enrol_tokens]
        )
        statuses = _statuses(answers)
        assert statuses == [200] + [409] * (CONCURRENT - 1), f"trial {trial}: {statuses}"
        taken = [a.json()["detail"] for a in answers if a.status_code == 409]
        assert all("already enrolled" in detail for detail in taken), taken
        # The losers wrote nothing: their tokens are still unused and can enrol others.
        unused = _count(
            served,
            tokens_table,
            tokens_table.c.token_id.in_([t.split("_")[1] for t in enrol_tokens]),
            tokens_table.c.used_at.is_(None),
        )
        assert unused == CONCURRENT - 1
        assert _count(served, tokens_table, tokens_table.c.agent_id == agent_id) == 1


def _enrolled_agent(
    served: ServedStore, state: Path, runs: int, sealed_at: datetime | None = None
) -> tuple[str, list[Any]]:
    """An agent with ``runs`` sealed runs in its outbox, enrolled; its credential and records."""
    return enrolled_chain(served, state, runs, 40, sealed_at)


def _push_call(base: str, credential: str, records: list[Any]) -> Callable[..., Any]:
    def call(session: requests.Session) -> requests.Response:
        return session.post(
            base + "/api/v1/evidence",
            json={"records": records},
            headers={"Authorization": f"Bearer {credential}"},
            timeout=120,
        )

    return call


def _revoke_while_pushing(
    served: ServedStore, admin: str, pushers: list[tuple[str, list[Any]]]
) -> list[tuple[int, int, int]]:
    """Every agent pushes a large new batch while an admin revokes each credential in turn;
    per agent: (push status, records stored once its revocation answered, records at the end)."""
    after_revoke: dict[str, int] = {}

    def revoke_all(session: requests.Session) -> None:
        time.sleep(0.05)  # the pushes are authenticated and being stored by now
        for credential, records in pushers:
            answer = session.delete(
                f"{served.base}/api/v1/tokens/{credential.split('_')[1]}",
                headers={"Authorization": f"Bearer {admin}"},
                timeout=120,
            )
            assert answer.status_code == 204, answer.text
            after_revoke[credential] = _count(
                served, evidence, evidence.c.agent_id == records[0]["agent_id"]
            )

    calls = [_push_call(served.base, c, r) for c, r in pushers]
    answers = at_once(served.base, [*calls, revoke_all])
    assert all(isinstance(a, requests.Response) for a in answers[:-1]), answers
    return [
        (
            answer.status_code,
            after_revoke[credential],
            _count(served, evidence, evidence.c.agent_id == records[0]["agent_id"]),
        )
        for (credential, records), answer in zip(pushers, answers, strict=False)
    ]


def test_a_revoked_credential_writes_nothing_once_the_revocation_answered(
    served: ServedStore, tmp_path: Path
) -> None:
    admin = served.token(tokens.Role.ADMIN)
    for trial in range(TRIALS):
        pushers = [_enrolled_agent(served, tmp_path / f"t{trial}-a{n}", runs=25) for n in range(8)]
        batch = len(pushers[0][1])
        for status, at_revoke, final in _revoke_while_pushing(served, admin, pushers):
            assert final == at_revoke, (
                f"trial {trial}: {final - at_revoke} records were written after the "
                f"revocation of the credential answered ({status})"
            )
            assert (status, final) in ((200, batch), (401, 0))


def test_retention_beside_concurrent_replays_never_refuses_them(
    served: ServedStore, tmp_path: Path
) -> None:
    credential, records = _enrolled_agent(
        served, tmp_path / "agent", runs=30, sealed_at=datetime.now(UTC) - timedelta(days=3)
    )
    first = push(served, credential, records)
    assert first.status_code == 200, first.text
    stop = threading.Event()
    seen: list[int] = []

    def replay() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                answer = session.post(
                    served.base + "/api/v1/evidence",
                    json={"records": records},
                    headers={"Authorization": f"Bearer {credential}"},
                    timeout=60,
                )
                seen.append(answer.status_code)

    threads = [threading.Thread(target=replay) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        # Sealed three days ago: retention at one day removes every record.
        removed = run_retention(served, "1d")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert removed.returncode == 0, removed.stderr
    assert f"{len(records)} records" in removed.stdout
    assert seen and set(seen) == {200}, sorted(set(seen))
    assert _count(served, evidence) == 0


def test_verify_store_beside_concurrent_pushes_finds_nothing_wrong(
    served: ServedStore, tmp_path: Path
) -> None:
    """Receipts are signed after each batch commits: a verify that reads the store while
    agents push sees records not yet acknowledged, and must not call that a problem."""
    pushers = []
    for n in range(4):
        state = tmp_path / f"agent{n}"
        credential, records = enrolled_chain(served, state, runs=12, per_run=5)
        runs = [records[i : i + 6] for i in range(0, len(records), 6)]  # one sealed run each
        pushers.append((credential, runs))
    token_file = tmp_path / "auditor.token"
    token_file.write_text(served.token(tokens.Role.AUDITOR))
    statuses: list[int] = []

    def pusher(credential: str, runs: list[list[dict[str, Any]]]) -> Callable[[], None]:
        def job() -> None:
            for run in runs:
                statuses.append(push(served, credential, run).status_code)

        return job

    threads = [threading.Thread(target=pusher(c, r)) for c, r in pushers]
    for thread in threads:
        thread.start()
    verdicts = []
    while any(thread.is_alive() for thread in threads) or not verdicts:
        verdicts.append(tillsyn("verify", "--store", served.base, "--token-file", str(token_file)))
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [200] * 48
    for done in verdicts:
        assert done.returncode == 0, done.stderr
    final = tillsyn("verify", "--store", served.base, "--token-file", str(token_file))
    assert final.returncode == 0, final.stderr
    assert "stored since" not in final.stdout  # every batch got its receipt
    assert final.stdout.count("72 records and 12 seals verified") == 4
