"""Store ingest throughput: 200 concurrent agents pushing sealed batches of 100 records.

Prints records/s accepted (median of 3 rounds) on SQLite and on PostgreSQL, and the
rate of a raw psycopg COPY of the same rows into the same table as the ceiling. The
store runs as its own process (`tillsyn serve`), the agents are threads here, all on
loopback. Usage: ``.venv/bin/python bench/store_ingest.py [--agents 200] [--batch 100]``
(PostgreSQL from TILLSYN_TEST_POSTGRES, default the local test database).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from tillsyn.agent.evidence import (
    GENESIS_HASH,
    SCHEMA,
    b64,
    canonical,
    key_id,
    record_hash,
    seal_message,
)
from tillsyn.agent.ids import uuid7
from tillsyn.store import tokens
from tillsyn.store.database import open_engine
from tillsyn.store.schema import migrate

POSTGRES = os.environ.get(
    "TILLSYN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ROUNDS = 3


class Agent:
    """A simulated agent: its key, id and chain head, producing sealed batches."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.agent_id = str(uuid.uuid4())
        raw = self.key.public_key().public_bytes_raw()
        self.public_key, self.key_id = b64(raw), key_id(raw)
        self.seq, self.head = 0, GENESIS_HASH
        self.token = ""

    def batch(self, size: int) -> list[dict[str, Any]]:
        run_id = uuid7()
        out = []
        for n in range(size):
            self.seq += 1
            record: dict[str, Any] = {
                "schema": SCHEMA,
                "kind": "result",
                "record_id": uuid7(),
                "run_id": run_id,
                "agent_id": self.agent_id,
                "agent_version": "bench",
                "target": {"kind": "host", "id": self.agent_id[:8], "name": "bench"},
                "check": {
                    "id": "host.backup.recency",
                    "version": "1",
                    "family": "backup",
                    "title": "Newest backup is within the RPO",
                    "interval_seconds": 3600,
                },
                "controls": ["iso27001:2022/A.8.13", "nis2/4.2.1"],
                "status": "pass",
                "severity": "high",
                "resource": {"type": "backup_source", "id": f"src{n}"},
                "message": f"src{n}: newest backup is 3 h 12 min old (RPO 26 h)",
                "observed": {"age_hours": 3.2},
                "expected": {"max_age_hours": 26},
                "observed_at": "2026-11-23T12:00:00.000000Z",
                "duration_seconds": 0.01,
                "seq": self.seq,
                "prev_hash": self.head,
            }
            record["hash"] = self.head = record_hash(record)
            out.append(record)
        self.seq += 1
        seal: dict[str, Any] = {
            "schema": SCHEMA,
            "kind": "seal",
            "record_id": uuid7(),
            "agent_id": self.agent_id,
            "agent_version": "bench",
            "run_id": run_id,
            "sealed_at": "2026-11-23T12:00:01.000000Z",
            "head_seq": self.seq - 1,
            "head_hash": self.head,
            "key_id": self.key_id,
            "public_key": self.public_key,
            "seq": self.seq,
            "prev_hash": self.head,
        }
        seal["signature"] = b64(self.key.sign(seal_message(seal)))
        seal["hash"] = self.head = record_hash(seal)
        out.append(seal)
        return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(url: str, state: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillsyn.cli",
            "serve",
            "--database",
            url,
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(base + "/healthz", timeout=1)
            return process, base
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("store did not start")


def _cpu_seconds(store: psutil.Process) -> dict[str, float]:
    """CPU seconds used so far by the store (with its workers), PostgreSQL, and this process."""

    def used(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    postgres = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
    return {
        "store": used(store) + sum(used(child) for child in store.children(recursive=True)),
        "PostgreSQL": sum(used(p) for p in postgres),
        "agents (this process)": used(psutil.Process()),
    }


def measure(
    url: str, agents: list[Agent], batch: int, state: Path, workers: int = 1
) -> list[float]:
    engine = open_engine(url)
    migrate(engine)
    with engine.begin() as connection:
        enrol = [tokens.create(connection, tokens.Role.ENROL) for _ in agents]
    engine.dispose()
    process, base = _serve(url, state, workers)
    try:
        for agent, token in zip(agents, enrol, strict=True):
            answer = requests.post(
                base + "/api/v1/enroll",
                timeout=30,
                headers={"Authorization": f"Bearer {token}"},
                json={"agent_id": agent.agent_id, "public_key": agent.public_key},
            )
            agent.token = answer.json()["token"]
        rates = []

        port = int(base.rsplit(":", 1)[1])

        def send(item: tuple[Agent, bytes]) -> int:
            agent, body = item
            # A new connection per batch, as an agent pushing once per run makes one;
            # http.client rather than requests, whose own CPU (on the store's two cores
            # here, on the agents' machines in the field) was a third of a core.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            try:
                connection.request(
                    "POST",
                    "/api/v1/evidence",
                    body=body,
                    headers={
                        "Authorization": f"Bearer {agent.token}",
                        "Content-Type": "application/json",
                    },
                )
                answer = connection.getresponse()
                text = answer.read()
            finally:
                connection.close()
            if answer.status != 200:
                raise RuntimeError(f"{answer.status}: {text[:200]!r}")
            return int(json.loads(text)["stored"])

        store = psutil.Process(process.pid)
        before = _cpu_seconds(store)
        elapsed = 0.0
        with ThreadPoolExecutor(max_workers=len(agents)) as pool:
            for _ in range(ROUNDS):
                # Bodies are encoded before the clock starts: real agents do that on
                # their own machines, not on the store's two cores.
                work = [
                    (agent, json.dumps({"records": agent.batch(batch)}).encode())
                    for agent in agents
                ]
                started = time.perf_counter()
                stored = sum(pool.map(send, work))
                took = time.perf_counter() - started
                elapsed += took
                rates.append(stored / took)
        after = _cpu_seconds(store)
        spent = {part: after[part] - before[part] for part in before}
        records = ROUNDS * len(agents) * (batch + 1)
        print(
            f"  where the {os.cpu_count()} cores went while timed ({elapsed:.1f} s wall): "
            + ", ".join(f"{part} {seconds / elapsed:.0%}" for part, seconds in spent.items())
            + f" of one core; the store spent {spent['store'] / records * 1e6:.0f} µs of CPU"
            " a record"
        )
        return rates
    finally:
        process.terminate()
        process.wait(timeout=30)


def copy_ceiling(url: str, agents_count: int, batch: int) -> float:
    """Rows/s of a raw COPY of the same rows into the same (freshly migrated) table."""
    schema = f"bench_copy_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    migrate(engine)
    engine.dispose()
    rows = []
    for agent in [Agent() for _ in range(agents_count)]:
        for record in agent.batch(batch):
            rows.append(
                (
                    record["agent_id"],
                    record["seq"],
                    record["record_id"],
                    record["kind"],
                    record["run_id"],
                    record.get("check", {}).get("id"),
                    record.get("status"),
                    agent.agent_id[:8],
                    "backup_source:x",
                    record.get("observed_at") or record["sealed_at"],
                    "2026-11-23T12:00:02Z",
                    record["hash"],
                    canonical(record).decode(),
                )
            )
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, options=f"-csearch_path={schema}") as connection:
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY evidence (agent_id, seq, record_id, kind, run_id, check_id, status,"
                " target_id, resource, observed_at, received_at, hash, body) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        connection.commit()
        elapsed = time.perf_counter() - started
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
    return len(rows) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="store worker processes for the PostgreSQL run (SQLite: 1)",
    )
    args = parser.parse_args()
    size = len(canonical(Agent().batch(1)[0]))
    print(
        f"{args.agents} agents x {args.batch} records + 1 seal per batch, {ROUNDS} rounds; "
        f"one record is {size} bytes of canonical JSON"
    )
    with tempfile.TemporaryDirectory() as state:
        sqlite_url = f"sqlite:///{Path(state) / 'bench.sqlite3'}"
        rates = measure(sqlite_url, [Agent() for _ in range(args.agents)], args.batch, Path(state))
        print(
            f"SQLite:     {statistics.median(rates):>9,.0f} records/s accepted "
            f"(median of {ROUNDS}: {', '.join(f'{r:,.0f}' for r in rates)})"
        )
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        pg_url = POSTGRES + ("&" if "?" in POSTGRES else "?") + f"options=-csearch_path%3D{schema}"
        try:
            rates = measure(
                pg_url, [Agent() for _ in range(args.agents)], args.batch, Path(state), args.workers
            )
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    pg = statistics.median(rates)
    ceiling = copy_ceiling(POSTGRES, args.agents, args.batch)
    print(
        f"PostgreSQL: {pg:>9,.0f} records/s accepted "
        f"(median of {ROUNDS}: {', '.join(f'{r:,.0f}' for r in rates)})"
    )
    print(f"raw COPY:   {ceiling:>9,.0f} rows/s (same rows, same table: the ceiling)")
    print(
        f"ratio:      {pg / ceiling:.1%} of the raw COPY rate "
        "(targets: >= 10,000 records/s and >= 25 %)"
    )


if __name__ == "__main__":
    main()
