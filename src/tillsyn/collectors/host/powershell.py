"""How the agent runs PowerShell scripts of its own on Windows (see :mod:`.access_windows`).

A module of its own, with no Windows collector imports, so that a module which builds a
script but is also used on Linux (:mod:`.access_ssh_platforms`) need not load them.
"""

from __future__ import annotations

from typing import Any

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.parsing import load_json

#: 64-bit Windows PowerShell 5.1 by its absolute path (never whatever PATH finds first).
POWERSHELL_EXE = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
#: First statements of every access script: UTF-8 output, no progress records on stderr
#: (PowerShell writes them there when redirected), stop at the first error.
PRELUDE = (
    "[Console]::OutputEncoding = [Text.UTF8Encoding]::new($false); "
    "$ProgressPreference = 'SilentlyContinue'; "
    "$ErrorActionPreference = 'Stop'; "
)


def ascii_json(expression: str, depth: int = 4) -> str:
    """The statements that print ``expression`` as compact JSON with every non-ASCII
    character escaped (``\\u00f6``), so the output reads the same in any code page."""
    return (
        f"$json = ConvertTo-Json -Depth {depth} -Compress -InputObject ({expression}); "
        "[regex]::Replace($json, '[^\\x00-\\x7F]', "
        "{ param($m) '\\u{0:x4}' -f [int][char]$m.Value })"
    )


def powershell(script: str) -> list[str]:
    """The argv that runs one of our scripts."""
    return [POWERSHELL_EXE, "-NoProfile", "-NonInteractive", "-Command", script]


def shown(what: str) -> str:
    """How a script's call appears in messages: named briefly, not by its whole text."""
    return f"powershell.exe -NoProfile -NonInteractive -Command <{what}>"


def script_json(stdout: str, stderr: str, fact: str, call: str, reported: str) -> Any:
    """What one of our scripts printed, as JSON. Our scripts print exactly one JSON value
    and nothing on stderr, so anything on stderr (``reported`` says whose words they are),
    no output at all, or output that is not JSON is a FactParseError, never a partial answer.
    """
    if stderr.strip():
        raise FactParseError(fact, call, reported, stderr)
    text = stdout.strip()
    if not text:
        raise FactParseError(fact, call, "no output")
    return load_json(fact, call, text)
