"""macOS: the application firewall (ALF) as ``socketfilterfw`` reports it.

A module of its own because nothing of the Linux reader (kernel rulesets, chains) applies:
macOS filters incoming connections per application, and System Settings > Network >
Firewall switches the application firewall, not pf. Since macOS 15 its settings are no
longer kept in ``/Library/Preferences/com.apple.alf.plist`` (macOS 15 release notes,
osquery's ``alf`` table went empty, fleetdm/fleet#21802), so ``socketfilterfw`` is the one
source. Its ``--get*`` answers need no root. Each is one line, in wordings that changed
between releases; both generations are read, anything else is a parse error:

- ``--getglobalstate``: ``Firewall is enabled. (State = 1)``, ``Firewall is disabled.
  (State = 0)``; state 2 is "block all" and reads ``Firewall is blocking all
  non-essential incoming connections. (State = 2)`` (or ``Firewall is enabled.
  (State = 2)`` on older releases);
- ``--getblockall``: ``Firewall has block all state set to enabled.``/``disabled.``
  (current), ``Block all ENABLED!``/``Block all DISABLED!`` (older);
- ``--getstealthmode``: ``Firewall stealth mode is on``/``off`` (macOS 15 and later, the
  wording Wazuh's CIS macOS 15 policy matches), ``Stealth mode enabled``/``disabled``
  (older; the wording NIST's macOS Security Compliance Project grepped for).

The firewall protects when its global state is 1 or 2. Stealth mode (no answer to pings
and probes of closed ports) is kept as evidence and named when off, but does not fail:
it lets no connection in that the firewall would refuse, and the CIS macOS benchmark
makes it a recommendation of its own (2.2.2) beside "firewall enabled" (2.2.1). pf is not
read: ``pfctl -s info`` needs root, and pf is not what the firewall switch controls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError

FACT = "host.endpoint.application_firewall"

SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"
GLOBAL_STATE = [SOCKETFILTERFW, "--getglobalstate"]
BLOCK_ALL = [SOCKETFILTERFW, "--getblockall"]
STEALTH_MODE = [SOCKETFILTERFW, "--getstealthmode"]

_STATE = re.compile(
    r"^Firewall is (?P<said>enabled|disabled|blocking all non-essential"
    r"(?: incoming)? connections)\.? \(State = (?P<state>\d+)\)$"
)
#: What each global state may be called: anything else contradicts itself.
_STATE_WORDS = {
    0: ("disabled",),
    1: ("enabled",),
    2: ("enabled", "blocking all non-essential incoming connections"),
}
_BLOCK_ALL = {
    "Firewall has block all state set to enabled.": True,
    "Firewall has block all state set to disabled.": False,
    "Block all ENABLED!": True,
    "Block all DISABLED!": False,
}
_STEALTH = {
    "Firewall stealth mode is on": True,
    "Firewall stealth mode is off": False,
    "Stealth mode enabled": True,
    "Stealth mode disabled": False,
}


@dataclass(frozen=True)
class ApplicationFirewall:
    """The application firewall's three switches, and the lines they were read from."""

    state: int  # 0 off, 1 on, 2 on and blocking all but essential services
    block_all: bool
    stealth: bool
    said: tuple[str, ...]  # the three answers as printed

    @property
    def enabled(self) -> bool:
        return self.state in (1, 2)

    @property
    def blocks_all(self) -> bool:
        return self.state == 2 or self.block_all

    def observed(self) -> dict[str, object]:
        return {
            "global_state": self.state,
            "block_all": self.blocks_all,
            "stealth_mode": self.stealth,
            "socketfilterfw": list(self.said),
        }

    def describe(self) -> str:
        """How the firewall stands, in words, with stealth mode always named."""
        stealth = "stealth mode is on" if self.stealth else "stealth mode is off"
        if not self.enabled:
            stored = [
                name
                for name, on in (("block all", self.block_all), ("stealth mode", self.stealth))
                if on
            ]
            note = (
                f" ({' and '.join(stored)} set, but only in force while the firewall is on)"
                if stored
                else ""
            )
            off = "the application firewall is off (State = 0)"
            return f"{off}: incoming connections are not filtered{note}"
        if self.blocks_all:
            what = "on and blocks all incoming connections but essential services"
        else:
            what = "on: incoming connections reach only apps allowed to receive them"
        if not self.stealth:
            stealth += " (it answers pings and probes; CIS macOS 2.2.2 asks for it separately)"
        return f"the application firewall is {what} (State = {self.state}); {stealth}"


def _one_line(stdout: str, stderr: str, call: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        why = "no answer" if not lines else "expected one line"
        raise FactParseError(FACT, call, why, stdout.strip() or stderr)
    return lines[0]


def parse_global_state(stdout: str, stderr: str, call: str) -> tuple[int, str]:
    """``--getglobalstate``: the state number (0, 1, 2) and the line it came from."""
    line = _one_line(stdout, stderr, call)
    match = _STATE.match(line)
    if match is None:
        raise FactParseError(FACT, call, "not socketfilterfw's English global state", line)
    state = int(match["state"])
    words = match["said"].replace("non-essential connections", "non-essential incoming connections")
    if state not in _STATE_WORDS:
        raise FactParseError(FACT, call, f"unknown global state {state}", line)
    if words not in _STATE_WORDS[state]:
        raise FactParseError(FACT, call, "the state number contradicts the sentence", line)
    return state, line


def parse_block_all(stdout: str, stderr: str, call: str) -> tuple[bool, str]:
    """``--getblockall``: whether "block all incoming connections" is set."""
    line = _one_line(stdout, stderr, call)
    if line not in _BLOCK_ALL:
        raise FactParseError(FACT, call, "not socketfilterfw's English block-all answer", line)
    return _BLOCK_ALL[line], line


def parse_stealth_mode(stdout: str, stderr: str, call: str) -> tuple[bool, str]:
    """``--getstealthmode``: whether stealth mode is on."""
    line = _one_line(stdout, stderr, call)
    if line not in _STEALTH:
        raise FactParseError(FACT, call, "not socketfilterfw's English stealth-mode answer", line)
    return _STEALTH[line], line
