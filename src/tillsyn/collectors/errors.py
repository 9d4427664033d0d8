"""The one exception hierarchy collectors raise when they could not read a fact.

::

    FactError                    could not read a fact (carries fact, call, reason)
     ├── FactUnavailable         the source is absent: tool not installed, file missing,
     │                           platform not supported by this collector
     ├── FactPermissionDenied    the source exists but this user may not read it
     ├── FactTimeout             the call did not finish within its timeout
     ├── FactCommandFailed       a command exited non-zero (exit code and stderr kept)
     └── FactParseError          the output was not in the expected format (snippet kept)

The runner turns any of these into a result with status ``error`` naming the fact and
the reason: a fact that could not be read is never defaulted to "off" or "none".
"""

from __future__ import annotations

from collections.abc import Sequence


def _snippet(text: str, limit: int = 200) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"


class FactError(Exception):
    """A fact could not be read. ``call`` is the command or file looked at."""

    def __init__(self, fact: str, call: str, reason: str) -> None:
        self.fact = fact
        self.call = call
        self.reason = reason
        super().__init__(f"{fact}: {reason} ({call})")


class FactUnavailable(FactError):
    """The source of the fact does not exist here."""


class FactMissing(FactUnavailable):
    """The file the fact is read from does not exist (as opposed to unreadable or odd):
    for a few facts the only failure that may mean "not set up"."""


class FactPermissionDenied(FactError):
    """The source exists but could not be read with this process's privileges."""


class FactTimeout(FactError):
    """Reading the fact took longer than its timeout."""


class FactCommandFailed(FactError):
    """A command exited with a non-zero status."""

    def __init__(self, fact: str, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        detail = _snippet(stderr) or "no output on stderr"
        super().__init__(fact, " ".join(argv), f"exited with status {returncode}: {detail}")


class FactParseError(FactError):
    """The output was not in the format the parser knows; ``snippet`` shows where."""

    def __init__(self, fact: str, call: str, reason: str, snippet: str = "") -> None:
        self.snippet = _snippet(snippet, 120)
        full = f"{reason}: {self.snippet!r}" if self.snippet else reason
        super().__init__(fact, call, full)
