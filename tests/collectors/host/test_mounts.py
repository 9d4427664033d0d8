"""Mount table, swap list and block-device walks against recorded and reconstructed trees."""

from __future__ import annotations

import pytest

from tests.conftest import HOSTS
from tillsyn.collectors.errors import FactParseError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.mounts import parse_mountinfo, parse_swaps


def _facts(tree: str) -> HostFacts:
    return HostFacts(root=HOSTS / tree, env={}, platform="linux")


def test_recorded_mountinfo_of_this_vm_parses_completely() -> None:
    mounts = _facts("debian12-vm-ext4-plain").mounts()
    root = next(m for m in mounts if m.mountpoint == "/")
    assert (root.device, root.fstype, root.source, root.kind) == (
        "254:0",
        "ext4",
        "/dev/vda",
        "block",
    )
    assert {m.kind for m in mounts} == {"block", "pseudo", "memory"}


def test_octal_escapes_in_mount_points_are_decoded() -> None:
    mounts = _facts("nfs-and-cifs-mounts").mounts()
    assert any(m.mountpoint == "/mnt/Team Share" and m.kind == "network" for m in mounts)


def test_btrfs_anonymous_device_is_resolved_through_its_source() -> None:
    facts = _facts("fedora40-btrfs-on-luks2")
    root = next(m for m in facts.mounts() if m.mountpoint == "/")
    assert root.major == 0
    assert facts.device_of_mount(root) == "253:0"
    stack = facts.block_stack(facts.device_of_mount(root))
    assert stack.encrypted and stack.schemes == ("luks2",)


def test_swap_list_parses_files_and_partitions() -> None:
    (swap,) = _facts("ubuntu2404-lvm-on-luks2").swaps()
    assert (swap.path, swap.type) == ("/swap.img", "file")
    (part,) = _facts("rhel9-unencrypted-lvm").swaps()
    assert part.type == "partition"
    assert _facts("debian12-vm-ext4-plain").swaps() == ()


def test_stack_through_lvm_names_every_layer_down_to_the_clear_disk() -> None:
    facts = _facts("rhel9-unencrypted-lvm")
    stack = facts.block_stack(facts.device_of_swap(facts.swaps()[0]))
    assert [layer.kind for layer in stack.layers] == ["lvm", "partition", "disk"]
    assert stack.unencrypted == ("sda",)
    assert not stack.encrypted


def test_a_truncated_mount_table_is_a_parse_error() -> None:
    with pytest.raises(FactParseError, match="ends mid-line"):
        _facts("garbage-mountinfo").mounts()


def test_a_line_without_the_separator_is_a_parse_error_naming_the_line() -> None:
    text = (HOSTS / "garbage-mountinfo" / "proc/self/mountinfo").read_text() + "\n"
    with pytest.raises(FactParseError, match=r"line \d+ has no '-' separator"):
        parse_mountinfo(text)


@pytest.mark.parametrize("text", ["", "Filename Type\n/dev/sda2 partition x 0 -2\n", "garbage\n"])
def test_malformed_swap_lists_are_parse_errors(text: str) -> None:
    with pytest.raises(FactParseError):
        parse_swaps(text)


def test_a_missing_sysfs_entry_is_unavailable_not_unencrypted() -> None:
    with pytest.raises(FactUnavailable, match="no sysfs entry for block device 254:0"):
        _facts("broken-sysfs").block_stack("254:0")


def test_this_machine_can_be_read_for_real() -> None:
    facts = HostFacts()
    if facts.platform != "linux":
        pytest.skip("SKIPPED LOUDLY: the live mount walk is Linux-only")
    root = next(m for m in facts.mounts() if m.mountpoint == "/")
    if root.kind == "block":
        stack = facts.block_stack(facts.device_of_mount(root))
        assert stack.layers


def test_usb_stick_is_removable_and_the_walk_goes_below_luks() -> None:
    facts = _facts("debian12-usb-media")
    by_point = {m.mountpoint: m for m in facts.mounts()}
    stick = facts.medium(facts.device_of_mount(by_point["/media/alice/STICK"]))
    assert (stick.disks, stick.removable, stick.usb, stick.portable) == (
        ("sdb",),
        True,
        True,
        True,
    )
    # The LUKS2 USB SSD: the encryption walk stops at dm-crypt, the medium walk does not.
    safe = facts.medium(facts.device_of_mount(by_point["/media/alice/SAFE"]))
    assert (safe.disks, safe.removable, safe.usb) == (("sdc",), False, True)


def test_a_disk_without_the_removable_attribute_is_unknown_not_fixed() -> None:
    facts = _facts("debian12-vm-ext4-plain")
    root = next(m for m in facts.mounts() if m.mountpoint == "/")
    medium = facts.medium(facts.device_of_mount(root))
    assert medium.removable is None and not medium.portable
