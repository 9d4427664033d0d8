"""Running external commands: always an argument list, a timeout and the C locale.

Collectors take a :class:`CommandRunner` so tests can hand them recorded real outputs
instead of a live system; nothing is monkeypatched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

#: How command output is decoded. Linux and macOS tools run under LC_ALL=C and print
#: ASCII or UTF-8. Windows console tools (reg, w32tm, wevtutil, manage-bde) write
#: redirected output in the OEM code page, not the ANSI one Python would assume, so a
#: name like "Björn" would be garbled; our PowerShell scripts print escaped ASCII anyway.
OUTPUT_ENCODING = "oem" if sys.platform == "win32" else "utf-8"


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float = 0.0


class CommandNotFoundError(Exception):
    """The program is not installed (or not on PATH)."""


class CommandTimeoutError(Exception):
    """The program did not finish in time and was killed."""


class CommandPermissionError(Exception):
    """The program exists but may not be executed by this user."""


class CommandRunner(Protocol):
    def run(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> CommandResult:
        """Run ``argv``; raise the errors above for a missing tool, timeout or denial."""
        ...


class SubprocessRunner:
    """Runs commands for real, with ``LC_ALL=C`` so their output parses the same everywhere."""

    def run(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> CommandResult:
        environment = dict(os.environ)
        if env:
            environment.update(env)
        environment["LC_ALL"] = "C"
        environment["LANG"] = "C"
        started = time.monotonic()
        try:
            completed = subprocess.run(
                list(argv),
                capture_output=True,
                timeout=timeout,
                env=environment,
                stdin=subprocess.DEVNULL,
                check=False,
                text=True,
                encoding=OUTPUT_ENCODING,
                errors="replace",
            )
        except FileNotFoundError as exc:
            raise CommandNotFoundError(f"{argv[0]} is not installed or not on PATH") from exc
        except PermissionError as exc:
            raise CommandPermissionError(f"{argv[0]} may not be executed: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeoutError(f"{argv[0]} did not finish within {timeout:g}s") from exc
        return CommandResult(
            tuple(argv),
            completed.returncode,
            completed.stdout,
            completed.stderr,
            time.monotonic() - started,
        )
