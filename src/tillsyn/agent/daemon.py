"""``tillsyn daemon``: every check on its own interval, with jitter, pushing as it goes.

One loop, one thread: it runs the checks that are due (a run per tick, sealed like any
run; the runner bounds each check, so a hung check cannot block the others past its
timeout), pushes the outbox when enrolled (with backoff across ticks when the store is
down), refreshes its metrics and its status file, then sleeps until the next check is
due or a signal arrives. SIGHUP reloads the configuration: a bad one is reported and
the old one kept. SIGTERM and SIGINT stop it after the current tick.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from tillsyn.agent import config as config_module
from tillsyn.agent import identity as identity_module
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.config import Config, ConfigError
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.agent.registry import Registry
from tillsyn.agent.registry import load as load_registry
from tillsyn.agent.session import facts_factory, run_once
from tillsyn.agent.storelink import StoreLink, StoreLinkError
from tillsyn.collectors.memory import MEMORY_FILE, FactMemory

STATUS_FILE = "status.json"
JITTER = 0.1  # each interval is stretched or shrunk by up to 10 %, so fleets do not align
log = logging.getLogger("tillsyn.daemon")


@dataclass
class _State:
    due: dict[str, float] = field(default_factory=dict)  # check id -> monotonic due time
    last_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_push_ok: str | None = None
    last_push_error: str | None = None
    push_failures: int = 0
    next_push: float = 0.0


class Daemon:
    def __init__(
        self,
        config_path: Path | None,
        state_dir: Path | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.config_path = config_path
        self.catalog = catalog or Catalog.load()
        self.registry: Registry = load_registry(self.catalog)
        self.config: Config = config_module.load(self.registry, config_path)
        self.state_dir = state_dir or self.config.state_dir()
        self.identity = identity_module.load_or_create(self.state_dir)
        # Metrics (and prometheus_client) only when the configuration asks for them;
        # like the HTTP client, they are not loaded on an agent that does not use them.
        self.metrics: Any = None
        if self.config.agent.metrics_listen or self.config.agent.metrics_textfile:
            from tillsyn.agent.metrics import AgentMetrics

            self.metrics = AgentMetrics()
        self.state = _State()
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.started_at = datetime.now(UTC).isoformat()

    # -- signals ----------------------------------------------------------------------

    def install_signals(self) -> None:
        def on_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping after the current tick", signum)
            self.stop.set()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.reload.set()
            self.stop.set()  # wake the sleep; the loop clears it again when reloading

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _reload(self) -> None:
        self.reload.clear()
        self.stop.clear()
        try:
            new = config_module.load(self.registry, self.config_path)
        except ConfigError as exc:
            log.error(
                "configuration NOT reloaded, the old one stays in force:\n  %s",
                "\n  ".join(exc.problems),
            )
            return
        self.config = new
        self.state.due.clear()  # new intervals apply from now
        log.warning("configuration reloaded from %s", self.config_path or "the defaults")

    # -- the loop ---------------------------------------------------------------------

    def _interval(self, check_id: str) -> float:
        base = self.config.checks[check_id].interval
        return base * (1 + random.uniform(-JITTER, JITTER))  # noqa: S311 - jitter

    def due_checks(self, now: float) -> list[str]:
        enabled = [c for c, s in self.config.checks.items() if s.enabled]
        for check_id in enabled:
            # First run: spread over a short window instead of all at once.
            self.state.due.setdefault(check_id, now + random.uniform(0, 5))  # noqa: S311
        return sorted(c for c in enabled if self.state.due[c] <= now)

    def tick(self) -> None:
        now = time.monotonic()
        due = self.due_checks(now)
        if due:
            self._run(due)
            for check_id in due:
                self.state.due[check_id] = time.monotonic() + self._interval(check_id)
        self._push()
        self._write_status()
        _return_memory()

    def _run(self, check_ids: list[str]) -> None:
        started = time.monotonic()
        store = LocalEvidence(self.state_dir)
        memory = FactMemory(self.state_dir / MEMORY_FILE)
        try:
            summary = run_once(
                self.registry,
                self.config,
                self.identity,
                store,
                facts_factory(self.config, memory),
                selected=[self.registry.checks[c] for c in check_ids],
                include_problems=False,
            )
        finally:
            store.close()
            memory.close()
        elapsed = time.monotonic() - started
        if self.metrics is not None:
            self.metrics.observe_run(summary.records, elapsed, time.time())
        for record in summary.records:
            check_id = record["check"]["id"]
            entry = self.state.last_runs.setdefault(check_id, {"statuses": {}})
            entry["at"] = record["observed_at"]
            entry["statuses"] = {}
        for record in summary.records:
            statuses = self.state.last_runs[record["check"]["id"]]["statuses"]
            statuses[record["status"]] = statuses.get(record["status"], 0) + 1
        if summary.store_error:
            log.error("evidence not stored: %s", summary.store_error)

    def _push(self) -> None:
        if time.monotonic() < self.state.next_push:
            return
        try:
            link = StoreLink.load(self.state_dir)
        except StoreLinkError:
            return  # not enrolled: the evidence stays local
        store = LocalEvidence(self.state_dir)
        try:
            from tillsyn.agent.storeclient import push  # the HTTP stack, only when enrolled

            report = push(store, link, batch_size=self.config.agent.push_batch, attempts=1)
            if self.metrics is not None:
                self.metrics.outbox.set(report.remaining)
            if report.remaining > self.config.agent.outbox_warn_records:
                log.warning(
                    "%d records wait in the outbox (warning threshold %d); nothing is dropped",
                    report.remaining,
                    self.config.agent.outbox_warn_records,
                )
        finally:
            store.close()
        if report.error:
            self.state.push_failures += 1
            self.state.last_push_error = report.error
            delay = min(3600.0, 5.0 * 2 ** min(self.state.push_failures, 10))
            self.state.next_push = time.monotonic() + delay * random.uniform(0.5, 1.5)  # noqa: S311
            log.warning("push failed (%s); next attempt in about %.0f s", report.error, delay)
        else:
            self.state.push_failures = 0
            self.state.last_push_error = None
            self.state.last_push_ok = datetime.now(UTC).isoformat()

    def _write_status(self) -> None:
        try:
            link_url: str | None = StoreLink.load(self.state_dir).url
        except StoreLinkError:
            link_url = None
        store = LocalEvidence(self.state_dir)
        try:
            outbox = store.undelivered(link_url) if link_url else store.count()
        finally:
            store.close()
        status = {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "updated_at": datetime.now(UTC).isoformat(),
            "store": link_url,
            "outbox_records": outbox,
            "last_push_ok": self.state.last_push_ok,
            "last_push_error": self.state.last_push_error,
            "checks": self.state.last_runs,
        }
        path = self.state_dir / STATUS_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
        temporary.replace(path)
        if self.config.agent.metrics_textfile and self.metrics is not None:
            from prometheus_client import write_to_textfile

            write_to_textfile(self.config.agent.metrics_textfile, self.metrics.registry)

    def serve_metrics(self) -> None:
        listen = self.config.agent.metrics_listen
        if not listen or self.metrics is None:
            return
        from prometheus_client import start_http_server

        host, _, port = listen.rpartition(":")
        start_http_server(int(port), addr=host or "127.0.0.1", registry=self.metrics.registry)

    def run_forever(self) -> None:
        self.serve_metrics()
        while True:
            self.tick()
            if self.reload.is_set():
                self._reload()
                continue
            if self.stop.is_set():
                break
            now = time.monotonic()
            wake = min(self.state.due.values(), default=now + 60)
            if self.state.next_push > now:
                wake = min(wake, self.state.next_push)
            self.stop.wait(timeout=max(0.5, wake - now))
            if self.reload.is_set():
                self._reload()
            elif self.stop.is_set():
                break
        log.info("stopped")


def _return_memory() -> None:
    """Give the memory a tick's parsing used back to the OS before idling for an hour.

    CPython keeps freed heap in the process; on glibc, malloc_trim returns it, which
    keeps an idle agent's RSS near its import footprint (bench/daemon_footprint.py).
    """
    gc.collect()
    if sys.platform.startswith("linux"):
        # Not glibc (musl, for one): nothing to give back that way.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data
