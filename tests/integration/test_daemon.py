"""The daemon for real: scheduled runs, status, /metrics, SIGHUP reload, SIGTERM stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.cli import tillsyn
from tests.support.server import free_port

CONFIG = """agent:
  metrics_listen: "127.0.0.1:{port}"
checks:
  host.backup.recency: {{interval: 2s}}
  host.encryption.disk: {{interval: 3s}}
"""


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.2)


def test_daemon_runs_reports_reloads_and_stops(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "tillsyn.yaml"
    config.write_text(CONFIG.format(port=port))
    state = tmp_path / "state"
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillsyn.cli",
            "daemon",
            "--config",
            str(config),
            "--state-dir",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status_file = state / "status.json"

        def ran_twice() -> bool:
            if not status_file.exists():
                return False
            checks = json.loads(status_file.read_text())["checks"]
            return "host.backup.recency" in checks and "host.encryption.disk" in checks

        _wait_for(ran_twice)
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert (
            'tillsyn_check_results{check="host.backup.recency",family="backup",status="fail"} 1.0'
            in metrics
        )
        assert "tillsyn_run_duration_seconds" in metrics
        status = tillsyn("status", "--state-dir", str(state))
        assert status.returncode == 0
        assert "host.encryption.disk: last run" in status.stdout
        assert "store: not enrolled" in status.stdout

        config.write_text("agent: {concurrency: many}\n")
        daemon.send_signal(signal.SIGHUP)
        time.sleep(3)
        assert daemon.poll() is None  # a bad configuration does not stop it

        first = json.loads(status_file.read_text())["updated_at"]
        _wait_for(lambda: json.loads(status_file.read_text())["updated_at"] != first)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
        assert daemon.returncode == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert "configuration NOT reloaded" in stderr
    assert "agent.concurrency: expected an integer" in stderr
    verified = tillsyn("verify", "--state-dir", str(state))
    assert verified.returncode == 0, verified.stderr
    assert os.path.exists(state / "evidence.sqlite3")
