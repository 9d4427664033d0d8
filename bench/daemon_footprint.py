"""Idle footprint of `tillsyn daemon` with the host checks only: RSS and CPU over time.

Starts the daemon on its default intervals (the first pass runs every check, then it
idles until the next one is due), samples its RSS and CPU time with psutil, and checks
which modules it imported (boto3 and kubernetes must never load for a host-only agent).
Usage: ``.venv/bin/python bench/daemon_footprint.py [minutes]`` (default 10).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HEAVY = ("boto3", "botocore", "kubernetes")


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    with tempfile.TemporaryDirectory() as state:
        log = Path(state) / "importtime.log"
        with open(log, "w") as errors:
            daemon = subprocess.Popen(
                [
                    sys.executable,
                    "-X",
                    "importtime",
                    "-m",
                    "tillsyn.cli",
                    "daemon",
                    "--state-dir",
                    state,
                ],
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        process = psutil.Process(daemon.pid)
        samples: list[float] = []
        started = time.monotonic()
        first_cpu = None
        try:
            while time.monotonic() - started < minutes * 60:
                with process.oneshot():
                    samples.append(process.memory_info().rss / 2**20)
                    cpu = process.cpu_times()
                if first_cpu is None and time.monotonic() - started > 30:
                    first_cpu = (cpu.user + cpu.system, time.monotonic())
                time.sleep(2)
            cpu = process.cpu_times()
            end_cpu = (cpu.user + cpu.system, time.monotonic())
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
        imported = log.read_text()
    heavy = [m for m in HEAVY if f"| {m}\n" in imported]
    idle_share = (
        (end_cpu[0] - first_cpu[0]) / (end_cpu[1] - first_cpu[1]) if first_cpu else float("nan")
    )
    print(f"daemon over {minutes:g} min, host checks only, sampled every 2 s:")
    print(
        f"  RSS: peak {max(samples):.1f} MiB, median {statistics.median(samples):.1f} MiB, "
        f"last {samples[-1]:.1f} MiB (target <= 40 MB)"
    )
    print(f"  CPU after the first pass: {idle_share:.2%} of one core on average")
    print(f"  heavy SDKs imported: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
