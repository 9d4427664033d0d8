"""The installed CLI, for real, on this very machine."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.chains import tamper
from tests.support.cli import tillsyn
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.evidence import canonical, key_id, record_hash, unb64
from tillsyn.agent.verify import verify_chain


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def run_json(state: Path) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    done = tillsyn("run", "--json", state=state)
    return done, [json.loads(line) for line in done.stdout.splitlines()]


def test_run_json_prints_records_that_verify_with_valid_control_ids(
    run_json: tuple[subprocess.CompletedProcess[str], list[dict[str, object]]], catalog: Catalog
) -> None:
    done, records = run_json
    assert done.returncode in (0, 1), done.stderr
    lines = done.stdout.splitlines()
    assert records and records[-1]["kind"] == "seal"
    for line, record in zip(lines, records, strict=True):
        assert line == canonical(record).decode()  # printed exactly as hashed
        assert record["hash"] == record_hash(record)
    seal = records[-1]
    public = unb64(str(seal["public_key"]))
    report = verify_chain(
        ((int(r["seq"]), canonical(r).decode()) for r in records),  # type: ignore[call-overload]
        trusted_keys={key_id(public): public},
    )
    assert records[0]["seq"] == 1  # a fresh state directory: the output is the whole chain
    assert report.ok, report.problem
    assert report.seals == 1
    assert report.unsealed == 0
    results = [r for r in records if r["kind"] == "result"]
    assert {r["check"]["id"] for r in results} >= {
        "host.encryption.disk",  # type: ignore[index]
        "host.backup.recency",
    }
    for record in results:
        # only a plugin that failed to load leaves a record without controls
        assert record["controls"] or record["resource"]["type"] == "plugin", record
        assert all(c in catalog for c in record["controls"])  # type: ignore[attr-defined]
        assert record["status"] in ("pass", "fail", "error", "skip", "not_applicable")
    failing = any(r["status"] in ("fail", "error") for r in results)
    assert done.returncode == (1 if failing else 0)


def test_this_machines_root_filesystem_was_evaluated(
    run_json: tuple[subprocess.CompletedProcess[str], list[dict[str, object]]],
) -> None:
    _, records = run_json
    root = [r for r in records if r.get("resource") == {"type": "filesystem", "id": "/"}]
    if Path("/proc/self/mountinfo").exists() and Path("/sys/dev/block").exists():
        assert len(root) == 1
        assert root[0]["status"] in ("pass", "fail")  # it could look, so not error
        assert root[0]["observed"]["layers"]  # type: ignore[index]


def test_verify_accepts_the_chain_then_names_a_modified_record(
    run_json: tuple[subprocess.CompletedProcess[str], list[dict[str, object]]], state: Path
) -> None:
    ok = tillsyn("verify", state=state)
    assert ok.returncode == 0, ok.stderr
    assert "verified" in ok.stdout and "seals" in ok.stdout
    tamper(
        state,
        """UPDATE records SET body = replace(body, '"message":"', '"message":"edited ')
                      WHERE seq = 1""",
    )
    bad = tillsyn("verify", state=state)
    assert bad.returncode == 1
    assert "evidence does NOT verify: record 1" in bad.stderr
    assert "modified" in bad.stderr


def test_table_output_groups_by_family(tmp_path: Path) -> None:
    done = tillsyn("run", state=tmp_path)
    assert done.returncode in (0, 1)
    assert "encryption" in done.stdout and "backup" in done.stdout
    assert "A.8.13" in done.stdout and "NIS 4.2.1" in done.stdout


def test_usage_and_configuration_errors_exit_2(tmp_path: Path) -> None:
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("checks:\n  host.backup.recency:\n    params:\n      max_age: 3\n")
    done = tillsyn("run", "--config", str(bad_config), state=tmp_path)
    assert done.returncode == 2
    assert f"{bad_config}:4: checks.host.backup.recency.params.max_age: unknown key" in done.stderr
    assert tillsyn("run", "--check", "host.nope.nothing", state=tmp_path).returncode == 2
    assert tillsyn("run", "--bogus", state=tmp_path).returncode == 2
    assert tillsyn("config", "check", str(bad_config), state=tmp_path).returncode == 2


def test_check_and_family_filters_select_what_runs(tmp_path: Path) -> None:
    done = tillsyn("run", "--json", "--family", "backup", state=tmp_path)
    ids = {
        json.loads(line)["check"]["id"]
        for line in done.stdout.splitlines()
        if '"kind":"result"' in line
    }
    assert ids == {"host.backup.recency", "host.backup.restore_test"}
    assert done.returncode == 1  # no backup source is configured: that is a failure


def test_backup_passes_for_a_fresh_file_and_fails_for_an_old_one(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "db-1.sql.gz").write_text("x")
    old = backups / "old-1.tar"
    old.write_text("x")
    os.utime(old, (1_600_000_000, 1_600_000_000))
    config = tmp_path / "c.yaml"
    config.write_text(f"""checks:
  host.backup.recency:
    params:
      sources:
        - {{name: fresh, kind: path, path: "{backups}/db-*.sql.gz"}}
        - {{name: stale, kind: path, path: "{backups}/old-*.tar"}}
""")
    done = tillsyn(
        "run",
        "--json",
        "--check",
        "host.backup.recency",
        "--config",
        str(config),
        state=tmp_path / "state",
    )
    results = {
        json.loads(line)["resource"]["id"]: json.loads(line)
        for line in done.stdout.splitlines()
        if '"kind":"result"' in line
    }
    assert results["fresh"]["status"] == "pass"
    assert results["stale"]["status"] == "fail"
    assert results["stale"]["observed"]["newest_file"] == f"{backups}/old-1.tar"


def test_checks_and_controls_listings(tmp_path: Path) -> None:
    checks = json.loads(tillsyn("checks", "--json", state=tmp_path).stdout)
    recency = next(c for c in checks["checks"] if c["id"] == "host.backup.recency")
    assert recency["params"]["max_age_hours"] == {"type": "float", "default": 26.0}
    assert recency["interval"] == "1h"
    controls = json.loads(
        tillsyn("controls", "--framework", "nis2", "--json", state=tmp_path).stdout
    )
    rows = {r["id"]: r for r in controls["nis2"]["controls"]}
    assert rows["nis2/4.2.1"]["checks"] == ["host.backup.recency", "host.backup.restore_test"]
    assert "host.backup.recency" in rows["nis2/4"]["covered_by_subpoints"]
    summary = controls["nis2"]["summary"]
    assert summary["assessable"] == 349
    assert "nis2/6.10.2.b" in summary["without_automated_check"]
    table = tillsyn("controls", "--framework", "iso27001:2022", state=tmp_path)
    assert "of 93 assessable controls have an automated check" in table.stdout


def test_an_approved_exception_marks_the_fail_and_the_exit_code_accepts_it(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("""exceptions:
  - {id: EXC-1, check: host.encryption.disk, resource: "filesystem:*", justification: "lab VM",
     approved_by: ciso@example.eu, expires: 2999-12-31}
  - {id: EXC-2, check: host.encryption.disk, resource: "swap:*", justification: "old",
     approved_by: ciso@example.eu, expires: 2001-01-01}
""")
    done = tillsyn(
        "run",
        "--json",
        "--check",
        "host.encryption.disk",
        "--config",
        str(config),
        state=tmp_path / "state",
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if '"kind":"result"' in line]
    fails = [r for r in results if r["status"] == "fail"]
    if not fails:
        pytest.skip("SKIPPED LOUDLY: this machine's disks are encrypted; nothing to except")
    assert all(
        r["exception"]["id"] == "EXC-1" for r in fails if r["resource"]["type"] == "filesystem"
    )
    unexcepted = [r for r in fails if not r.get("exception") or r["exception"]["expired"]]
    assert done.returncode == (1 if unexcepted else 0)
