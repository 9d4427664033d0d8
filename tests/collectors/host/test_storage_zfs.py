"""ZFS encryption facts against recorded and reconstructed zfs/zpool outputs."""

from __future__ import annotations

import json

import pytest

from tests.conftest import COMMANDS, HOSTS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import FactCommandFailed, FactParseError
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.storage_zfs import parse_zfs_get, parse_zpool_devices


def _stdout(name: str) -> str:
    return str(json.loads((COMMANDS / name).read_text())["stdout"])


def _facts(*recordings: str) -> HostFacts:
    return HostFacts(
        root=HOSTS / "ubuntu2204-zfs-root",
        runner=RecordedRunner.from_files(COMMANDS / r for r in recordings),
        env={},
        platform="linux",
        now=PINNED_NOW,
    )


def test_native_encryption_is_read_per_dataset() -> None:
    datasets = parse_zfs_get(_stdout("zfs-get/ubuntu2204-native-encryption.json"), "zfs get")
    root = datasets["rpool/ROOT/ubuntu_bcqdgs"]
    assert (root.encryption, root.keystatus, root.encryptionroot) == (
        "aes-256-gcm",
        "available",
        "rpool",
    )
    assert root.encrypted and root.pool == "rpool"
    boot = datasets["bpool/BOOT/ubuntu_bcqdgs"]
    assert not boot.encrypted and boot.encryptionroot == ""


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("rpool encryption off\n", "not 3 tab-separated fields"),
        ("rpool\tcompression\tlz4\n", "unexpected property"),
        (
            "rpool\tencryption\tsomething\nrpool\tkeystatus\t-\nrpool\tencryptionroot\t-\n",
            "unknown encryption",
        ),
        (
            "rpool\tencryption\toff\nrpool\tkeystatus\tmaybe\nrpool\tencryptionroot\t-\n",
            "unknown keystatus",
        ),
        (_stdout("zfs-get/truncated-output.json"), "lacks keystatus, encryptionroot"),
    ],
)
def test_malformed_zfs_get_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_zfs_get(stdout, "zfs get")


def test_recorded_missing_kernel_module_is_a_command_failure() -> None:
    with pytest.raises(FactCommandFailed, match="The ZFS modules are not loaded"):
        _facts("zfs-get/module-not-loaded.json").zfs_datasets()


def test_pool_devices_lead_through_sysfs_to_luks() -> None:
    facts = _facts("zpool-status/rpool-on-luks2.json")
    (stack,) = facts.zfs_pool_stacks("rpool")
    assert stack.encrypted and stack.schemes == ("luks2",)
    clear = _facts("zpool-status/rpool-on-clear-partition.json").zfs_pool_stacks("rpool")
    assert clear[0].unencrypted == ("nvme0n1",)


def test_zpool_status_sections_mirrors_and_idle_spares() -> None:
    text = (
        "  pool: tank\n state: ONLINE\nconfig:\n\n"
        "\tNAME           STATE     READ WRITE CKSUM\n"
        "\ttank           ONLINE       0     0     0\n"
        "\t  mirror-0     ONLINE       0     0     0\n"
        "\t    /dev/dm-1  ONLINE       0     0     0\n"
        "\t    /dev/dm-2  ONLINE       0     0     0\n"
        "\tlogs\n"
        "\t  /dev/nvme0n1p5  ONLINE       0     0     0\n"
        "\tspares\n"
        "\t  /dev/sdd1    AVAIL\n\n"
        "errors: No known data errors\n"
    )
    assert parse_zpool_devices(text, "tank", "zpool status") == (
        "/dev/dm-1",
        "/dev/dm-2",
        "/dev/nvme0n1p5",
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("  pool: tank\n state: ONLINE\n", "no 'config:' section"),
        ("config:\n\n\tNAME STATE\n\tother ONLINE\n\t  /dev/sda ONLINE\n", "pool tank is not"),
        ("config:\n\n\tNAME STATE\n\ttank ONLINE\n\t  mirror-0 ONLINE\n", "no device paths"),
    ],
)
def test_malformed_zpool_status_is_a_parse_error(text: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_zpool_devices(text, "tank", "zpool status")
