"""Hostile input from every kind of caller, against a real ``tillsyn serve`` process
(two workers) over HTTP, on SQLite and PostgreSQL.

Records here are validly chained and sealed with the enrolled agent's own key: the
store must refuse them for what they hold, not for their signature. Whatever arrives,
no request gets a 5xx, and nothing a refused request carried breaks what auditors read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from tests.support.chains import result_body
from tests.support.concurrency import at_once
from tests.support.process import ServedStore, served_store
from tillsyn.agent import identity as identity_module
from tillsyn.agent.evidence import (
    GENESIS_HASH,
    SCHEMA,
    SEAL,
    b64,
    record_hash,
    seal_message,
    timestamp,
)
from tillsyn.agent.ids import uuid7
from tillsyn.store import tokens
from tillsyn.store.schema import alerts, evidence

CONTROL = "iso27001:2022/A.8.13"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedStore]:
    with served_store(request.param, tmp_path_factory.mktemp(request.param)) as store:
        yield store


class Agent:
    """An enrolled agent with its own state directory, pushing over HTTP."""

    def __init__(self, store: ServedStore, state_dir: Path) -> None:
        self.store, self.state_dir = store, state_dir
        self.identity = identity_module.load_or_create(state_dir)
        enrolled = requests.post(
            store.base + "/api/v1/enroll",
            json={
                "agent_id": self.identity.agent_id,
                "hostname": "laptop-7",
                "public_key": b64(self.identity.public_key_raw),
            },
            headers=_auth(store.token(tokens.Role.ENROL)),
            timeout=30,
        )
        assert enrolled.status_code == 200, enrolled.text
        self.token: str = enrolled.json()["token"]
        self.seq, self.head = 0, GENESIS_HASH

    def run(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Chain and seal ``bodies`` as one run, the way the agent does (but without its
        local store, which would refuse some of these shapes); returns the new records."""
        done = []
        for body in bodies:
            record = dict(body, seq=self.seq + 1, prev_hash=self.head)
            try:
                record["hash"] = record_hash(record)
            except RecursionError:  # too deep for any reference encoder: refused first
                record["hash"] = "0" * 64
            self.seq, self.head = record["seq"], record["hash"]
            done.append(record)
        seal: dict[str, Any] = {
            "schema": SCHEMA,
            "kind": SEAL,
            "record_id": uuid7(),
            "agent_id": self.identity.agent_id,
            "agent_version": "test",
            "run_id": uuid7(),
            "sealed_at": timestamp(datetime.now(UTC)),
            "head_seq": self.seq,
            "head_hash": self.head,
            "key_id": self.identity.key_id,
            "public_key": b64(self.identity.public_key_raw),
            "seq": self.seq + 1,
            "prev_hash": self.head,
        }
        seal["signature"] = b64(self.identity.sign(seal_message(seal)))
        seal["hash"] = record_hash(seal)
        self.seq, self.head = seal["seq"], seal["hash"]
        return [*done, seal]

    def body(self, n: int, run_id: str) -> dict[str, Any]:
        return result_body(self.identity.agent_id, run_id, n)

    def push(self, records: list[dict[str, Any]]) -> requests.Response:
        return requests.post(
            self.store.base + "/api/v1/evidence",
            json={"records": records},
            headers=_auth(self.token),
            timeout=60,
        )


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _stored(store: ServedStore, agent_id: str) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(evidence).where(evidence.c.agent_id == agent_id)
            ).scalar()
            or 0
        )


def _alerts(store: ServedStore, agent_id: str) -> list[str]:
    with store.engine.connect() as connection:
        return [
            row.kind
            for row in connection.execute(select(alerts).where(alerts.c.agent_id == agent_id))
        ]


def _set(path: str, value: Any) -> Any:
    def mutate(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        holder = record
        for step in parents:
            holder = holder[step]
        holder[last] = value

    return mutate


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


ODD_RECORDS = {
    "target": (_set("target", "host-a"), "target"),
    "resource": (_set("resource", "/etc/passwd"), "resource"),
    "run_id": (_set("run_id", {"id": 1}), "run_id"),
    "record_id": (_set("record_id", "r" * 10_000), "record_id"),
    "check.id": (_set("check.id", "c" * 10_000), "check/id"),
    "interval": (_set("check.interval_seconds", "abc"), "check/interval_seconds"),
    "exception": (_set("exception", "text"), "exception"),
    "observed_at": (_set("observed_at", "yesterday"), "observed_at"),
    "status": (_set("status", "passed"), "status"),
    "controls": (_set("controls", "iso27001:2022/A.8.13"), "controls"),
    "extra field": (_set("check.extra", 1), "check"),
    "bool as seconds": (_set("duration_seconds", True), "duration_seconds"),
    "year 0000": (_set("observed_at", "0000-01-01T00:00:00.000000Z"), "observed_at"),
    "256 levels": (_set("observed", _nested(256)), "observed: nested deeper than 32"),
    "800 levels": (_set("observed", _nested(800)), "observed: nested deeper than 32"),
}


@pytest.mark.parametrize("case", list(ODD_RECORDS), ids=list(ODD_RECORDS))
def test_an_oddly_shaped_signed_record_is_refused_naming_its_index_and_field(
    served: ServedStore, tmp_path: Path, case: str
) -> None:
    mutate, field = ODD_RECORDS[case]
    agent = Agent(served, tmp_path)
    run_id = uuid7()
    odd = agent.body(1, run_id)
    mutate(odd)
    records = agent.run([agent.body(0, run_id), odd, agent.body(2, run_id)])

    answer = agent.push(records)

    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(f"record 1: {field}"), detail
    assert len(detail) < 400  # the offending value is not echoed back in full
    assert _stored(served, agent.identity.agent_id) == 0  # nothing of the batch
    assert "bad_record" in _alerts(served, agent.identity.agent_id)
    auditor = _auth(served.token(tokens.Role.AUDITOR))
    for path in ("/api/v1/controls", f"/api/v1/controls/{CONTROL}", "/metrics"):
        assert requests.get(served.base + path, headers=auditor, timeout=30).status_code == 200


def _nastiest_records(agent: Agent) -> list[dict[str, Any]]:
    """What the schema allows at its edges: longest texts, every awkward character."""
    run_id = uuid7()
    bodies = []
    awkward = "'\"\\%_*?[]{}<>;--/*\n\t\r\u0000\u2028\ufeff😀Ω" + "\u202e"
    for n, resource_id in enumerate(
        [awkward, "x" * 2048, "C:\\Users\\Ådmin\\ntuser.dat", "%00%ff", "", "a" * 10]
    ):
        body = agent.body(n, run_id)
        body["resource"] = {"type": "file", "id": resource_id}
        body["message"] = awkward * 100
        body["target"] = {"kind": "host", "id": awkward, "name": awkward}
        body["observed"] = {awkward: [awkward, 2**53 - 1, -(2**53) + 1, 1.5e300, None, True]}
        body["controls"] = [CONTROL, "iso27001:2022/A.8", "nis2:2024/99.99"]
        body["status"] = ["pass", "fail", "error", "skip", "not_applicable", "fail"][n]
        body["check"]["interval_seconds"] = [0, 1, 86400, 3e9, 0.5, 60][n]
        bodies.append(body)
    bodies[1]["exception"] = {
        "id": awkward,
        "approved_by": awkward,
        "justification": awkward * 10,
        "expires": "2099-01-01",
        "expired": False,
    }
    return agent.run(bodies)


@pytest.fixture(scope="module")
def nasty_store(
    served: ServedStore, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ServedStore, Agent]:
    """The served store holding the nastiest records the schema allows."""
    agent = Agent(served, tmp_path_factory.mktemp("nasty"))
    answer = agent.push(_nastiest_records(agent))
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 7
    return served, agent


def test_the_nastiest_allowed_records_are_stored_and_read_back(
    nasty_store: tuple[ServedStore, Agent],
) -> None:
    store, agent = nasty_store
    auditor = _auth(store.token(tokens.Role.AUDITOR))
    page = requests.get(
        store.base + "/api/v1/evidence",
        params={"agent": agent.identity.agent_id, "limit": 1000},
        headers=auditor,
        timeout=30,
    )
    assert page.status_code == 200
    got = [r for r in page.json()["records"] if r["kind"] == "result"]
    assert got[0]["resource"]["id"].startswith("'\"\\%")
    assert "\u0000" in got[0]["resource"]["id"]  # kept exactly as signed
    detail = requests.get(
        store.base + f"/api/v1/controls/{CONTROL}", headers=auditor, timeout=30
    ).json()
    # the list of subjects, and their count beside it
    assert isinstance(detail["subjects"], list)
    assert detail["subject_count"] == len(detail["subjects"]) >= 6
    assert {s["status"] for s in detail["subjects"]} >= {"pass", "fail", "error"}


#: (path, parameters it takes); every GET the store serves.
GET_ENDPOINTS = {
    "/api/v1/evidence": (
        "control",
        "check",
        "agent",
        "target",
        "status",
        "since",
        "until",
        "cursor",
        "limit",
        "columns",
    ),
    "/api/v1/controls": ("framework",),
    f"/api/v1/controls/{CONTROL}": (),
    "/api/v1/agents": (),
    "/api/v1/alerts": (),
    "/api/v1/store/chain": ("after", "limit", "agent"),
    "/api/v1/retention": (),
    "/api/v1/audit": ("after_id", "limit"),
    "/api/v1/schema/evidence": (),
    "/.well-known/tillsyn-store-key": (),
    "/metrics": (),
}

#: Raw, already percent-encoded query values.
HOSTILE_VALUES = (
    "%00",
    "a%00b",
    "%ff%fe",
    "%c3%28",
    "-1",
    "0",
    "1e9",
    "99999999999999999999999999999",
    "abc",
    "",
    "%20",
    "yesterday",
    "9999-99-99T99:99:99Z",
    "2026-11-01T00:00:00",
    "a.99999999999999999999",
    "x." + "9" * 300,
    "%F0%9F%98%80.1",
    "..",
    "'%20OR%201=1--",
    "z" * 300,
    "%0d%0aSet-Cookie:%20x=1",
)


@pytest.mark.parametrize("role", ["admin", "auditor", "agent", "none"])
def test_no_query_parameter_from_any_caller_gets_a_5xx(
    nasty_store: tuple[ServedStore, Agent], role: str
) -> None:
    store, agent = nasty_store
    headers = {
        "admin": _auth(store.token(tokens.Role.ADMIN)),
        "auditor": _auth(store.token(tokens.Role.AUDITOR)),
        "agent": _auth(agent.token),
        "none": {},
    }[role]
    failures = []
    with requests.Session() as session:
        for path, names in GET_ENDPOINTS.items():
            for name in (*names, "unknown"):
                for value in HOSTILE_VALUES:
                    url = f"{store.base}{path}?{name}={value}"
                    got = session.get(url, headers=headers, timeout=30)
                    if got.status_code >= 500:
                        failures.append(f"{got.status_code} {path}?{name}={value}: {got.text}")
                    if "%00" in value or "%0d" in value:
                        assert got.status_code == 400, (url, got.status_code, got.text)
                        assert "control character" in got.json()["detail"]
    assert not failures, "\n".join(failures[:20])


def test_hostile_paths_get_4xx(nasty_store: tuple[ServedStore, Agent]) -> None:
    store, _ = nasty_store
    auditor = _auth(store.token(tokens.Role.AUDITOR))
    for path, expected in (
        ("/api/v1/controls/", 404),
        ("/api/v1/controls/%00", 400),
        ("/api/v1/controls/%ff", 400),
        ("/api/v1/controls/no-such-framework:1/A.1", 422),
        ("/api/v1/controls/" + "A" * 5000, 422),
        ("/api/v1/controls/" + "A" * 9000, 414),
        ("/api/v1/evidence?" + "a=1&" * 3000, 414),
    ):
        got = requests.get(store.base + path, headers=auditor, timeout=30)
        assert got.status_code == expected, (path[:60], got.status_code, got.text[:200])
        assert "detail" in got.json()


def test_huge_headers_get_431_and_the_store_keeps_answering(
    nasty_store: tuple[ServedStore, Agent],
) -> None:
    store, _ = nasty_store
    auditor = _auth(store.token(tokens.Role.AUDITOR))
    for headers in (
        {"Authorization": "Bearer " + "t" * 1_000_000},
        {"X-Filler": "f" * 20_000},
        {f"X-Many-{i}": "v" * 100 for i in range(300)},
    ):
        got = requests.get(store.base + "/api/v1/agents", headers=headers, timeout=60)
        assert got.status_code == 431, got.status_code
        assert "headers exceed" in got.json()["detail"]
    assert requests.get(store.base + "/api/v1/agents", headers=auditor, timeout=30).ok


def test_concurrent_identical_replays_all_answer_200_with_duplicates_counted(
    served: ServedStore, tmp_path: Path
) -> None:
    agent = Agent(served, tmp_path)
    run_id = uuid7()
    records = agent.run([agent.body(n, run_id) for n in range(5)])

    def replay(session: requests.Session) -> requests.Response:
        return session.post(
            served.base + "/api/v1/evidence",
            json={"records": records},
            headers=_auth(agent.token),
            timeout=60,
        )

    answers = at_once(served.base, [replay] * 10)
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert sum(b["stored"] for b in bodies) == len(records)
    assert all(b["stored"] + b["duplicates"] == len(records) for b in bodies)
    assert all(b["receipt"] for b in bodies)  # each can show what the store holds
    assert _stored(served, agent.identity.agent_id) == len(records)


def test_an_agent_id_that_is_not_a_uuid_cannot_enrol(served: ServedStore) -> None:
    spelled = str(uuid.uuid4())
    for agent_id in (
        "",
        "a" * 10_000,
        "../../etc",
        spelled + "\u0000",
        spelled.upper(),  # the same agent in another spelling
        f"urn:uuid:{spelled}",
        "{" + spelled + "}",
        spelled.replace("-", ""),
    ):
        got = requests.post(
            served.base + "/api/v1/enroll",
            json={"agent_id": agent_id, "hostname": "x", "public_key": b64(b"k" * 32)},
            headers=_auth(served.token(tokens.Role.ENROL)),
            timeout=30,
        )
        assert 400 <= got.status_code < 500, (agent_id[:20], got.status_code, got.text)


def test_a_record_over_the_size_limit_is_refused_though_the_body_fits(
    served: ServedStore, tmp_path: Path
) -> None:
    agent = Agent(served, tmp_path)
    run_id = uuid7()
    big = agent.body(0, run_id)
    big["observed"] = {"lines": ["x" * 1000] * 2000}  # 2 MB, under the 8 MiB body limit
    answer = agent.push(agent.run([big]))
    assert answer.status_code == 422, answer.text
    assert "over the 1048576-byte record limit" in answer.json()["detail"]
    assert _stored(served, agent.identity.agent_id) == 0


def test_a_lone_surrogate_anywhere_gets_422(served: ServedStore) -> None:
    enrol = f'{{"agent_id":"{uuid.uuid4()}","public_key":"{b64(b"k" * 32)}","hostname":"\\ud800"}}'
    for path, token, body in (
        ("/api/v1/enroll", served.token(tokens.Role.ENROL), enrol),
        ("/api/v1/tokens", served.token(tokens.Role.ADMIN), '{"role":"auditor","note":"\\ud800"}'),
    ):
        got = requests.post(
            served.base + path,
            data=body.encode(),
            headers={**_auth(token), "Content-Type": "application/json"},
            timeout=30,
        )
        assert got.status_code == 422, (path, got.status_code, got.text)


def test_a_chunked_body_over_the_limit_gets_413(served: ServedStore, tmp_path: Path) -> None:
    agent = Agent(served, tmp_path)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    for path, token in (
        ("/api/v1/evidence", agent.token),
        ("/api/v1/tokens", served.token(tokens.Role.ADMIN)),
    ):
        got = requests.post(
            served.base + path,
            data=chunks(),  # no Content-Length: counted as it arrives
            headers={**_auth(token), "Content-Type": "application/json"},
            timeout=60,
        )
        assert got.status_code == 413, (path, got.status_code, got.text[:200])
        assert "exceeds" in got.json()["detail"]
