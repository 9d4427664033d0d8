"""Encryption at rest on the host.

``host.encryption.disk`` passes for a filesystem or swap area when every path from its
block device down to physical storage goes through dm-crypt (LUKS1, LUKS2, or plain
dm-crypt when allowed), with LVM, RAID or partitions anywhere in between; it keeps the
layers it walked as evidence. A ZFS filesystem passes when its dataset uses ZFS native
encryption (evidence: the ``encryption``, ``keystatus`` and ``encryptionroot``
properties) or, with ``encryption=off``, when every data device of its pool sits on
dm-crypt (ZFS on LUKS). Memory, pseudo, network and union filesystems are not
applicable, each with its reason; a filesystem whose device cannot be read is ``error``.

fscrypt: on an ext4 or f2fs filesystem that is *not* on dm-crypt, each home directory
(the subdirectories of ``home_roots``) gets its own result: pass when it carries an
fscrypt policy (``lsattr`` flag ``E``), fail when it does not. The filesystem itself
stays ``fail`` even when every home is protected: fscrypt leaves everything outside
the protected trees in clear (``/etc``, ``/var`` with its logs, spools and databases,
``/tmp`` on disk) and even inside them leaves file sizes, timestamps, permissions and
extended attributes readable. An organisation that accepts per-user encryption alone
can exempt the filesystem with ``exempt_mounts`` and rely on the per-home results.

Removable media (A.7.10): a mounted filesystem whose disk the kernel calls removable or
that hangs off USB is reported as ``removable_media`` instead of ``filesystem``; with
``removable_media: report`` an unencrypted one is ``not_applicable`` with its state
said, rather than ``fail``.

macOS: the boot volume passes when ``fdesetup status`` says FileVault is On with no
encryption or decryption in progress. Windows: each volume ``manage-bde -status``
lists passes when it is Fully (or Used Space Only) Encrypted with Protection On, or is
locked; a fully encrypted volume whose protection is off (suspended) fails, because its
key then sits in clear on the disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from tillsyn.checks._result import Resource, Result
from tillsyn.checks._spec import check
from tillsyn.collectors.errors import FactError
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.blockdev import BlockStack, Medium
from tillsyn.collectors.host.mounts import Mount
from tillsyn.collectors.host.storage_fscrypt import FSCRYPT_FSTYPES

# Windows modules are imported where used, so a Linux agent never loads them.

#: Why each kind of mount carries no verdict of its own.
NOT_APPLICABLE_REASONS = {
    "pseudo": "kernel pseudo filesystems hold no data at rest",
    "memory": "memory-backed filesystems hold no data at rest (what they page out goes to "
    "swap, checked on its own)",
    "network": "network filesystems keep their data on another machine; check that machine",
    "union": "union filesystems (a container's root) keep their layers on the host's disks; "
    "check the host",
    "fuse": "FUSE filesystems keep their data wherever their daemon stores it",
    "virtual": "filesystems without a block device hold no data at rest here",
}


@dataclass(frozen=True)
class DiskParams:
    #: Mount points that hold only the boot loader and kernel, which must stay readable.
    exempt_mounts: tuple[str, ...] = ("/boot", "/boot/efi", "/efi")
    #: Plain dm-crypt (no LUKS header) is encryption; set false to require LUKS.
    accept_plain_dm_crypt: bool = True
    #: Directories whose subdirectories are users' homes, checked one by one for fscrypt
    #: when their filesystem is ext4/f2fs and not on dm-crypt.
    home_roots: tuple[str, ...] = ("/home",)
    #: Removable or USB media: fail unless encrypted, or only report their state.
    removable_media: Literal["require_encryption", "report"] = "require_encryption"


def _primary(group: list[Mount]) -> Mount:
    """The mount that names a filesystem: its root mounted at the shortest path."""
    return min(group, key=lambda m: (m.root != "/", len(m.mountpoint), m.mountpoint))


def _group_key(mount: Mount) -> str:
    return mount.device if mount.major != 0 else f"{mount.fstype}:{mount.source}"


def _accepted(p: DiskParams) -> list[str]:
    return ["luks1", "luks2", "bitlk", "tcrypt"] + (["plain"] if p.accept_plain_dm_crypt else [])


def _judge(
    resource: Resource, what: str, stack: BlockStack, p: DiskParams, observed: dict[str, object]
) -> Result:
    layers = " → ".join(layer.describe() for layer in stack.layers)
    observed |= {
        "device": stack.device,
        "layers": [layer.describe() for layer in stack.layers],
        "encryption": list(stack.schemes),
        "unencrypted_devices": list(stack.unencrypted),
    }
    accepted = _accepted(p)
    expected = {"encryption": accepted}
    if stack.unencrypted:
        clear = ", ".join(stack.unencrypted)
        verb = "holds" if len(stack.unencrypted) == 1 else "hold"
        return Result.failed(
            resource,
            f"{what} is not encrypted: {clear} {verb} it in clear ({layers})",
            observed=observed,
            expected=expected,
        )
    refused = [s for s in stack.schemes if s not in accepted]
    if refused:
        return Result.failed(
            resource,
            f"{what} uses {', '.join(refused)} dm-crypt, which the policy does not accept",
            observed=observed,
            expected=expected,
        )
    return Result.passed(
        resource,
        f"{what} is encrypted ({', '.join(stack.schemes)}): {layers}",
        observed=observed,
        expected=expected,
    )


@check(
    id="host.encryption.disk",
    title="Local filesystems, swap and removable media are encrypted at rest",
    target="host",
    controls=(
        "iso27001:2022/A.8.1",
        "iso27001:2022/A.8.24",
        "iso27001:2022/A.7.10",
        "nis2/9.2.a",
    ),
    severity="high",
    interval="6h",
    params=DiskParams,
    facts=(
        "host.mounts",
        "host.swaps",
        "host.block_stack",
        "host.removable_medium",
        "host.zfs.datasets",
        "host.zfs.pool_devices",
        "host.fscrypt.homes",
        "host.fscrypt.directories",
        "host.filevault",
        "host.bitlocker",
    ),
    needs=(
        "read /proc/self/mountinfo, /proc/swaps and /sys/dev/block (no root needed)",
        "run zfs get and zpool status where ZFS is mounted, lsattr -d on home directories",
        "macOS: run fdesetup status; Windows: run manage-bde -status elevated",
    ),
    remediation="Encrypt the device with LUKS2 (cryptsetup reencrypt --encrypt for an existing "
    "one, or reinstall with full-disk encryption) and use encrypted or zram swap; create ZFS "
    "datasets with encryption=on; turn on FileVault (macOS) or BitLocker (Windows) and resume "
    "suspended protection; encrypt removable media (LUKS, BitLocker To Go).",
)
def disk(facts: HostFacts, p: DiskParams) -> Iterator[Result]:
    if facts.platform == "darwin":
        yield from _filevault(facts)
        return
    if facts.platform == "win32":
        yield from _bitlocker(facts, p)
        return
    mounts = facts.mounts()
    groups: dict[str, list[Mount]] = {}
    zfs_groups: dict[str, list[Mount]] = {}
    not_applicable: dict[str, list[str]] = {}
    for mount in mounts:
        if mount.kind == "block":
            groups.setdefault(_group_key(mount), []).append(mount)
        elif mount.kind == "zfs":
            zfs_groups.setdefault(mount.source, []).append(mount)
        else:
            not_applicable.setdefault(mount.kind, []).append(mount.mountpoint)

    stacks: dict[str, BlockStack] = {}
    for key, group in groups.items():
        primary = _primary(group)
        points = sorted({m.mountpoint for m in group})
        resource = Resource("filesystem", primary.mountpoint)
        observed: dict[str, object] = {
            "mountpoints": points,
            "fstype": primary.fstype,
            "source": primary.source,
        }
        exempt = [pt for pt in points if pt in p.exempt_mounts]
        if exempt and len(exempt) == len(points):
            yield Result.not_applicable(
                resource,
                f"{primary.mountpoint} is exempt by the exempt_mounts parameter (boot files only)",
                observed=observed,
            )
            continue
        try:
            device = facts.device_of_mount(primary)
            stack = facts.block_stack(device)
        except FactError as exc:
            yield Result.errored(
                resource,
                f"could not tell whether {primary.mountpoint} is encrypted: {exc}",
                observed=observed,
            )
            continue
        stacks[key] = stack
        medium = _medium(facts, device)
        if medium is not None and medium.portable:
            yield _removable(primary.mountpoint, stack, medium, p, observed)
            continue
        yield _judge(resource, primary.mountpoint, stack, p, observed)

    for dataset, group in sorted(zfs_groups.items()):
        yield _zfs(facts, dataset, group, p)

    yield from _homes(facts, p, stacks)

    for kind, points in sorted(not_applicable.items()):
        yield Result.not_applicable(
            Resource("mounts", f"{kind}-filesystems"),
            f"{len(points)} {kind} mount(s) not applicable: {NOT_APPLICABLE_REASONS[kind]}",
            observed={"mountpoints": sorted(set(points))},
        )

    yield from _swap(facts, p)


def _medium(facts: HostFacts, device: str) -> Medium | None:
    """The disks' removability, or None when sysfs cannot say (then: a fixed disk's rules)."""
    try:
        return facts.medium(device)
    except FactError:
        return None


def _removable(
    mountpoint: str, stack: BlockStack, medium: Medium, p: DiskParams, observed: dict[str, object]
) -> Result:
    resource = Resource("removable_media", mountpoint)
    observed |= {"medium": medium.describe(), "removable": medium.removable, "usb": medium.usb}
    what = f"removable medium {mountpoint} on {medium.describe()}"
    result = _judge(resource, what, stack, p, observed)
    if str(result.status) == "fail" and p.removable_media == "report":
        return Result.not_applicable(
            resource,
            f"{result.message}; reported only (removable_media=report)",
            observed=result.observed,
            expected=result.expected,
        )
    return result


def _zfs(facts: HostFacts, dataset: str, group: list[Mount], p: DiskParams) -> Result:
    primary = _primary(group)
    point = primary.mountpoint
    resource = Resource("filesystem", point)
    observed: dict[str, object] = {
        "mountpoints": sorted({m.mountpoint for m in group}),
        "fstype": "zfs",
        "dataset": dataset,
    }
    if point in p.exempt_mounts:
        return Result.not_applicable(
            resource, f"{point} is exempt by the exempt_mounts parameter", observed=observed
        )
    try:
        found = facts.zfs_datasets().get(dataset)
    except FactError as exc:
        return Result.errored(
            resource,
            f"could not tell whether {point} (ZFS dataset {dataset}) is encrypted: {exc}",
            observed=observed,
        )
    if found is None:
        return Result.errored(
            resource,
            f"could not tell whether {point} is encrypted: zfs get does not list dataset {dataset}",
            observed=observed,
        )
    observed |= {
        "encryption": found.encryption,
        "keystatus": found.keystatus,
        "encryptionroot": found.encryptionroot,
    }
    if found.encrypted:
        return Result.passed(
            resource,
            f"{point} is encrypted (ZFS native {found.encryption}, encryption root "
            f"{found.encryptionroot}, key {found.keystatus})",
            observed=observed,
            expected={"encryption": "not off"},
        )
    try:
        stacks = facts.zfs_pool_stacks(found.pool)
    except FactError as exc:
        return Result.errored(
            resource,
            f"{point}: ZFS dataset {dataset} has encryption=off and the devices of pool "
            f"{found.pool} could not be read to look for dm-crypt: {exc}",
            observed=observed,
        )
    merged = BlockStack(
        ",".join(s.device for s in stacks),
        tuple(layer for s in stacks for layer in s.layers),
        tuple(sorted({scheme for s in stacks for scheme in s.schemes})),
        tuple(leaf for s in stacks for leaf in s.unencrypted),
    )
    what = f"{point} (ZFS dataset {dataset}, encryption=off, pool {found.pool})"
    return _judge(resource, what, merged, p, observed)


def _homes(facts: HostFacts, p: DiskParams, stacks: dict[str, BlockStack]) -> Iterator[Result]:
    """Per-home fscrypt results on ext4/f2fs filesystems that are not on dm-crypt."""
    for home_root in p.home_roots:
        try:
            homes = facts.home_directories(home_root)
        except FactError as exc:
            yield Result.errored(
                Resource("directory", home_root),
                f"could not list the home directories under {home_root}: {exc}",
            )
            continue
        by_filesystem: dict[str, tuple[Mount, list[str]]] = {}
        for home in homes:
            mount = facts.mount_containing(home)
            if mount is None or mount.kind != "block" or mount.fstype not in FSCRYPT_FSTYPES:
                continue
            stack = stacks.get(_group_key(mount))
            if stack is None or stack.encrypted:
                continue  # exempt, unreadable (already an error) or on dm-crypt
            by_filesystem.setdefault(_group_key(mount), (mount, []))[1].append(home)
        for mount, paths in by_filesystem.values():
            filesystem = facts.mount_containing(mount.mountpoint) or mount
            yield from _home_results(facts, tuple(paths), filesystem)


def _home_results(facts: HostFacts, paths: tuple[str, ...], mount: Mount) -> Iterator[Result]:
    try:
        flags = facts.directory_flags(paths)
    except FactError as exc:
        for path in paths:
            yield Result.errored(
                Resource("directory", path),
                f"could not tell whether home directory {path} is fscrypt-encrypted: {exc}",
            )
        return
    where = f"{mount.fstype} filesystem {mount.mountpoint}"
    for path in paths:
        state = flags[path]
        resource = Resource("directory", path)
        observed: dict[str, object] = {
            "filesystem": mount.mountpoint,
            "fstype": mount.fstype,
            "lsattr_flags": state.flags,
            "fscrypt": state.encrypted,
        }
        expected = {"fscrypt": True}
        if state.encrypted is None:
            yield Result.errored(
                resource,
                f"could not read the fscrypt flag of home directory {path}: {state.error}",
                observed=observed,
                expected=expected,
            )
        elif state.encrypted:
            yield Result.passed(
                resource,
                f"home directory {path} is encrypted with fscrypt (its {where} is not)",
                observed=observed,
                expected=expected,
            )
        else:
            yield Result.failed(
                resource,
                f"home directory {path} is not encrypted: no fscrypt policy, on the "
                f"unencrypted {where}",
                observed=observed,
                expected=expected,
            )


def _swap(facts: HostFacts, p: DiskParams) -> Iterator[Result]:
    swaps = facts.swaps()
    if not swaps:
        yield Result.not_applicable(Resource("swap", "none"), "no swap area is active")
        return
    for swap in swaps:
        resource = Resource("swap", swap.path)
        observed: dict[str, object] = {
            "path": swap.path,
            "type": swap.type,
            "size_kib": swap.size_kib,
        }
        holder = facts.mount_containing(swap.path) if swap.type == "file" else None
        if holder is not None and holder.kind != "block":
            # In a container /proc/swaps shows the host's swap file, which then seems to
            # sit on the container's overlay root: only the host can tell.
            yield Result.not_applicable(
                resource,
                f"swap file {swap.path} is on a {holder.kind} filesystem "
                f"({holder.mountpoint}): {NOT_APPLICABLE_REASONS[holder.kind]}",
                observed=observed,
            )
            continue
        if swap.path.startswith("/dev/zram"):
            yield Result.not_applicable(
                resource,
                f"swap {swap.path} is compressed RAM (zram) and never reaches a disk",
                observed=observed,
            )
            continue
        try:
            stack = facts.block_stack(facts.device_of_swap(swap))
        except FactError as exc:
            yield Result.errored(
                resource,
                f"could not tell whether swap {swap.path} is encrypted: {exc}",
                observed=observed,
            )
            continue
        yield _judge(resource, f"swap {swap.path}", stack, p, observed)


def _filevault(facts: HostFacts) -> Iterator[Result]:
    """macOS: the boot volume's FileVault state (per-volume APFS detail is not read)."""
    status = facts.filevault()
    observed: dict[str, object] = {
        "filevault": status.describe(),
        "on": status.on,
        "in_progress": status.progress or None,
        "percent_completed": status.percent,
        "deferred_enablement": status.deferred,
    }
    expected = {"filevault": "On, no conversion in progress"}
    resource = Resource("filesystem", "/")
    if status.encrypted:
        yield Result.passed(
            resource,
            "/ (the macOS boot volume) is encrypted: FileVault is On",
            observed=observed,
            expected=expected,
        )
    else:
        yield Result.failed(
            resource,
            f"/ (the macOS boot volume) is not fully encrypted: {status.describe()}",
            observed=observed,
            expected=expected,
        )


def _bitlocker(facts: HostFacts, p: DiskParams) -> Iterator[Result]:
    """Windows: one result per volume manage-bde can protect."""
    from tillsyn.collectors.host.storage_bitlocker import ENCRYPTED_CONVERSIONS

    for volume in facts.bitlocker_volumes():
        resource = Resource("volume", volume.volume)
        observed: dict[str, object] = {
            "label": volume.label,
            "kind": volume.kind,
            "conversion_status": volume.conversion,
            "percentage_encrypted": volume.percent,
            "encryption_method": volume.method,
            "protection_status": volume.protection,
            "lock_status": volume.lock,
            "key_protectors": list(volume.protectors),
        }
        expected = {
            "conversion_status": sorted(ENCRYPTED_CONVERSIONS),
            "protection_status": "Protection On",
        }
        name = f"volume {volume.volume} [{volume.label}]" if volume.label else volume.volume
        if volume.volume in p.exempt_mounts:
            yield Result.not_applicable(
                resource, f"{name} is exempt by the exempt_mounts parameter", observed=observed
            )
        elif volume.locked:
            yield Result.passed(
                resource,
                f"{name} is locked by BitLocker: its contents are encrypted and unreadable here",
                observed=observed,
                expected=expected,
            )
        elif volume.conversion in ENCRYPTED_CONVERSIONS and volume.protection == "Protection On":
            yield Result.passed(
                resource,
                f"{name} is encrypted with BitLocker ({volume.method}, {volume.conversion}, "
                "Protection On)",
                observed=observed,
                expected=expected,
            )
        elif volume.conversion in ENCRYPTED_CONVERSIONS:
            yield Result.failed(
                resource,
                f"{name} is {volume.conversion} but BitLocker protection is off (suspended): "
                "its key is stored in clear on the disk",
                observed=observed,
                expected=expected,
            )
        else:
            yield Result.failed(
                resource,
                f"{name} is not encrypted: BitLocker conversion status is {volume.conversion} "
                f"({volume.percent or 'percentage unknown'})",
                observed=observed,
                expected=expected,
            )
