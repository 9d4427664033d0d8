"""Chain verification: every kind of tampering is found and the first bad record named."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.chains import build_chain, rewrite, tamper
from tillsyn.agent import identity as identity_module
from tillsyn.agent.evidence import b64, seal_message
from tillsyn.agent.localstore import DB_FILE, LocalEvidence, verify_local
from tillsyn.agent.verify import verify_chain


def test_untouched_chain_verifies_with_every_seal(tmp_path: Path) -> None:
    build_chain(tmp_path, runs=3, per_run=4)
    report = verify_local(tmp_path)
    assert report.ok, report.problem
    assert (report.records, report.seals, report.unsealed, report.head_seq) == (15, 3, 0, 15)


def test_modified_record_is_named(tmp_path: Path) -> None:
    build_chain(tmp_path)
    tamper(
        tmp_path,
        'UPDATE records SET body = replace(body, \'"status":"pass"\', '
        '\'"status":"fail"\') WHERE seq = 2',
    )
    report = verify_local(tmp_path)
    assert report.problem is not None
    assert report.problem.seq == 2
    assert "modified" in report.problem.reason


def test_modified_record_with_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    build_chain(tmp_path)
    rewrite(tmp_path, 2, lambda record: record.update(status="fail"))
    report = verify_local(tmp_path)
    assert report.problem is not None
    assert report.problem.seq == 3
    assert "record 2 was altered or replaced" in report.problem.reason


def test_deleted_record_is_named(tmp_path: Path) -> None:
    build_chain(tmp_path)
    tamper(tmp_path, "DELETE FROM records WHERE seq = 3")
    report = verify_local(tmp_path)
    assert report.problem is not None
    assert report.problem.seq == 4
    assert "record 3 is missing" in report.problem.reason


def test_reordered_records_are_named(tmp_path: Path) -> None:
    build_chain(tmp_path)
    tamper(
        tmp_path,
        "UPDATE records SET seq = -2 WHERE seq = 2",
        "UPDATE records SET seq = 2 WHERE seq = 3",
        "UPDATE records SET seq = 3 WHERE seq = -2",
    )
    report = verify_local(tmp_path)
    assert report.problem is not None
    assert report.problem.seq == 2
    assert "reordered" in report.problem.reason


def test_truncated_record_is_named(tmp_path: Path) -> None:
    build_chain(tmp_path)
    tamper(tmp_path, "UPDATE records SET body = substr(body, 1, 80) WHERE seq = 5")
    report = verify_local(tmp_path)
    assert report.problem is not None
    assert report.problem.seq == 5
    assert "not valid JSON" in report.problem.reason


def test_cut_off_tail_is_noticed_through_the_remembered_seal(tmp_path: Path) -> None:
    build_chain(tmp_path, runs=2, per_run=3)  # seq 1-3, seal 4, 5-7, seal 8
    tamper(tmp_path, "DELETE FROM records WHERE seq >= 5")
    report = verify_local(tmp_path)
    assert report.problem is not None
    assert "records after 4 were deleted" in report.problem.reason


def test_forged_seal_signature_is_refused(tmp_path: Path) -> None:
    build_chain(tmp_path, runs=1, per_run=2)

    def forge(seal: dict[str, object]) -> None:
        seal["signature"] = b64(Ed25519PrivateKey.generate().sign(seal_message(seal)))

    rewrite(tmp_path, 3, forge)
    report = verify_local(tmp_path)
    assert report.problem is not None
    assert report.problem.seq == 3
    assert report.problem.reason == "seal signature does not verify"


def test_seal_by_an_untrusted_key_is_refused(tmp_path: Path) -> None:
    build_chain(tmp_path, runs=1, per_run=2)
    store = LocalEvidence(tmp_path)
    report = verify_chain(store.rows(), trusted_keys={})
    store.close()
    assert report.problem is not None
    assert "unknown key" in report.problem.reason


def test_unsealed_tail_is_counted_not_hidden(tmp_path: Path) -> None:
    build_chain(tmp_path, runs=1, per_run=2)
    identity = identity_module.load(tmp_path)
    store = LocalEvidence(tmp_path)
    from tests.support.chains import result_body

    store.append([result_body(identity.agent_id, "r", 9)])
    store.close()
    report = verify_local(tmp_path)
    assert report.ok
    assert report.unsealed == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE records SET status = 'pass'",
        "DELETE FROM records WHERE seq = 1",
    ],
)
def test_store_refuses_updates_and_deletes(tmp_path: Path, statement: str) -> None:
    build_chain(tmp_path, runs=1, per_run=1)
    db = sqlite3.connect(tmp_path / DB_FILE)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(statement)
    db.close()
