"""The host collector is one class made of fact-family mixins: no family may silently
override another's method (Python's MRO would pick one without a word)."""

from __future__ import annotations

from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.facts import HostFacts


def test_no_name_is_defined_by_two_fact_families() -> None:
    owners: dict[str, list[str]] = {}
    for family in HostFacts.__mro__:
        if family in (HostFacts, HostBase, object) or not issubclass(family, HostBase):
            continue
        for name in vars(family):
            if not name.startswith("__"):
                owners.setdefault(name, []).append(family.__name__)
    assert {n: f for n, f in owners.items() if len(f) > 1} == {}
    assert len([f for f in HostFacts.__mro__ if issubclass(f, HostBase)]) >= 8
