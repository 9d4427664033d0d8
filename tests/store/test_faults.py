"""Faults: an agent killed mid-push, a store whose database goes read-only or fills up.

Nothing is lost and nothing is duplicated: the agent's outbox keeps every record until
the store has acknowledged it, and the store answers 503 (retry later) when its
database cannot be written, never a half-stored batch.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from tests.conftest import IN_CI
from tests.support.chains import build_chain
from tests.support.cli import tillsyn
from tests.support.server import serving
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.agent.storeclient import StoreLink, push
from tillsyn.store import tokens
from tillsyn.store.app import create_app
from tillsyn.store.database import open_engine
from tillsyn.store.schema import evidence, migrate
from tillsyn.store.storekey import StoreKey

PUSH_SLOWLY = """
import sys, time
from pathlib import Path
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.agent.storeclient import StoreLink, push
state = Path(sys.argv[1])
store = LocalEvidence(state)
print("pushing", flush=True)
push(store, StoreLink.load(state), batch_size=4)
"""


def _enrol(engine: Engine, base: str, state: Path) -> None:
    with engine.begin() as connection:
        token = tokens.create(connection, tokens.Role.ENROL)
    enrolled = tillsyn("enroll", base, token, state=state)
    assert enrolled.returncode == 0, enrolled.stderr


def _stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(evidence)).scalar() or 0)


def test_agent_killed_mid_push_resumes_without_loss_or_duplicates(
    engine: Engine, catalog: Catalog, tmp_path: Path, store_key: StoreKey
) -> None:
    state = tmp_path / "agent"
    build_chain(state, runs=60, per_run=3)
    with serving(create_app(engine, catalog, store_key)) as base:
        _enrol(engine, base, state)
        pusher = subprocess.Popen(
            [sys.executable, "-c", PUSH_SLOWLY, str(state)], stdout=subprocess.PIPE, text=True
        )
        assert pusher.stdout is not None
        assert pusher.stdout.readline().strip() == "pushing"
        time.sleep(0.3)
        pusher.send_signal(signal.SIGKILL)
        pusher.communicate()
        local = LocalEvidence(state)
        total = local.count()
        partly = _stored(engine)
        report = push(local, StoreLink.load(state), batch_size=50)
        local.close()
        assert report.error is None
        assert report.remaining == 0
        assert _stored(engine) == total  # everything, once
        # The batch in flight when the agent died may have been stored after all: the
        # resumed push then gets it acknowledged as duplicates, never stored twice.
        assert report.delivered <= total - partly


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own, to make read-only or fill up (needs root and mount)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.strip()}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_store_database_read_only_then_full_answers_503_and_the_agent_keeps_its_outbox(
    catalog: Catalog, tmp_path: Path, small_mount: Path, store_key: StoreKey
) -> None:
    engine = open_engine(f"sqlite:///{small_mount / 'store.sqlite3'}")
    migrate(engine)
    state = tmp_path / "agent"
    with serving(create_app(engine, catalog, store_key)) as base:
        _enrol(engine, base, state)
        build_chain(state, runs=2, per_run=3)
        engine.dispose()  # close pooled connections so the filesystem can go read-only
        subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
        local = LocalEvidence(state)
        refused = push(local, StoreLink.load(state), attempts=1)
        assert refused.error is not None and "503" in refused.error
        assert refused.remaining == local.count()
        subprocess.run(["mount", "-o", "remount,rw", str(small_mount)], check=True)
        filler = small_mount / "filler"
        with open(filler, "wb") as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
            except OSError:
                pass
        full = push(local, StoreLink.load(state), attempts=1)
        assert full.error is not None and full.remaining == local.count()
        filler.unlink()
        delivered = push(local, StoreLink.load(state), attempts=1)
        assert delivered.error is None and delivered.remaining == 0
        local.close()
    engine.dispose()


def test_agent_evidence_directory_read_only_is_a_clear_error(
    tmp_path: Path, small_mount: Path
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    done = tillsyn("run", "--state-dir", str(small_mount / "state"))
    assert done.returncode == 1
    assert "Read-only file system" in done.stderr or "readonly" in done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot create the agent identity in {small_mount / 'state'}" in done.stderr
