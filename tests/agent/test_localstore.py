"""The local store under concurrent writers, and the identity files beside it."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from tests.support.chains import result_body
from tillsyn.agent import identity as identity_module
from tillsyn.agent.identity import IdentityError
from tillsyn.agent.ids import uuid7
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.agent.verify import verify_chain


def _writer(state_dir: str, rounds: int) -> None:
    identity = identity_module.load_or_create(Path(state_dir))
    store = LocalEvidence(Path(state_dir))
    for n in range(rounds):
        store.append(
            [result_body(identity.agent_id, "run", n), result_body(identity.agent_id, "run", n)]
        )
        store.seal(identity, "run", "test", uuid7())
    store.close()


def test_two_processes_appending_at_once_build_one_valid_chain(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), 25)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    identity = identity_module.load(tmp_path)
    store = LocalEvidence(tmp_path)
    report = verify_chain(
        store.rows(),
        trusted_keys={identity.key_id: identity.public_key_raw},
        agent_id=identity.agent_id,
        sealed_head=store.sealed_head(),
    )
    store.close()
    assert report.ok, report.problem
    # Every result is kept; a seal is skipped when the other writer's seal already covers
    # the head, so there are at most 50 seals and the chain ends sealed.
    assert report.records - report.seals == 2 * 25 * 2
    assert 25 <= report.seals <= 50
    assert report.unsealed == 0


def test_identity_is_created_once_with_a_private_key_file(tmp_path: Path) -> None:
    first = identity_module.load_or_create(tmp_path)
    second = identity_module.load_or_create(tmp_path)
    assert first.agent_id == second.agent_id
    assert first.key_id == second.key_id
    assert stat.S_IMODE((tmp_path / "agent.key").stat().st_mode) == 0o600


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    identity_module.load_or_create(tmp_path)
    os.chmod(tmp_path / "agent.key", 0o644)
    with pytest.raises(IdentityError, match="readable by others"):
        identity_module.load(tmp_path)


def test_ids_sort_by_creation_and_never_repeat() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i[14] == "7" for i in ids)  # the UUID version nibble
