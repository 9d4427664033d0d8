"""Replaying recorded real command outputs through the collector's runner interface.

A recording is a JSON file with ``provenance``, ``argv``, ``returncode``, ``stdout``
and ``stderr`` (see ``tests/fixtures/commands/``). The runner answers a call whose argv
equals a recording's; any other call means the collector ran something nobody
recorded, which fails the test loudly instead of being guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tillsyn.collectors.commands import (
    CommandNotFoundError,
    CommandResult,
    CommandTimeoutError,
)


class UnrecordedCommandError(AssertionError):
    pass


class RecordedRunner:
    def __init__(
        self,
        recordings: Iterable[dict[str, object]] = (),
        missing: Iterable[str] = (),
        hanging: Iterable[str] = (),
    ) -> None:
        self._by_argv: dict[tuple[str, ...], dict[str, object]] = {
            tuple(r["argv"]): r
            for r in recordings  # type: ignore[arg-type]
        }
        self.missing = set(missing)  # programs that are "not installed"
        self.hanging = set(hanging)  # programs that "never finish"
        self.calls: list[tuple[tuple[str, ...], dict[str, str]]] = []

    @classmethod
    def from_files(cls, paths: Iterable[Path], **kwargs: Iterable[str]) -> RecordedRunner:
        return cls([json.loads(Path(p).read_text()) for p in paths], **kwargs)

    def run(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> CommandResult:
        self.calls.append((tuple(argv), dict(env or {})))
        if argv[0] in self.missing:
            raise CommandNotFoundError(f"{argv[0]} is not installed or not on PATH")
        if argv[0] in self.hanging:
            raise CommandTimeoutError(f"{argv[0]} did not finish within {timeout:g}s")
        recording = self._by_argv.get(tuple(argv))
        if recording is None:
            raise UnrecordedCommandError(f"no recording for {list(argv)}")
        return CommandResult(
            tuple(argv),
            int(recording["returncode"]),  # type: ignore[call-overload]
            str(recording["stdout"]),
            str(recording["stderr"]),
        )
