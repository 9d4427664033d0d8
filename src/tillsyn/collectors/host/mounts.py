"""Parsing ``/proc/self/mountinfo`` and ``/proc/swaps``, and sorting mounts by kind.

The kind of a mount decides whether a disk-encryption verdict can apply to it at all:
pseudo and memory filesystems hold no data at rest, network mounts are encrypted (or
not) on another machine, and a union filesystem's data lives on the host's disks.
"""

from __future__ import annotations

from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError

#: Kernel and userspace pseudo filesystems: views of kernel state, no data at rest.
PSEUDO_FSTYPES = frozenset(
    {
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "cgroup",
        "cgroup2",
        "securityfs",
        "pstore",
        "efivarfs",
        "bpf",
        "debugfs",
        "tracefs",
        "mqueue",
        "hugetlbfs",
        "fusectl",
        "configfs",
        "autofs",
        "binfmt_misc",
        "nsfs",
        "rpc_pipefs",
        "selinuxfs",
        "nfsd",
        "binder",
        "rootfs",
        "sockfs",
        "pipefs",
        "fuse.portal",
        "fuse.gvfsd-fuse",
        "fuse.lxcfs",
        "devfs",
    }
)
#: Filesystems held in memory; what they spill goes to swap, which is checked on its own.
MEMORY_FSTYPES = frozenset({"tmpfs", "ramfs"})
#: Filesystems whose data lives on another machine.
NETWORK_FSTYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "9p",
        "virtiofs",
        "afs",
        "lustre",
        "davfs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.cephfs",
        "fuse.davfs2",
        "ncpfs",
        "coda",
    }
)
#: Union filesystems: the layers live on another mount (a container's root, for one).
UNION_FSTYPES = frozenset({"overlay", "aufs", "fuse.fuse-overlayfs"})
#: Filesystems with anonymous device numbers (0:N) whose backing device is named by source.
SOURCE_BACKED_FSTYPES = frozenset({"btrfs", "bcachefs"})


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/self/mountinfo`` (see proc(5))."""

    mount_id: int
    parent_id: int
    device: str  # "MAJ:MIN" as the kernel reports it
    root: str
    mountpoint: str
    options: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...]

    @property
    def major(self) -> int:
        return int(self.device.split(":", 1)[0])

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    @property
    def kind(self) -> str:
        """One of pseudo, memory, network, union, zfs, fuse, block or virtual."""
        fstype = self.fstype
        if fstype in PSEUDO_FSTYPES:
            return "pseudo"
        if fstype in MEMORY_FSTYPES:
            return "memory"
        if fstype in NETWORK_FSTYPES:
            return "network"
        if fstype in UNION_FSTYPES:
            return "union"
        if fstype == "zfs":
            return "zfs"
        if fstype.startswith("fuse"):
            return "fuse"
        if self.major != 0 or fstype in SOURCE_BACKED_FSTYPES:
            return "block"
        return "virtual"


@dataclass(frozen=True)
class Swap:
    """One line of ``/proc/swaps``."""

    path: str
    type: str  # "partition" or "file"
    size_kib: int
    used_kib: int
    priority: int


def unescape(field: str) -> str:
    """Undo the kernel's octal escapes (``\\040`` for a space) in paths."""
    if "\\" not in field:
        return field
    out: list[str] = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str, *, call: str = "/proc/self/mountinfo") -> tuple[Mount, ...]:
    """Every mount, strictly: a line that does not have the documented shape is an error."""
    mounts: list[Mount] = []
    if not text.strip():
        raise FactParseError("host.mounts", call, "mount table is empty")
    if not text.endswith("\n"):
        raise FactParseError(
            "host.mounts", call, "mount table ends mid-line (truncated)", text.rsplit("\n", 1)[-1]
        )
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
        except ValueError:
            raise FactParseError(
                "host.mounts", call, f"line {number} has no '-' separator after 6 fields", line
            ) from None
        if len(fields) - separator < 4 or ":" not in fields[2]:
            raise FactParseError("host.mounts", call, f"line {number} has too few fields", line)
        major, _, minor = fields[2].partition(":")
        if not (
            major.isdigit() and minor.isdigit() and fields[0].isdigit() and fields[1].isdigit()
        ):
            raise FactParseError(
                "host.mounts", call, f"line {number} has a malformed id or device number", line
            )
        mounts.append(
            Mount(
                mount_id=int(fields[0]),
                parent_id=int(fields[1]),
                device=fields[2],
                root=unescape(fields[3]),
                mountpoint=unescape(fields[4]),
                options=tuple(fields[5].split(",")),
                fstype=fields[separator + 1],
                source=unescape(fields[separator + 2]),
                super_options=tuple(fields[separator + 3].split(",")),
            )
        )
    return tuple(mounts)


def parse_swaps(text: str, *, call: str = "/proc/swaps") -> tuple[Swap, ...]:
    """Active swap areas; the first line is the kernel's header."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Filename"):
        raise FactParseError(
            "host.swaps", call, "missing the 'Filename Type ...' header", lines[0] if lines else ""
        )
    swaps: list[Swap] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if len(fields) != 5 or not all(f.lstrip("-").isdigit() for f in fields[2:]):
            raise FactParseError("host.swaps", call, f"line {number} is not 5 fields", line)
        swaps.append(
            Swap(unescape(fields[0]), fields[1], int(fields[2]), int(fields[3]), int(fields[4]))
        )
    return tuple(swaps)


def mount_containing(mounts: tuple[Mount, ...], path: str) -> Mount | None:
    """The mount a path lives on: the longest mount point that prefixes it, last mounted wins."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mountpoint.rstrip("/") or "/"
        inside = path == point or path.startswith(point if point == "/" else point + "/")
        if inside and (best is None or len(point) >= len(best.mountpoint.rstrip("/") or "/")):
            best = mount
    return best
