"""Idle footprint of `tillsyn daemon` with the host checks only: RSS and CPU over time.

Starts the daemon on its default intervals (the first pass runs every check, then it
idles until the next one is due), samples its RSS and CPU time with psutil, and checks
which modules it imported (boto3 and kubernetes must never load for a host-only agent).
Two daemons run side by side, each with its own state: one as
deploy/systemd/tillsyn-agent.service starts it (PYTHONOPTIMIZE=2, no docstrings in
memory) and one plain, so both figures come from the same 10 minutes.
Usage: ``.venv/bin/python bench/daemon_footprint.py [minutes]`` (default 10).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HEAVY = ("boto3", "botocore", "kubernetes")
VARIANTS = {"as the systemd unit runs it (PYTHONOPTIMIZE=2)": "2", "plain python": "0"}


@dataclass
class Watched:
    """One daemon under observation and what was sampled of it."""

    name: str
    daemon: subprocess.Popen[bytes]
    log: Path
    process: psutil.Process
    rss: list[float] = field(default_factory=list)
    first_cpu: tuple[float, float] | None = None
    last_cpu: tuple[float, float] = (0.0, 0.0)

    def sample(self, elapsed: float) -> None:
        with self.process.oneshot():
            self.rss.append(self.process.memory_info().rss / 2**20)
            cpu = self.process.cpu_times()
        moment = (cpu.user + cpu.system, time.monotonic())
        if self.first_cpu is None and elapsed > 30:
            self.first_cpu = moment
        self.last_cpu = moment

    def report(self, minutes: float) -> None:
        first = self.first_cpu
        idle = (self.last_cpu[0] - first[0]) / (self.last_cpu[1] - first[1]) if first else 0.0
        heavy = [m for m in HEAVY if f"| {m}\n" in self.log.read_text()]
        print(f"{self.name}:")
        print(
            f"  RSS: peak {max(self.rss):.1f} MiB, median {statistics.median(self.rss):.1f} MiB, "
            f"last {self.rss[-1]:.1f} MiB (target <= 40 MB)"
        )
        print(f"  CPU after the first pass: {idle:.2%} of one core on average")
        print(f"  heavy SDKs imported: {', '.join(heavy) or 'none'}")


def _start(name: str, optimize: str, state: Path) -> Watched:
    log = state / "importtime.log"
    argv = [sys.executable, "-X", "importtime", "-m", "tillsyn.cli", "daemon"]
    with open(log, "w") as errors:
        daemon = subprocess.Popen(
            [*argv, "--state-dir", str(state)],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env={**os.environ, "PYTHONOPTIMIZE": optimize},
        )
    return Watched(name, daemon, log, psutil.Process(daemon.pid))


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    with tempfile.TemporaryDirectory() as top:
        watched = []
        for number, (name, optimize) in enumerate(VARIANTS.items()):
            state = Path(top) / f"state{number}"
            state.mkdir()
            watched.append(_start(name, optimize, state))
        started = time.monotonic()
        try:
            while time.monotonic() - started < minutes * 60:
                for one in watched:
                    one.sample(time.monotonic() - started)
                time.sleep(2)
        finally:
            for one in watched:
                one.daemon.terminate()
                one.daemon.wait(timeout=60)
        print(f"daemon over {minutes:g} min, host checks only, sampled every 2 s")
        for one in watched:
            one.report(minutes)


if __name__ == "__main__":
    main()
