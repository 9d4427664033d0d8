"""Fleet KPIs for Prometheus, computed by the store at scrape time (one place to scrape).

Laptops are not scraped: agents push, and the store aggregates (the kube-state-metrics
pattern). No host, user, account or ARN becomes a label; per-agent last-seen series
are exposed only while the fleet is small enough (``per_agent_limit``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from tillsyn.agent.catalog import Catalog
from tillsyn.store import queries


class FleetCollector(Collector):
    def __init__(
        self,
        engine: Engine,
        catalog: Catalog,
        per_agent_limit: int = 500,
        silent_after: timedelta = timedelta(days=2),
    ) -> None:
        self.engine, self.catalog = engine, catalog
        self.per_agent_limit = per_agent_limit
        self.silent_after = silent_after

    def collect(self) -> Iterator[Metric]:
        with self.engine.connect() as connection:
            subjects = queries.latest_per_subject(connection)
            agents = queries.list_agents(connection)
        controls = GaugeMetricFamily(
            "tillsyn_control_compliance_ratio",
            "Share of a control's evidenced subjects that "
            "are a fresh pass (fail, error and stale count against it)",
            labels=("framework", "control"),
        )
        by_control: dict[str, list[dict[str, Any]]] = defaultdict(list)
        families: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for subject in subjects:
            for control in subject["controls"]:
                if control not in self.catalog:
                    continue
                by_control[control].append(subject)
                for parent in self.catalog.ancestors(control):
                    by_control[parent].append(subject)
            family = subject["check"].split(".")[1] if subject["check"].count(".") == 2 else ""
            families[(family, subject["target"].get("kind", ""))].append(subject)
        for control_id, found in sorted(by_control.items()):
            ratio = queries.compliance(found)["ratio"]
            if ratio is not None:
                framework, _, ref = control_id.partition("/")
                controls.add_metric((framework, ref), ratio)
        yield controls

        family_metric = GaugeMetricFamily(
            "tillsyn_family_compliance_ratio",
            "Share of a check family's subjects that are a fresh pass",
            labels=("family", "target_kind"),
        )
        for (family, kind), found in sorted(families.items()):
            ratio = queries.compliance(found)["ratio"]
            if ratio is not None:
                family_metric.add_metric((family, kind), ratio)
        yield family_metric

        now = datetime.now(UTC)
        states = {"active": 0, "silent": 0, "never_seen": 0}
        last_seen = GaugeMetricFamily(
            "tillsyn_agent_last_seen_timestamp_seconds",
            "When each agent last delivered evidence",
            labels=("agent_id",),
        )
        newest = 0.0
        for agent in agents:
            if not agent["last_seen_at"]:
                states["never_seen"] += 1
                continue
            seen = datetime.fromisoformat(agent["last_seen_at"])
            states["active" if now - seen <= self.silent_after else "silent"] += 1
            newest = max(newest, seen.timestamp())
            if len(agents) <= self.per_agent_limit:
                last_seen.add_metric((agent["agent_id"],), seen.timestamp())
        if len(agents) > self.per_agent_limit:
            last_seen = GaugeMetricFamily(
                "tillsyn_agent_last_seen_timestamp_seconds",
                "Newest delivery of any agent (fleet too large to list agents)",
                value=newest,
            )
        yield last_seen
        agents_metric = GaugeMetricFamily(
            "tillsyn_agents", "Enrolled agents by state", labels=("state",)
        )
        for state, count in states.items():
            agents_metric.add_metric((state,), count)
        yield agents_metric


def build_registry(engine: Engine, catalog: Catalog) -> tuple[CollectorRegistry, Counter]:
    """The store's registry and the ingest counter the API increments."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(engine, catalog))
    ingested = Counter(
        "tillsyn_evidence_ingested",
        "Evidence records stored by this store process",
        registry=registry,
    )
    return registry, ingested
