"""Storage facts: mounts, swap areas and the block-device stack under each."""

from __future__ import annotations

from tillsyn.collectors._facts import fact
from tillsyn.collectors.errors import FactUnavailable
from tillsyn.collectors.host import mounts
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.blockdev import BlockStack, SysBlock
from tillsyn.collectors.host.mounts import Mount, Swap


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
