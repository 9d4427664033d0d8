"""The host collector: every fact a host check can ask for, read once per run.

Everything the collector touches is injectable so tests can point it at recorded
real trees and command outputs: the filesystem ``root`` (procfs, sysfs, /dev, /etc),
the command ``runner``, the environment, the platform name and the run's clock.
"""

from __future__ import annotations

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
    FactPermissionDenied,
    FactTimeout,
    FactUnavailable,
)
from tillsyn.collectors.host import backup, mounts
from tillsyn.collectors.host.backup import NewestFile, Snapshot, redact_location
from tillsyn.collectors.host.blockdev import BlockStack, SysBlock
from tillsyn.collectors.host.mounts import Mount, Swap


@dataclass(frozen=True)
class HostIdentity:
    """How the evidence names this host: a stable machine id and the hostname."""

    machine_id: str
    hostname: str


class HostFacts(HasFactCache):
    """Facts about the host this agent runs on (or a recorded one, in tests)."""

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
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.env = dict(os.environ if env is None else env)
        self.platform = platform or sys.platform
        self.now = now or datetime.now(UTC)
        self.command_timeout = command_timeout
        self._sysblock = SysBlock(self.root, self._device_of_path)

    # -- plumbing ---------------------------------------------------------------------

    def _path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def _read_text(self, fact_name: str, path: str) -> str:
        target = self._path(path)
        try:
            return target.read_text()
        except PermissionError as exc:
            raise FactPermissionDenied(fact_name, path, "permission denied") from exc
        except FileNotFoundError as exc:
            raise FactUnavailable(fact_name, path, "does not exist") from exc
        except OSError as exc:
            raise FactUnavailable(fact_name, path, exc.strerror or str(exc)) from exc

    def command(
        self,
        fact_name: str,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        ok_codes: tuple[int, ...] = (0,),
        shown: str | None = None,
    ) -> CommandResult:
        """Run a command for a fact; a missing tool, timeout or bad exit becomes a FactError.

        ``shown`` is how the call appears in errors when the argv holds something that
        must not be printed (a repository URL with a password in it).
        """
        call = shown or " ".join(argv)
        try:
            result = self.runner.run(argv, timeout=self.command_timeout, env=env)
        except CommandNotFoundError as exc:
            raise FactUnavailable(fact_name, call, str(exc)) from exc
        except CommandPermissionError as exc:
            raise FactPermissionDenied(fact_name, call, str(exc)) from exc
        except CommandTimeoutError as exc:
            raise FactTimeout(fact_name, call, str(exc)) from exc
        if result.returncode not in ok_codes:
            raise FactCommandFailed(fact_name, call.split(" "), result.returncode, result.stderr)
        return result

    def _require_linux(self, fact_name: str) -> None:
        if self.platform != "linux":
            raise FactUnavailable(
                fact_name,
                self.platform,
                f"not implemented for platform {self.platform} in this version",
            )

    # -- identity ---------------------------------------------------------------------

    @fact("host.identity")
    def identity(self) -> HostIdentity:
        hostname = socket.gethostname() if str(self.root) == "/" else "recorded-host"
        machine_id = ""
        for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
            try:
                machine_id = self._path(path).read_text().strip()
            except OSError:
                continue
            if machine_id:
                break
        return HostIdentity(machine_id or hostname, hostname)

    # -- mounts and block devices -----------------------------------------------------

    @fact("host.mounts")
    def mounts(self) -> tuple[Mount, ...]:
        """Every mount this process sees, from ``/proc/self/mountinfo``."""
        self._require_linux("host.mounts")
        return mounts.parse_mountinfo(self._read_text("host.mounts", "/proc/self/mountinfo"))

    @fact("host.swaps")
    def swaps(self) -> tuple[Swap, ...]:
        """Active swap areas, from ``/proc/swaps``."""
        self._require_linux("host.swaps")
        return mounts.parse_swaps(self._read_text("host.swaps", "/proc/swaps"))

    def mount_containing(self, path: str) -> Mount | None:
        return mounts.mount_containing(self.mounts(), path)

    def _device_of_path(self, path: str) -> str:
        """Device number of the block filesystem holding ``path`` (a loop backing file)."""
        mount = self.mount_containing(path)
        if mount is None:
            raise FactUnavailable("host.block_stack", path, "no mount holds this file")
        return self.device_of_mount(mount)

    def device_of_mount(self, mount: Mount) -> str:
        """The real block device behind a mount, also for btrfs, whose number is anonymous."""
        if mount.major != 0:
            return mount.device
        if mount.source.startswith("/dev/"):
            return self._sysblock.device_number(mount.source)
        raise FactUnavailable(
            "host.block_stack",
            mount.mountpoint,
            f"{mount.fstype} mount has no block device source ({mount.source})",
        )

    def device_of_swap(self, swap: Swap) -> str:
        """Device number of a swap partition, or of the filesystem holding a swap file."""
        if swap.type == "file":
            return self._device_of_path(swap.path)
        return self._sysblock.device_number(swap.path)

    @fact("host.block_stack")
    def block_stack(self, device: str) -> BlockStack:
        """Which encryption lies under block device ``MAJ:MIN`` (see :mod:`.blockdev`)."""
        self._require_linux("host.block_stack")
        return self._sysblock.stack(device)

    # -- backup -----------------------------------------------------------------------

    @fact("host.backup.restic_snapshots")
    def restic_snapshots(
        self, repository: str, password_file: str = "", password_env: str = ""
    ) -> tuple[Snapshot, ...]:
        """Snapshots in a restic repository, read without taking a lock."""
        fact_name = "host.backup.restic_snapshots"
        env: dict[str, str] = {}
        if password_file:
            env["RESTIC_PASSWORD_FILE"] = password_file
        elif password_env:
            if password_env not in self.env:
                raise FactUnavailable(
                    fact_name,
                    f"${password_env}",
                    "the environment variable holding the password is not set",
                )
            env["RESTIC_PASSWORD"] = self.env[password_env]
        elif not (
            {"RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND"} & self.env.keys()
        ):
            raise FactUnavailable(
                fact_name,
                redact_location(repository),
                "no password source: set password_file or password_env",
            )
        argv = ["restic", "snapshots", "--json", "--no-lock", "--repo", repository]
        shown = " ".join([*argv[:-1], redact_location(repository)])
        try:
            result = self.command(fact_name, argv, env=env, shown=shown)
        except FactCommandFailed as exc:
            raise FactCommandFailed(
                fact_name,
                shown.split(" "),
                exc.returncode,
                exc.stderr.replace(repository, redact_location(repository)),
            ) from None
        return backup.parse_restic_snapshots(result.stdout, shown)

    @fact("host.backup.newest_file")
    def newest_file(self, pattern: str) -> NewestFile | None:
        """Newest file matching an absolute glob, or None when nothing matches."""
        return backup.newest_matching_file(self.root, pattern)
