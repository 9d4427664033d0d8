"""Figures for the host run: wall time and peak RSS of `tillsyn run`, and CLI import time.

Printed, never asserted (tests do not measure time). Each run is a fresh process, as a
user or a cron job starts it; peak RSS comes from that child's own rusage (os.wait4),
not from the benchmark process. Usage: ``.venv/bin/python bench/run_host.py [runs]``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "tillsyn.cli"]
HEAVY = ("boto3", "botocore", "kubernetes")


def _measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB and exit code of one fresh process."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(argv, env=env, stdout=sink, stderr=sink)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, process.returncode


def _import_ms(module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter (-X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000
    raise RuntimeError(f"{module} not found in -X importtime output")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as state:
        env = dict(os.environ, TILLSYN_STATE_DIR=state, COLUMNS="160")
        _measure([*CLI, "run"], env)  # warm-up: creates the key and the evidence file
        samples = [_measure([*CLI, "run"], env) for _ in range(runs)]
        json_samples = [_measure([*CLI, "run", "--json"], env) for _ in range(runs)]
        version = [_measure([*CLI, "--version"], env) for _ in range(runs)]
        importtime = subprocess.run(
            [sys.executable, "-X", "importtime", *CLI[1:], "run", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stderr
    heavy = sorted({m for m in HEAVY if f"| {m}\n" in importtime or f"| {m}." in importtime})
    wall = statistics.median(s[0] for s in samples)
    rss = statistics.median(s[1] for s in samples)
    print(
        f"tillsyn run (table), median of {runs}: wall {wall * 1000:.0f} ms, "
        f"peak RSS {rss:.1f} MiB (exit {samples[0][2]})"
    )
    print(
        f"tillsyn run --json, median of {runs}: wall "
        f"{statistics.median(s[0] for s in json_samples) * 1000:.0f} ms, peak RSS "
        f"{statistics.median(s[1] for s in json_samples):.1f} MiB"
    )
    print(
        f"tillsyn --version (interpreter start + CLI import), median of {runs}: "
        f"{statistics.median(s[0] for s in version) * 1000:.0f} ms"
    )
    print(f"import tillsyn.cli: {_import_ms('tillsyn.cli'):.1f} ms")
    print(f"heavy SDKs imported by a host run: {', '.join(heavy) or 'none'}")
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load}")


if __name__ == "__main__":
    main()
