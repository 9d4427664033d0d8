"""Encryption at rest on the host.

``host.encryption.disk`` passes for a filesystem or swap area when every path from its
block device down to physical storage goes through dm-crypt (LUKS1, LUKS2, or plain
dm-crypt when allowed), with LVM, RAID or partitions anywhere in between; it keeps the
layers it walked as evidence. Memory, pseudo, network and union filesystems are not
applicable, each with its reason; a filesystem whose device cannot be read is ``error``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tillsyn.checks._result import Resource, Result
from tillsyn.checks._spec import check
from tillsyn.collectors.errors import FactError
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.blockdev import BlockStack
from tillsyn.collectors.host.mounts import Mount

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


def _primary(group: list[Mount]) -> Mount:
    """The mount that names a filesystem: its root mounted at the shortest path."""
    return min(group, key=lambda m: (m.root != "/", len(m.mountpoint), m.mountpoint))


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
    accepted = ["luks1", "luks2", "bitlk", "tcrypt"] + (
        ["plain"] if p.accept_plain_dm_crypt else []
    )
    expected = {"encryption": accepted}
    if stack.unencrypted:
        clear = ", ".join(stack.unencrypted)
        return Result.failed(
            resource,
            f"{what} is not encrypted: {clear} holds it in clear ({layers})",
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
    title="Local filesystems and swap are encrypted at rest",
    target="host",
    controls=("iso27001:2022/A.8.1", "iso27001:2022/A.8.24", "nis2/9.2.a"),
    severity="high",
    interval="6h",
    params=DiskParams,
    facts=("host.mounts", "host.swaps", "host.block_stack"),
    needs=("read /proc/self/mountinfo, /proc/swaps and /sys/dev/block (no root needed)",),
    remediation="Encrypt the device with LUKS2 (cryptsetup reencrypt --encrypt for an existing "
    "one, or reinstall with full-disk encryption) and use encrypted or zram swap.",
)
def disk(facts: HostFacts, p: DiskParams) -> Iterator[Result]:
    mounts = facts.mounts()
    groups: dict[str, list[Mount]] = {}
    not_applicable: dict[str, list[str]] = {}
    for mount in mounts:
        if mount.kind == "block":
            key = mount.device if mount.major != 0 else f"{mount.fstype}:{mount.source}"
            groups.setdefault(key, []).append(mount)
        elif mount.kind == "zfs":
            yield Result.errored(
                Resource("filesystem", mount.mountpoint),
                f"{mount.mountpoint} is ZFS dataset {mount.source}, whose native encryption "
                "this version does not read",
                observed={"fstype": "zfs", "dataset": mount.source},
            )
        else:
            not_applicable.setdefault(mount.kind, []).append(mount.mountpoint)

    for group in groups.values():
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
            stack = facts.block_stack(facts.device_of_mount(primary))
        except FactError as exc:
            yield Result.errored(
                resource,
                f"could not tell whether {primary.mountpoint} is encrypted: {exc}",
                observed=observed,
            )
            continue
        yield _judge(resource, primary.mountpoint, stack, p, observed)

    for kind, points in sorted(not_applicable.items()):
        yield Result.not_applicable(
            Resource("mounts", f"{kind}-filesystems"),
            f"{len(points)} {kind} mount(s) not applicable: {NOT_APPLICABLE_REASONS[kind]}",
            observed={"mountpoints": sorted(set(points))},
        )

    yield from _swap(facts, p)


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
