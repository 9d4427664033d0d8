"""Plumbing every host fact family shares: roots, commands, files, memory, the clock.

Everything the collector touches is injectable so tests can point it at recorded
real trees and command outputs: the filesystem ``root`` (procfs, sysfs, /dev, /etc),
the command ``runner``, the environment, the platform name, the run's clock and the
agent's memory between runs.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tillsyn.collectors._facts import HasFactCache, fact
from tillsyn.collectors.commands import (
    CommandNotFoundError,
    CommandPermissionError,
    CommandResult,
    CommandRunner,
    CommandTimeoutError,
    SubprocessRunner,
)
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactMissing,
    FactPermissionDenied,
    FactTimeout,
    FactUnavailable,
)
from tillsyn.collectors.memory import FactMemory

# The Windows path helpers are imported where used, so a Linux agent never loads them.

#: Platform names as ``sys.platform`` spells them.
LINUX, MACOS, WINDOWS = "linux", "darwin", "win32"


@dataclass(frozen=True)
class HostIdentity:
    """How the evidence names this host: a stable machine id and the hostname."""

    machine_id: str
    hostname: str


@dataclass(frozen=True)
class Cached:
    """A command's answer and when it was produced (earlier than now when reused)."""

    result: CommandResult
    collected_at: datetime
    reused: bool


class HostBase(HasFactCache):
    """The shared base of the host fact families (see :class:`HostFacts`)."""

    kind = "host"

    def __init__(
        self,
        *,
        root: str | Path = "/",
        runner: CommandRunner | None = None,
        env: Mapping[str, str] | None = None,
        platform: str | None = None,
        now: datetime | None = None,
        command_timeout: float = 30.0,
        memory: FactMemory | None = None,
        command_cache_ttl: float = 0.0,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.env = dict(os.environ if env is None else env)
        self.platform = platform or sys.platform
        self.now = now or datetime.now(UTC)
        self.command_timeout = command_timeout
        self.memory = memory or FactMemory()
        self.command_cache_ttl = command_cache_ttl

    # -- files ------------------------------------------------------------------------

    def path(self, path: str) -> Path:
        """``path`` (absolute, as on the host) under this collector's root; on Windows a
        drive-letter path (``C:\\ProgramData\\...``) per :mod:`.windows_paths`."""
        if self.platform == WINDOWS:
            from tillsyn.collectors.host import windows_paths

            if windows_paths.is_absolute(path):
                return windows_paths.host_file(self.root, path)
        return self.root / path.lstrip("/")

    def read_text(self, fact_name: str, path: str) -> str:
        """A file's text; a missing or unreadable file is a FactError, never empty text."""
        target = self.path(path)
        try:
            return target.read_text(encoding="utf-8", errors="replace")
        except PermissionError as exc:
            raise FactPermissionDenied(fact_name, path, "permission denied") from exc
        except FileNotFoundError as exc:
            raise FactMissing(fact_name, path, "does not exist") from exc
        except OSError as exc:
            raise FactUnavailable(fact_name, path, exc.strerror or str(exc)) from exc

    # -- commands ---------------------------------------------------------------------

    def command(
        self,
        fact_name: str,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        ok_codes: tuple[int, ...] = (0,),
        shown: str | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run a command for a fact; a missing tool, timeout or bad exit becomes a FactError.

        ``shown`` is how the call appears in errors when the argv holds something that
        must not be printed (a repository URL with a password in it). ``timeout``
        overrides the collector's for slow work (an integrity check); ``check=False``
        hands back any exit status for tools that report errors on stdout
        (manage-bde) or whose exit status the caller interprets.
        """
        call = shown or " ".join(argv)
        try:
            result = self.runner.run(argv, timeout=timeout or self.command_timeout, env=env)
        except CommandNotFoundError as exc:
            raise FactUnavailable(fact_name, call, str(exc)) from exc
        except CommandPermissionError as exc:
            raise FactPermissionDenied(fact_name, call, str(exc)) from exc
        except CommandTimeoutError as exc:
            raise FactTimeout(fact_name, call, str(exc)) from exc
        if check and result.returncode not in ok_codes:
            raise FactCommandFailed(fact_name, call.split(" "), result.returncode, result.stderr)
        return result

    def cached_command(
        self, fact_name: str, argv: list[str], *, ok_codes: tuple[int, ...] = (0,)
    ) -> Cached:
        """Like :meth:`command`, reusing a successful answer younger than the cache TTL.

        For slow read-only queries (package managers); the evidence keeps
        ``collected_at`` so a reused answer is never presented as fresh.
        """
        key = json.dumps(argv)
        if self.command_cache_ttl > 0:
            hit = self.memory.get("command-cache", key)
            if hit is not None:
                stored, stored_at = hit
                age = (self.now - stored_at).total_seconds()
                if 0 <= age < self.command_cache_ttl:
                    result = CommandResult(
                        tuple(argv),
                        int(stored["returncode"]),
                        str(stored["stdout"]),
                        str(stored["stderr"]),
                    )
                    return Cached(result, stored_at, reused=True)
        result = self.command(fact_name, argv, ok_codes=ok_codes)
        if self.command_cache_ttl > 0:
            self.memory.put(
                "command-cache",
                key,
                {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr},
                self.now,
            )
        return Cached(result, self.now, reused=False)

    # -- platform ---------------------------------------------------------------------

    def require_platform(self, fact_name: str, *platforms: str) -> None:
        """Refuse a fact on a platform it has no reader for (an error, never a pass)."""
        if self.platform not in platforms:
            raise FactUnavailable(
                fact_name,
                self.platform,
                f"not implemented for platform {self.platform} in this version",
            )

    def require_linux(self, fact_name: str) -> None:
        self.require_platform(fact_name, LINUX)

    # -- identity ---------------------------------------------------------------------

    @fact("host.identity")
    def identity(self) -> HostIdentity:
        hostname = socket.gethostname() if str(self.root) == "/" else "recorded-host"
        machine_id = ""
        for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
            try:
                machine_id = self.path(path).read_text().strip()
            except OSError:
                continue
            if machine_id:
                break
        return HostIdentity(machine_id or hostname, hostname)

    @fact("host.container")
    def container(self) -> str | None:
        """The container manager this agent runs under (docker, podman, kubernetes, lxc...),
        or None on a host or VM.

        Some checks judge what belongs to the host, not to a container sharing its
        kernel (the clock, for one): inside a container they are not applicable, and say
        to check the host. The markers are the ones the managers themselves leave:
        systemd's /run/systemd/container, /.dockerenv, podman's /run/.containerenv, and
        PID 1's cgroup path (cgroup v1). A marker nobody can read counts as absent.
        """
        if self.platform != LINUX:
            return None
        try:
            named = self.path("/run/systemd/container").read_text().strip()
        except OSError:
            named = ""
        if named:
            return named
        if self.path("/.dockerenv").exists():
            return "docker"
        if self.path("/run/.containerenv").exists():
            return "podman"
        try:
            cgroups = self.path("/proc/1/cgroup").read_text()
        except OSError:
            return None
        for marker, kind in (("/kubepods", "kubernetes"), ("/docker", "docker"), ("/lxc", "lxc")):
            if marker in cgroups:
                return kind
        return None
