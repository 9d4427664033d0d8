"""fscrypt home directories: recorded lsattr outputs and the home listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, HOSTS
from tillsyn.collectors.errors import FactParseError, FactPermissionDenied
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.storage_fscrypt import list_subdirectories, parse_lsattr

HOMES = ("/home/alice", "/home/bob", "/home/carol")


def _recording(name: str) -> dict[str, object]:
    return json.loads((COMMANDS / "lsattr-d" / f"{name}.json").read_text())


def test_recorded_flags_tell_the_fscrypt_home_from_the_clear_ones() -> None:
    rec = _recording("fscrypt-homes-root")
    flags = parse_lsattr(str(rec["stdout"]), str(rec["stderr"]), HOMES, "lsattr")
    assert [flags[h].encrypted for h in HOMES] == [True, False, False]
    assert "E" in flags["/home/alice"].flags


def test_a_directory_lsattr_may_not_open_is_unknown_not_clear() -> None:
    rec = _recording("fscrypt-homes-unprivileged")
    flags = parse_lsattr(str(rec["stdout"]), str(rec["stderr"]), HOMES, "lsattr")
    assert flags["/home/carol"].encrypted is None
    assert flags["/home/carol"].error == "permission denied"
    assert flags["/home/bob"].encrypted is False


@pytest.mark.parametrize(
    ("stdout", "stderr", "says"),
    [
        ("---------E----e------- /home/alice\n", "", "said nothing about some paths"),
        ("garbage\n", "", "unexpected lsattr line"),
        ("--e-- /home/mallory\n", "", "unexpected lsattr line"),
        ("", "lsattr: something odd\n", "unexpected lsattr message"),
    ],
)
def test_malformed_lsattr_output_is_a_parse_error(stdout: str, stderr: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_lsattr(stdout, stderr, HOMES, "lsattr")


def test_home_listing_skips_lost_and_found_and_files(tmp_path: Path) -> None:
    for name in ("alice", "lost+found", "bob"):
        (tmp_path / "home" / name).mkdir(parents=True)
    (tmp_path / "home" / "notes.txt").write_text("x")
    assert list_subdirectories(tmp_path, "/home") == ("/home/alice", "/home/bob")
    assert list_subdirectories(tmp_path, "/nohome") == ()


def test_an_unlistable_home_root_is_denied_not_empty(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home").chmod(0o000)
    try:
        if _can_list(tmp_path / "home"):
            pytest.skip("SKIPPED LOUDLY: running as root, which may list a mode-000 directory")
        with pytest.raises(FactPermissionDenied):
            list_subdirectories(tmp_path, "/home")
    finally:
        (tmp_path / "home").chmod(0o755)


def _can_list(path: Path) -> bool:
    try:
        list(path.iterdir())
    except PermissionError:
        return False
    return True


def test_recorded_tree_lists_the_three_homes() -> None:
    facts = HostFacts(root=HOSTS / "debian12-fscrypt-home-loop", env={}, platform="linux")
    assert facts.home_directories("/home") == HOMES
