"""The host collector (this machine: procfs, sysfs, package managers, OS tools)."""

from tillsyn.collectors.host.facts import HostFacts, HostIdentity

__all__ = ["HostFacts", "HostIdentity"]
