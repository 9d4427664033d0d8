"""The host collector: every fact a host check can ask for, read once per run.

Each fact family lives in its own module as a mixin over :class:`HostBase`;
:class:`HostFacts` puts them together. A family's parsing lives with its facts,
once, and checks only ask.
"""

from __future__ import annotations

from tillsyn.collectors.host._base import HostIdentity
from tillsyn.collectors.host.access import AccessFacts
from tillsyn.collectors.host.backup import BackupFacts
from tillsyn.collectors.host.endpoint import EndpointFacts
from tillsyn.collectors.host.logs import LogFacts
from tillsyn.collectors.host.patching import PatchFacts
from tillsyn.collectors.host.storage import StorageFacts


class HostFacts(StorageFacts, BackupFacts, PatchFacts, LogFacts, AccessFacts, EndpointFacts):
    """Facts about the host this agent runs on (or a recorded one, in tests)."""


__all__ = ["HostFacts", "HostIdentity"]
