"""Which encryption, if any, sits under a block device: a walk through sysfs.

Works unprivileged. From a device number (``MAJ:MIN``), ``/sys/dev/block/MAJ:MIN``
leads to the device's sysfs directory. A device-mapper node says what it is in
``dm/uuid``: dm-crypt writes ``CRYPT-<TYPE>-...`` there (``CRYPT-LUKS2-``,
``CRYPT-LUKS1-``, ``CRYPT-PLAIN-``, ``CRYPT-BITLK-``, ``CRYPT-TCRYPT-``), LVM writes
``LVM-...``. A node built on others lists them in ``slaves/``; a partition stands on
its parent disk; a loop device stands on the filesystem of its ``loop/backing_file``.
A device is encrypted when every path from it down to physical storage passes through
a dm-crypt node. ``lsblk``'s FSTYPE and ``blkid`` are not used: they read superblocks,
which needs root, and come back empty without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tillsyn.collectors.errors import FactPermissionDenied, FactUnavailable

#: dm-crypt uuid prefixes and the scheme each means (cryptsetup's naming).
CRYPT_SCHEMES = {
    "CRYPT-LUKS2-": "luks2",
    "CRYPT-LUKS1-": "luks1",
    "CRYPT-PLAIN-": "plain",
    "CRYPT-BITLK-": "bitlk",
    "CRYPT-TCRYPT-": "tcrypt",
    "CRYPT-LOOPAES-": "loopaes",
}


@dataclass(frozen=True)
class BlockLayer:
    """One device met on the way down: its kernel name, number and what it is."""

    name: str
    device: str
    kind: str  # dm-crypt, lvm, dm, loop, md, partition, disk
    detail: str = ""

    def describe(self) -> str:
        return f"{self.name} ({self.kind}{', ' + self.detail if self.detail else ''})"


@dataclass(frozen=True)
class BlockStack:
    """The verdict for one device: the layers seen, the schemes found, the clear leaves.

    ``schemes`` holds the encryption of every encrypted path; ``unencrypted`` names each
    physical device reached without passing a dm-crypt node. Encrypted means
    ``schemes`` is non-empty and ``unencrypted`` is empty.
    """

    device: str
    layers: tuple[BlockLayer, ...]
    schemes: tuple[str, ...]
    unencrypted: tuple[str, ...]

    @property
    def encrypted(self) -> bool:
        return bool(self.schemes) and not self.unencrypted


@dataclass(frozen=True)
class Medium:
    """Whether the physical disks under a device can be carried away.

    ``removable`` is the kernel's ``removable`` attribute of the disks (1 for SD cards,
    most USB sticks, optical drives); ``usb`` says a disk hangs off a USB controller (USB
    SSDs report removable 0 but are carried around all the same). ``removable`` is
    None when no disk has the attribute (a recorded tree without it): unknown, which
    the check never reads as "not removable" to excuse anything.
    """

    disks: tuple[str, ...]
    removable: bool | None
    usb: bool

    @property
    def portable(self) -> bool:
        return bool(self.removable) or self.usb

    def describe(self) -> str:
        kinds = (["USB"] if self.usb else []) + (["removable"] if self.removable else [])
        return f"{', '.join(self.disks)} ({', '.join(kinds) or 'fixed'})"


@dataclass
class _Walk:
    layers: list[BlockLayer] = field(default_factory=list)
    schemes: set[str] = field(default_factory=set)
    unencrypted: list[str] = field(default_factory=list)


class SysBlock:
    """Reads the block-device part of sysfs under an injectable filesystem root.

    ``backing_device`` maps a loop device's backing file to the device number of the
    filesystem holding it (the host collector knows the mount table; this class does not).
    """

    def __init__(self, root: Path, backing_device: Callable[[str], str]) -> None:
        self.root = root
        self._backing_device = backing_device

    def _read(self, path: Path, fact: str) -> str:
        try:
            return path.read_text().strip()
        except PermissionError as exc:
            raise FactPermissionDenied(fact, str(path), "permission denied") from exc
        except OSError as exc:
            raise FactUnavailable(fact, str(path), exc.strerror or str(exc)) from exc

    def device_dir(self, device: str) -> Path:
        """The sysfs directory of ``MAJ:MIN``, found through ``/sys/dev/block``."""
        link = self.root / "sys/dev/block" / device
        if not link.is_symlink() and not link.exists():
            raise FactUnavailable(
                "host.block_stack",
                str(link),
                f"no sysfs entry for block device {device} (is /sys mounted?)",
            )
        return Path(os.path.realpath(link))

    def device_number(self, kernel_path: str) -> str:
        """``MAJ:MIN`` of a ``/dev`` path (``/dev/mapper/x``, ``/dev/dm-3``, ``/dev/vda2``)."""
        resolved = os.path.realpath(self.root / kernel_path.lstrip("/"))
        for name in (os.path.basename(resolved), os.path.basename(kernel_path)):
            dev_file = self.root / "sys/class/block" / name / "dev"
            if dev_file.exists():
                return self._read(dev_file, "host.block_stack")
        raise FactUnavailable(
            "host.block_stack", kernel_path, "not a block device known to /sys/class/block"
        )

    def medium(self, device: str) -> Medium:
        """Removability of the physical disks under ``device``, through dm-crypt too.

        Unlike :meth:`stack`, which stops at the first dm-crypt node (what lies below is
        ciphertext), this walk goes down to the disks: a LUKS container on a USB stick is
        still a USB stick.
        """
        leaves: dict[str, Path] = {}
        self._leaves(self.device_dir(device), leaves, set())
        flags: list[bool] = []
        usb = False
        for directory in leaves.values():
            usb = usb or "/usb" in str(directory)
            attribute = directory / "removable"
            if attribute.exists():
                flags.append(self._read(attribute, "host.removable_medium") == "1")
        return Medium(tuple(leaves), any(flags) if flags else None, usb)

    def _leaves(self, directory: Path, leaves: dict[str, Path], seen: set[Path]) -> None:
        if directory in seen:
            return
        seen.add(directory)
        if (directory / "partition").exists():
            self._leaves(directory.parent, leaves, seen)
            return
        if (directory / "loop").is_dir():
            backing = self._read(directory / "loop" / "backing_file", "host.removable_medium")
            backing = backing.removesuffix(" (deleted)")
            self._leaves(self.device_dir(self._backing_device(backing)), leaves, seen)
            return
        slaves_dir = directory / "slaves"
        slaves = sorted(slaves_dir.iterdir()) if slaves_dir.is_dir() else []
        if not slaves:
            leaves[directory.name] = directory
        for slave in slaves:
            self._leaves(Path(os.path.realpath(slave)), leaves, seen)

    def stack(self, device: str) -> BlockStack:
        walk = _Walk()
        self._descend(self.device_dir(device), walk, seen=set())
        return BlockStack(
            device, tuple(walk.layers), tuple(sorted(walk.schemes)), tuple(walk.unencrypted)
        )

    def _descend(self, directory: Path, walk: _Walk, seen: set[Path]) -> None:
        if directory in seen:  # a loop device backed by a file on itself, or a sysfs cycle
            return
        seen.add(directory)
        name = directory.name
        number = self._read(directory / "dev", "host.block_stack")
        dm_uuid_file = directory / "dm" / "uuid"
        if dm_uuid_file.exists():
            uuid = self._read(dm_uuid_file, "host.block_stack")
            dm_name = self._read(directory / "dm" / "name", "host.block_stack")
            for prefix, scheme in CRYPT_SCHEMES.items():
                if uuid.startswith(prefix):
                    walk.layers.append(BlockLayer(name, number, "dm-crypt", f"{scheme} {dm_name}"))
                    walk.schemes.add(scheme)
                    return
            kind = "lvm" if uuid.startswith("LVM-") else "dm"
            walk.layers.append(BlockLayer(name, number, kind, dm_name))
        elif (directory / "loop").is_dir():
            backing = self._read(directory / "loop" / "backing_file", "host.block_stack")
            backing = backing.removesuffix(" (deleted)")
            walk.layers.append(BlockLayer(name, number, "loop", backing))
            self._descend(self.device_dir(self._backing_device(backing)), walk, seen)
            return
        elif (directory / "partition").exists():
            walk.layers.append(BlockLayer(name, number, "partition"))
            self._descend(directory.parent, walk, seen)
            return
        elif (directory / "md").is_dir():
            walk.layers.append(BlockLayer(name, number, "md"))
        else:
            walk.layers.append(BlockLayer(name, number, "disk"))

        slaves_dir = directory / "slaves"
        try:
            slaves = sorted(slaves_dir.iterdir()) if slaves_dir.is_dir() else []
        except PermissionError as exc:
            raise FactPermissionDenied(
                "host.block_stack", str(slaves_dir), "permission denied"
            ) from exc
        if not slaves:
            walk.unencrypted.append(name)
            return
        for slave in slaves:
            self._descend(Path(os.path.realpath(slave)), walk, seen)
