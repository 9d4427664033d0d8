"""Storage facts: mounts, swap areas, the block-device stack under each, and the
encryption layers that are not block devices (ZFS native encryption, fscrypt
directories), plus FileVault on macOS and BitLocker on Windows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tillsyn.collectors._facts import fact
from tillsyn.collectors.errors import FactCommandFailed, FactUnavailable
from tillsyn.collectors.host import mounts
from tillsyn.collectors.host._base import MACOS, WINDOWS, HostBase
from tillsyn.collectors.host.blockdev import BlockStack, Medium, SysBlock
from tillsyn.collectors.host.mounts import Mount, Swap
from tillsyn.collectors.host.storage_fscrypt import (
    DirectoryFlags,
    list_subdirectories,
    parse_lsattr,
)
from tillsyn.collectors.host.storage_zfs import (
    ZFS_GET_ARGV,
    ZfsDataset,
    parse_zfs_get,
    parse_zpool_devices,
)

# macOS and Windows modules are imported where used, so a Linux agent never loads them.
if TYPE_CHECKING:
    from tillsyn.collectors.host.storage_bitlocker import BitLockerVolume
    from tillsyn.collectors.host.storage_filevault import FileVaultStatus


class StorageFacts(HostBase):
    @property
    def _sysblock(self) -> SysBlock:
        return SysBlock(self.root, self._device_of_path)

    @fact("host.mounts")
    def mounts(self) -> tuple[Mount, ...]:
        """Every mount this process sees, from ``/proc/self/mountinfo``."""
        self.require_linux("host.mounts")
        return mounts.parse_mountinfo(self.read_text("host.mounts", "/proc/self/mountinfo"))

    @fact("host.swaps")
    def swaps(self) -> tuple[Swap, ...]:
        """Active swap areas, from ``/proc/swaps``."""
        self.require_linux("host.swaps")
        return mounts.parse_swaps(self.read_text("host.swaps", "/proc/swaps"))

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
        self.require_linux("host.block_stack")
        return self._sysblock.stack(device)

    @fact("host.removable_medium")
    def medium(self, device: str) -> Medium:
        """Whether the physical disks under ``MAJ:MIN`` are removable or on USB."""
        self.require_linux("host.removable_medium")
        return self._sysblock.medium(device)

    # -- ZFS ---------------------------------------------------------------------------

    @fact("host.zfs.datasets")
    def zfs_datasets(self) -> dict[str, ZfsDataset]:
        """Encryption properties of every ZFS filesystem, from one ``zfs get``."""
        self.require_linux("host.zfs.datasets")
        result = self.command("host.zfs.datasets", ZFS_GET_ARGV)
        return parse_zfs_get(result.stdout, " ".join(ZFS_GET_ARGV))

    @fact("host.zfs.pool_devices")
    def zfs_pool_devices(self, pool: str) -> tuple[str, ...]:
        """The real ``/dev`` paths of a pool's data devices (``zpool status -P -L``)."""
        self.require_linux("host.zfs.pool_devices")
        argv = ["zpool", "status", "-P", "-L", pool]
        result = self.command("host.zfs.pool_devices", argv)
        return parse_zpool_devices(result.stdout, pool, " ".join(argv))

    def zfs_pool_stacks(self, pool: str) -> tuple[BlockStack, ...]:
        """The block stack under each data device of ``pool`` (raises FactError)."""
        return tuple(
            self.block_stack(self._sysblock.device_number(path))
            for path in self.zfs_pool_devices(pool)
        )

    # -- fscrypt -----------------------------------------------------------------------

    @fact("host.fscrypt.homes")
    def home_directories(self, home_root: str) -> tuple[str, ...]:
        """The directories directly under ``home_root`` (``/home/alice`` ...)."""
        return list_subdirectories(self.root, home_root)

    @fact("host.fscrypt.directories")
    def directory_flags(self, paths: tuple[str, ...]) -> dict[str, DirectoryFlags]:
        """fscrypt state of each directory, from ``lsattr -d`` (exit 1 when one failed)."""
        self.require_linux("host.fscrypt.directories")
        argv = ["lsattr", "-d", *paths]
        result = self.command("host.fscrypt.directories", argv, ok_codes=(0, 1))
        return parse_lsattr(result.stdout, result.stderr, paths, " ".join(argv))

    # -- macOS and Windows ---------------------------------------------------------------

    @fact("host.filevault")
    def filevault(self) -> FileVaultStatus:
        """FileVault state of the macOS boot volume."""
        from tillsyn.collectors.host.storage_filevault import FDESETUP_ARGV, parse_fdesetup_status

        self.require_platform("host.filevault", MACOS)
        result = self.command("host.filevault", FDESETUP_ARGV)
        return parse_fdesetup_status(result.stdout, " ".join(FDESETUP_ARGV))

    @fact("host.bitlocker")
    def bitlocker_volumes(self) -> tuple[BitLockerVolume, ...]:
        """BitLocker state of every volume ``manage-bde`` can protect (needs elevation)."""
        from tillsyn.collectors.host.storage_bitlocker import (
            MANAGE_BDE_ARGV,
            parse_manage_bde_status,
        )

        self.require_platform("host.bitlocker", WINDOWS)
        result = self.command("host.bitlocker", MANAGE_BDE_ARGV, check=False)
        if result.returncode != 0:
            # manage-bde prints its errors ("ERROR: An attempt to access a required
            # resource was denied.") on stdout and exits with an HRESULT.
            said = result.stdout + result.stderr
            errors = [line for line in said.splitlines() if line.startswith("ERROR:")]
            raise FactCommandFailed(
                "host.bitlocker", MANAGE_BDE_ARGV, result.returncode, "\n".join(errors) or said
            )
        return parse_manage_bde_status(result.stdout, " ".join(MANAGE_BDE_ARGV))
