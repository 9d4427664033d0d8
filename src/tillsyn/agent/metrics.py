"""The agent's own Prometheus metrics, from the records of each run.

Labels stay low-cardinality (check, family, status, backup source names the operator
chose): no host, user, account or path becomes a label. The registry is built per
agent (never the global one), served on /metrics by the daemon and/or written as a
node_exporter textfile atomically.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

STATUSES = ("pass", "fail", "error", "skip", "not_applicable")


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.results = Gauge(
            "tillsyn_check_results",
            "Resources per status in the check's latest run",
            ("check", "family", "status"),
            registry=self.registry,
        )
        self.duration = Gauge(
            "tillsyn_check_duration_seconds",
            "Wall time of the check's latest run",
            ("check",),
            registry=self.registry,
        )
        self.last_run = Gauge(
            "tillsyn_check_last_run_timestamp_seconds",
            "When the check last ran (Unix time)",
            ("check",),
            registry=self.registry,
        )
        self.run_duration = Gauge(
            "tillsyn_run_duration_seconds", "Wall time of the latest run", registry=self.registry
        )
        self.outbox = Gauge(
            "tillsyn_outbox_records",
            "Evidence records not yet delivered to the store",
            registry=self.registry,
        )
        self.pending_updates = Gauge(
            "tillsyn_patch_pending_security_updates",
            "Pending security updates",
            registry=self.registry,
        )
        self.oldest_pending = Gauge(
            "tillsyn_patch_oldest_pending_age_seconds",
            "Age of the oldest pending security update",
            registry=self.registry,
        )
        self.backup_age = Gauge(
            "tillsyn_backup_newest_age_seconds",
            "Age of the newest backup",
            ("source",),
            registry=self.registry,
        )

    def observe_run(self, records: list[dict[str, Any]], run_seconds: float, at: float) -> None:
        """Update from one run's result records (checks not in this run keep their values)."""
        self.run_duration.set(run_seconds)
        by_check: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            if record.get("kind") == "result":
                by_check.setdefault(record["check"]["id"], []).append(record)
        for check_id, rows in by_check.items():
            family = rows[0]["check"].get("family", "")
            counts = Counter(r["status"] for r in rows)
            for status in STATUSES:
                self.results.labels(check_id, family, status).set(counts.get(status, 0))
            self.duration.labels(check_id).set(max(r.get("duration_seconds", 0) for r in rows))
            self.last_run.labels(check_id).set(at)
        self._domain(by_check)

    def _domain(self, by_check: dict[str, list[dict[str, Any]]]) -> None:
        """Figures some checks carry in their evidence, as gauges for dashboards."""
        for record in by_check.get("host.backup.recency", []):
            observed = record.get("observed") or {}
            if record["resource"]["type"] == "backup_source" and "age_hours" in observed:
                self.backup_age.labels(record["resource"]["id"]).set(
                    float(observed["age_hours"]) * 3600
                )
        patches = [
            r
            for r in by_check.get("host.patch.security_updates", [])
            if r["resource"]["type"] == "package"
        ]
        if "host.patch.security_updates" in by_check:
            self.pending_updates.set(len(patches))
            ages = [float((r.get("observed") or {}).get("age_seconds", 0)) for r in patches]
            self.oldest_pending.set(max(ages, default=0))
