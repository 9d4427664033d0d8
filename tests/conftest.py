"""Shared fixtures: the real catalog and registry, recorded hosts and commands, a pinned clock.

Every test builds its own collectors and stores; nothing here is global state.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.recorded import RecordedRunner
from tillsyn.agent import registry as registry_module
from tillsyn.agent.catalog import Catalog
from tillsyn.agent.registry import Registry
from tillsyn.collectors.host import HostFacts

FIXTURES = Path(__file__).parent / "fixtures"
HOSTS = FIXTURES / "hosts"
COMMANDS = FIXTURES / "commands"
#: The clock every recorded case runs at, so ages in expectations never drift.
PINNED_NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture(scope="session")
def registry(catalog: Catalog) -> Registry:
    return registry_module.load(catalog)


def recorded_host(
    tree: str, *recordings: str, env: dict[str, str] | None = None, now: datetime = PINNED_NOW
) -> HostFacts:
    """A host collector reading a recorded filesystem tree and recorded command outputs."""
    return HostFacts(
        root=HOSTS / tree,
        runner=RecordedRunner.from_files(COMMANDS / r for r in recordings),
        env=env or {},
        platform="linux",
        now=now,
    )
