"""FileVault and BitLocker parsers against reconstructed outputs, malformed ones included."""

from __future__ import annotations

import json

import pytest

from tests.conftest import COMMANDS
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import FactCommandFailed, FactParseError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.storage_bitlocker import parse_manage_bde_status
from tillsyn.collectors.host.storage_filevault import parse_fdesetup_status


def _stdout(name: str) -> str:
    return str(json.loads((COMMANDS / name).read_text())["stdout"])


@pytest.mark.parametrize(
    ("name", "on", "progress", "encrypted"),
    [
        ("on", True, "", True),
        ("off", False, "", False),
        ("encrypting", True, "encryption", False),
        ("deferred", False, "", False),
    ],
)
def test_fdesetup_states(name: str, on: bool, progress: str, encrypted: bool) -> None:
    status = parse_fdesetup_status(_stdout(f"fdesetup-status/{name}.json"), "fdesetup status")
    assert (status.on, status.progress, status.encrypted) == (on, progress, encrypted)


def test_pending_encryption_has_no_percentage() -> None:
    status = parse_fdesetup_status(
        "FileVault is On.\nEncryption in progress: Pending\n", "fdesetup status"
    )
    assert status.progress == "encryption" and status.percent is None and not status.encrypted


@pytest.mark.parametrize("stdout", ["", "FileVault est activé.\n", "FileVault is maybe.\n"])
def test_unexpected_fdesetup_output_is_a_parse_error(stdout: str) -> None:
    with pytest.raises(FactParseError):
        parse_fdesetup_status(stdout, "fdesetup status")


def test_manage_bde_volumes_and_protectors() -> None:
    volumes = parse_manage_bde_status(
        _stdout("manage-bde-status/os-encrypted-data-clear-locked.json"), "manage-bde -status"
    )
    c, d, e = volumes
    assert (c.volume, c.kind, c.conversion, c.protection) == (
        "C:",
        "OS",
        "Used Space Only Encrypted",
        "Protection On",
    )
    assert c.protectors == ("TPM", "Numerical Password")
    assert d.conversion == "Fully Decrypted" and d.protectors == ()
    assert e.locked and e.protectors == ("Password",)


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("", "not manage-bde's English status output"),
        ("Disk volumes that can be protected with\nBitLocker Drive Encryption:\n", "no 'Volume"),
        ("Volume C: [OS]\n[OS Volume]\n\n    Size:                 10 GB\n", "lacks Conversion"),
        ("Volume C: [OS]\n[OS Volume]\n\n    Größe: 10 GB\n", "unexpected line"),
    ],
)
def test_malformed_manage_bde_output_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_manage_bde_status(stdout, "manage-bde -status")


def test_manage_bde_error_on_stdout_is_kept_without_the_banner() -> None:
    runner = RecordedRunner.from_files([COMMANDS / "manage-bde-status/access-denied.json"])
    facts = HostFacts(root="/nonexistent", runner=runner, env={}, platform="win32")
    with pytest.raises(FactCommandFailed, match="An attempt to access a required resource") as e:
        facts.bitlocker_volumes()
    assert "Copyright" not in str(e.value)


def test_platform_facts_refuse_other_platforms() -> None:
    facts = HostFacts(root="/nonexistent", runner=RecordedRunner(), env={}, platform="linux")
    with pytest.raises(FactUnavailable, match="not implemented for platform linux"):
        facts.filevault()
    with pytest.raises(FactUnavailable, match="not implemented for platform linux"):
        facts.bitlocker_volumes()
