"""The store over a real socket: enrolment, push, read back, and who may do what."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, select

from tests.support.chains import build_chain
from tests.support.server import serving
from tillsyn.agent import identity as identity_module
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.evidence import b64
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.store import tokens
from tillsyn.store.app import StoreSettings, create_app
from tillsyn.store.schema import audit_log
from tillsyn.store.storekey import StoreKey


class Store:
    def __init__(self, base: str, engine: Engine) -> None:
        self.base, self.engine = base, engine

    def token(self, role: tokens.Role) -> str:
        with self.engine.begin() as connection:
            return tokens.create(connection, role)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", {"Authorization": f"Bearer {token}"} if token else {})
        return requests.request(method, self.base + path, timeout=30, **kwargs)


@pytest.fixture
def store(engine: Engine, catalog: Catalog, store_key: StoreKey) -> Iterator[Store]:
    app = create_app(
        engine, catalog, store_key, StoreSettings(max_request_bytes=256 * 1024, max_batch=50)
    )
    with serving(app) as base:
        yield Store(base, engine)


def _agent(store: Store, state_dir: Path, runs: int = 1) -> tuple[str, str, list[dict[str, Any]]]:
    build_chain(state_dir, runs=runs, per_run=3)
    identity = identity_module.load(state_dir)
    enrolled = store.call(
        "POST",
        "/api/v1/enroll",
        store.token(tokens.Role.ENROL),
        json={
            "agent_id": identity.agent_id,
            "hostname": "laptop-7",
            "public_key": b64(identity.public_key_raw),
        },
    )
    assert enrolled.status_code == 200, enrolled.text
    local = LocalEvidence(state_dir)
    records = [json.loads(body) for _, body in local.rows()]
    local.close()
    return identity.agent_id, enrolled.json()["token"], records


def test_push_then_read_back_by_control_roll_up(store: Store, tmp_path: Path) -> None:
    agent_id, token, records = _agent(store, tmp_path, runs=2)
    pushed = store.call("POST", "/api/v1/evidence", token, json={"records": records})
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["stored"] == 8
    again = store.call("POST", "/api/v1/evidence", token, json={"records": records})
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 8)
    auditor = store.token(tokens.Role.AUDITOR)
    page = store.call(
        "GET", "/api/v1/evidence", auditor, params={"control": "A.8", "limit": 4}
    ).json()
    assert len(page["records"]) == 4 and page["next_cursor"]
    rest = store.call(
        "GET", "/api/v1/evidence", auditor, params={"control": "A.8", "cursor": page["next_cursor"]}
    ).json()
    seqs = [r["seq"] for r in page["records"] + rest["records"]]
    assert seqs == [1, 2, 3, 5, 6, 7]  # the six results, seals carry no control
    detail = store.call("GET", "/api/v1/controls/iso27001:2022/A.8.13", auditor).json()
    assert detail["subject_count"] == len(detail["subjects"]) > 0 and detail["ratio"] == 1.0
    agents = store.call("GET", "/api/v1/agents", auditor).json()
    assert agents[0]["agent_id"] == agent_id and agents[0]["records"] == 8


def test_authorisation_matrix(store: Store, tmp_path: Path) -> None:
    agent_a, token_a, _ = _agent(store, tmp_path / "a")
    agent_b, token_b, records_b = _agent(store, tmp_path / "b")
    auditor = store.token(tokens.Role.AUDITOR)
    admin = store.token(tokens.Role.ADMIN)
    push_b = {"records": records_b}
    expectations = [
        ("POST", "/api/v1/evidence", None, push_b, 401),
        ("POST", "/api/v1/evidence", "tls_0000_wrong", push_b, 401),
        ("POST", "/api/v1/evidence", token_a, push_b, 403),  # agent A writing as agent B
        ("POST", "/api/v1/evidence", auditor, push_b, 403),
        ("POST", "/api/v1/evidence", admin, push_b, 403),
        ("POST", "/api/v1/evidence", token_b, push_b, 200),
        ("GET", f"/api/v1/evidence?agent={agent_b}", token_a, None, 403),
        ("GET", "/api/v1/evidence", token_a, None, 200),
        ("GET", "/api/v1/agents", token_a, None, 403),
        ("GET", "/api/v1/agents", auditor, None, 200),
        ("GET", "/api/v1/controls", token_a, None, 403),
        ("GET", "/api/v1/controls", auditor, None, 200),
        ("POST", "/api/v1/tokens", auditor, {"role": "auditor"}, 403),
        ("POST", "/api/v1/tokens", token_a, {"role": "auditor"}, 403),
        ("POST", "/api/v1/tokens", admin, {"role": "auditor"}, 200),
        ("POST", "/api/v1/tokens", admin, {"role": "agent"}, 422),
        ("GET", "/api/v1/alerts", token_a, None, 403),
    ]
    for method, path, token, body, status in expectations:
        answer = store.call(method, path, token, json=body)
        assert answer.status_code == status, (method, path, token, answer.text)
    own = store.call("GET", "/api/v1/evidence", token_a).json()["records"]
    assert {r["agent_id"] for r in own} <= {agent_a}
    with store.engine.connect() as connection:
        actions = [row.action for row in connection.execute(select(audit_log))]
    assert actions.count("auth_failed") == 2
    assert "forbidden" in actions and "token_created" in actions


def test_expired_and_revoked_tokens_are_refused(store: Store, tmp_path: Path) -> None:
    admin = store.token(tokens.Role.ADMIN)
    made = store.call(
        "POST",
        "/api/v1/tokens",
        admin,
        json={"role": "auditor", "expires_at": "2001-01-01T00:00:00Z"},
    ).json()
    assert store.call("GET", "/api/v1/agents", made["token"]).status_code == 401
    live = store.call("POST", "/api/v1/tokens", admin, json={"role": "auditor"}).json()["token"]
    assert store.call("GET", "/api/v1/agents", live).status_code == 200
    token_id = live.split("_")[1]
    assert store.call("DELETE", f"/api/v1/tokens/{token_id}", admin).status_code == 204
    assert store.call("GET", "/api/v1/agents", live).status_code == 401


def test_oversized_bodies_and_batches_get_413(store: Store, tmp_path: Path) -> None:
    _, token, records = _agent(store, tmp_path)
    big = store.call(
        "POST",
        "/api/v1/evidence",
        token,
        data=b"{" + b" " * (300 * 1024) + b"}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert big.status_code == 413
    long = store.call("POST", "/api/v1/evidence", token, json={"records": records * 20})
    assert long.status_code == 413


def test_forged_seal_is_refused_and_alerted(store: Store, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tillsyn.agent.evidence import record_hash, seal_message

    _, token, records = _agent(store, tmp_path)
    seal = records[-1]
    seal["signature"] = b64(Ed25519PrivateKey.generate().sign(seal_message(seal)))
    seal["hash"] = record_hash(seal)
    answer = store.call("POST", "/api/v1/evidence", token, json={"records": records})
    assert answer.status_code == 422
    assert answer.json()["stored"] == 0
    assert "seal signature does not verify" in answer.json()["reason"]
    alerts = store.call("GET", "/api/v1/alerts", store.token(tokens.Role.AUDITOR)).json()
    assert alerts[0]["kind"] == "bad_signature"


def test_fleet_metrics_need_a_reader_token_and_expose_compliance(
    store: Store, tmp_path: Path
) -> None:
    _, token, records = _agent(store, tmp_path)
    assert store.call("POST", "/api/v1/evidence", token, json={"records": records}).ok
    assert store.call("GET", "/metrics").status_code == 401
    assert store.call("GET", "/metrics", token).status_code == 403
    text = store.call("GET", "/metrics", store.token(tokens.Role.AUDITOR)).text
    assert (
        'tillsyn_control_compliance_ratio{control="A.8.13",framework="iso27001:2022"} 1.0' in text
    )
    assert 'tillsyn_agents{state="active"} 1.0' in text
    assert "tillsyn_evidence_ingested_total 4.0" in text
    assert 'tillsyn_family_compliance_ratio{family="backup",target_kind="host"} 1.0' in text
