"""SSH authorized keys on macOS and Windows: parsers and collector on reconstructed outputs.

No Mac or Windows machine was at hand: dscl, PowerShell and sshd.exe outputs and the trees
are reconstructed (each fixture's provenance names its sources); the keys are fresh
ssh-keygen test keys whose fingerprints ssh-keygen printed. These tests pin what the
readers accept, that anything else (another format, a hang, an unreadable file) is an
error rather than "no keys", and the Windows path convention of recorded trees.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, FIXTURES, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.agent.evidence import find_secret, jsonable
from tillsyn.checks.host import access as checks
from tillsyn.collectors.errors import (
    FactParseError,
    FactPermissionDenied,
    FactTimeout,
    FactUnavailable,
)
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host import access_ssh_platforms as sshp
from tillsyn.collectors.host import access_ssh_windows as sshw
from tillsyn.collectors.host import windows_paths as winpath
from tillsyn.collectors.host.access_ssh import parse_sshd_t

CASES = FIXTURES / "checks" / "host.access.ssh_keys"
MAC_TREE = CASES / "pass-macos14-approved" / "root"
WIN_TREE = CASES / "pass-win11-approved" / "root"
ADMIN_FILE = r"C:\ProgramData\ssh\administrators_authorized_keys"
SSHD_EXE = r"C:\Windows\System32\OpenSSH\sshd.exe"
SYSNATIVE_SSHD_EXE = r"C:\Windows\Sysnative\OpenSSH\sshd.exe"
MSI_SSHD_EXE = r"C:\Program Files\OpenSSH\sshd.exe"
NO_SSHD = [SSHD_EXE, SYSNATIVE_SSHD_EXE, MSI_SSHD_EXE]
PROFILES = "powershell-profile-list/win11"
#: What ``ssh-keygen -lf`` printed for the fixture keys when they were made.
FINGERPRINTS = {
    "alice@mbp-alice": "SHA256:BBJb3wJ5jgnc+c/JWxdDUmVIbbAqZHHhJR+13KlkYrA",
    "alice-yubikey-backup": "SHA256:8gcnxNR2x3YXKXPpT4z4NrQC0XEBLQ0BkZKk+brWUTY",
    "it-admin@helpdesk": "SHA256:fOEVQ6PBfwgZjlfGJeWEVYnrdACj3pGm2zK8usv7A3A",
    "alice@LAPTOP-7Q2K": "SHA256:43DK7+MbJleHE7RPV9jPYWXr8mVtiu86Ps0a81ZdmbI",
    "deploy@build-01": "SHA256:bNUlq1Of8pkQZLkx7LbVFDQ9dcZxT7SrFhvOnQ4kC8Y",
}


def _rec(name: str) -> dict[str, object]:
    return dict(json.loads((COMMANDS / f"{name}.json").read_text()))


def _host(
    root: Path,
    platform: str,
    *recordings: str | dict[str, object],
    env: dict[str, str] | None = None,
    **kwargs: list[str],
) -> HostFacts:
    loaded = [_rec(r) if isinstance(r, str) else r for r in recordings]
    return HostFacts(
        root=root,
        runner=RecordedRunner(loaded, **kwargs),
        env=env or {},
        platform=platform,
        now=PINNED_NOW,
    )


def _sshd(argv0: str, returncode: int, stdout: str = "", stderr: str = "") -> dict[str, object]:
    return {"argv": [argv0, "-T"], "returncode": returncode, "stdout": stdout, "stderr": stderr}


def _win_sshd_t() -> str:
    return str(_rec("sshd-T/win11-system")["stdout"])


# -- macOS: dscl -----------------------------------------------------------------------


def test_dscl_users_give_short_name_uid_and_home() -> None:
    holders = sshp.parse_dscl_users(str(_rec("dscl-readall-users-homes/macos14")["stdout"]))
    by_name = {h.name: h for h in holders}
    assert by_name["root"] == sshp.KeyHolder("root", "/var/root", 0)  # not BUILTIN\Local System
    assert by_name["nobody"].uid == -2
    assert by_name["daemon"].home == "/var/root"  # shares root's home, as on every Mac
    assert by_name["_amavisd"].home == "/var/virusmails"
    assert (by_name["alice"].uid, by_name["alice"].home) == (501, "/Users/alice")
    assert all(h.sid is None for h in holders)


def test_dscl_record_without_home_gets_the_empty_home_getpwnam_gives() -> None:
    plist = (
        '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><array><dict>'
        "<key>dsAttrTypeStandard:RecordName</key><array><string>x</string></array>"
        "<key>dsAttrTypeStandard:UniqueID</key><array><string>600</string></array>"
        "</dict></array></plist>"
    )
    assert sshp.parse_dscl_users(plist) == (sshp.KeyHolder("x", "", 600),)


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("", "not a property list"),
        ("RecordName: root\nUniqueID: 0\n", "not a property list"),
        ('<plist version="1.0"><array/></plist>', "not a non-empty list"),
        ('<plist version="1.0"><dict/></plist>', "not a non-empty list"),
        ('<plist version="1.0"><array><string>x</string></array></plist>', "not a dictionary"),
        (
            '<plist version="1.0"><array><dict><key>RecordName</key><array><string>x</string>'
            "</array></dict></array></plist>",
            "no RecordName or UniqueID",
        ),
        (
            '<plist version="1.0"><array><dict><key>RecordName</key><array><string>x</string>'
            "</array><key>UniqueID</key><array><string>5o1</string></array></dict></array>"
            "</plist>",
            "UniqueID is not a number",
        ),
        (
            '<plist version="1.0"><array><dict><key>RecordName</key><string>x</string>'
            "</dict></array></plist>",
            "not a list of strings",
        ),
    ],
)
def test_dscl_garbage_is_an_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        sshp.parse_dscl_users(stdout)


# -- Windows: ProfileList --------------------------------------------------------------


def _profiles_stdout(name: str = PROFILES) -> str:
    return str(_rec(name)["stdout"])


def test_profile_list_gives_folder_name_home_and_sid() -> None:
    holders = sshp.parse_profile_list(_profiles_stdout(), "", {})
    by_name = {h.name: h for h in holders}
    assert list(by_name) == [
        "systemprofile",
        "LocalService",
        "NetworkService",
        "Administrator",
        "alice",
        "carol",
    ]
    assert by_name["systemprofile"].home == r"C:\Windows\system32\config\systemprofile"
    assert by_name["systemprofile"].sid == "S-1-5-18"
    assert by_name["alice"].home == r"C:\Users\alice"
    assert by_name["alice"].sid == "S-1-5-21-3623811015-3361044348-30300820-1001"
    assert all(h.uid is None for h in holders)


def test_profile_list_non_ascii_folder_arrives_exactly() -> None:
    stdout = _profiles_stdout("powershell-profile-list/win11-bjoern")
    assert stdout.isascii() and "Bj\\u00f6rn" in stdout
    holders = sshp.parse_profile_list(stdout, "", {})
    assert holders[-1] == sshp.KeyHolder(
        "Björn", r"C:\Users\Björn", None, "S-1-5-21-3623811015-3361044348-30300820-1003"
    )


def _profiles(*subkeys: tuple[str, str | None], kind: str = "ExpandString") -> str:
    items = [
        {"SID": sid, "ProfileImagePath": path, "Kind": kind if path is not None else None}
        for sid, path in subkeys
    ]
    return json.dumps({"Profiles": items}) + "\r\n"


def test_profile_list_skips_bak_copies_and_keys_without_a_path_and_tells_names_apart() -> None:
    stdout = _profiles(
        ("S-1-5-18", r"%systemroot%\system32\config\systemprofile"),
        ("S-1-5-21-1-2-3-1001", r"C:\Users\alice"),
        ("S-1-5-21-1-2-3-1001.bak", r"C:\Users\alice"),
        ("S-1-5-21-1-2-3-1002", None),
        ("S-1-5-21-9-9-9-1105", r"D:\Profiles\ALICE"),
    )
    holders = sshp.parse_profile_list(stdout, "", {})
    assert [(h.name, h.home) for h in holders][1:] == [
        ("alice", r"C:\Users\alice"),
        ("ALICE (S-1-5-21-9-9-9-1105)", r"D:\Profiles\ALICE"),
    ]


def test_profile_list_paths_use_the_environment_when_it_is_there() -> None:
    stdout = _profiles(("S-1-5-18", r"%systemroot%\system32\config\systemprofile"))
    (system,) = sshp.parse_profile_list(stdout, "", {"SYSTEMROOT": r"D:\WINDOWS"})
    assert system.home == r"D:\WINDOWS\system32\config\systemprofile"


@pytest.mark.parametrize(
    ("stdout", "stderr", "says"),
    [
        ("", "", "no output"),
        ("ERROR: Access is denied.\r\n", "", "not JSON"),
        (_profiles(("S-1-5-18", "C:\\x")), "WARNING: x", "PowerShell reported"),
        (json.dumps([]), "", "not the script's object with Profiles"),
        (json.dumps({"Profiles": None}), "", "no profile at all"),
        (json.dumps({"Profiles": ["S-1-5-18"]}), "", "a profile is not a JSON object"),
        (_profiles(("alice", "C:\\x")), "", "a profile without a SID"),
        (_profiles(("S-1-5-21-1-2-3-1001", r"%HOMESHARE%\alice")), "", "HOMESHARE"),
        (_profiles(("S-1-5-21-1-2-3-1001", r"\\fs01\profiles\alice")), "", "not a drive-letter"),
        (
            _profiles(("S-1-5-21-1-2-3-1001", "x"), kind="DWord"),
            "",
            "ProfileImagePath is DWord",
        ),
    ],
)
def test_profile_list_garbage_is_an_error(stdout: str, stderr: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        sshp.parse_profile_list(stdout, stderr, {})


def test_profile_list_script_prints_ascii_json_from_the_64_bit_registry() -> None:
    argv = sshp.POWERSHELL_PROFILES
    assert argv[0] == r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    script = argv[-1]
    assert script.startswith("[Console]::OutputEncoding = [Text.UTF8Encoding]::new($false); ")
    assert "$ProgressPreference = 'SilentlyContinue'" in script
    assert "OpenBaseKey('LocalMachine', 'Registry64')" in script
    assert "DoNotExpandEnvironmentNames" in script
    assert "'[^\\x00-\\x7F]'" in script and "'\\u{0:x4}'" in script
    assert "reg" not in {a.lower() for a in argv}


def test_access_fixtures_use_the_collectors_argv() -> None:
    for path in (COMMANDS / "powershell-profile-list").glob("*.json"):
        assert json.loads(path.read_text())["argv"] == sshp.POWERSHELL_PROFILES, path
    for path in (COMMANDS / "dscl-readall-users-homes").glob("*.json"):
        assert json.loads(path.read_text())["argv"] == sshp.DSCL_USERS, path
    assert sshp.DSCL_USERS[0] == "/usr/bin/dscl"  # never whatever PATH finds


def test_a_profile_whose_folder_does_not_exist_is_an_error_not_no_keys(tmp_path: Path) -> None:
    (tmp_path / "C/Users/alice").mkdir(parents=True)
    host = _host(tmp_path, "win32", _sshd(SSHD_EXE, 0, _win_sshd_t()), PROFILES)
    assert host.authorized_keys("alice") == ()  # the folder is there: no keys file, no keys
    with pytest.raises(FactUnavailable, match=r"the profile folder of carol .* does not exist"):
        host.authorized_keys("carol")
    (tmp_path / "C/Users/carol").write_text("")
    with pytest.raises(FactUnavailable, match="is not a folder"):
        _host(tmp_path, "win32", _sshd(SSHD_EXE, 0, _win_sshd_t()), PROFILES).authorized_keys(
            "carol"
        )


# -- Windows paths -----------------------------------------------------------------------

ALICE = sshp.KeyHolder("alice", r"C:\Users\alice", None, "S-1-5-21-1-2-3-1001")


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        (".ssh/authorized_keys", r"C:\Users\alice\.ssh\authorized_keys"),
        ("%h/.ssh/keys", r"C:\Users\alice\.ssh\keys"),
        ("__PROGRAMDATA__/ssh/administrators_authorized_keys", ADMIN_FILE),
        ("C:/ssh-keys/%u", r"C:\ssh-keys\alice"),
        ("/c:/ssh-keys/%u", r"C:\ssh-keys\alice"),
        (r"D:\keys\100%%\%u", r"D:\keys\100%\alice"),
    ],
)
def test_windows_authorized_keys_file_entries(pattern: str, path: str) -> None:
    assert sshp.windows_key_path(pattern, ALICE, {}) == path


@pytest.mark.parametrize(
    ("pattern", "says"), [("C:/keys/%U", "only %%, %h and %u"), ("/keys/%u", "no drive letter")]
)
def test_windows_entries_that_cannot_be_resolved_are_errors(pattern: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        sshp.windows_key_path(pattern, ALICE, {})


def test_recorded_tree_keeps_a_windows_path_under_its_drive_letter(tmp_path: Path) -> None:
    assert winpath.normalize("c:/Users//alice/") == "C:\\Users\\alice\\"
    assert winpath.host_file(tmp_path, r"c:\Users\alice\.ssh/x") == (
        tmp_path / "C" / "Users" / "alice" / ".ssh" / "x"
    )
    assert winpath.host_file(Path("/"), r"C:\ProgramData") == Path(r"C:\ProgramData")
    (tmp_path / "C/ProgramData/ssh/conf.d").mkdir(parents=True)
    for name in ("20-b.conf", "10-a.conf", ".hidden.conf"):
        (tmp_path / "C/ProgramData/ssh/conf.d" / name).write_text("")
    assert winpath.host_glob(tmp_path, "C:/ProgramData/ssh/conf.d/*", "f") == [
        r"C:\ProgramData\ssh\conf.d\10-a.conf",
        r"C:\ProgramData\ssh\conf.d\20-b.conf",
    ]
    # Windows names are case-insensitive: a wildcard matches whatever the spelling
    assert winpath.host_glob(tmp_path, "C:/ProgramData/ssh/conf.d/*.CONF", "f") == [
        r"C:\ProgramData\ssh\conf.d\10-a.conf",
        r"C:\ProgramData\ssh\conf.d\20-b.conf",
    ]
    assert winpath.host_glob(tmp_path, "C:/ProgramData/ssh/nowhere/*", "f") == []
    assert winpath.host_glob(tmp_path, "C:/ProgramData/ssh/conf.d/99-none.conf", "f") == []
    assert winpath.host_glob(tmp_path, "C:/ProgramData/ssh/conf.d/10-a.conf", "f") == [
        r"C:\ProgramData\ssh\conf.d\10-a.conf"
    ]
    for bad in (r"\\fs01\share\keys", "keys", "C:keys"):
        assert not winpath.is_absolute(bad)
        with pytest.raises(ValueError, match="not a drive-letter path"):
            winpath.host_file(tmp_path, bad)


def test_an_unlistable_directory_is_an_error_never_no_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "C/ProgramData/ssh/conf.d").mkdir(parents=True)
    real = os.scandir

    def scandir(path: object) -> object:
        if str(path).endswith("conf.d"):
            raise PermissionError(13, "Permission denied")
        return real(path)  # type: ignore[call-overload]

    monkeypatch.setattr(winpath.os, "scandir", scandir)
    with pytest.raises(FactPermissionDenied, match="cannot be listed") as caught:
        winpath.host_glob(tmp_path, "C:/ProgramData/ssh/conf.d/*", "f")
    assert caught.value.call == r"C:\ProgramData\ssh\conf.d"


def test_a_path_without_wildcards_that_cannot_be_looked_at_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.stat

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(path).endswith("keys.conf"):
            raise OSError(5, "Input/output error")
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(winpath.os, "stat", stat)
    with pytest.raises(FactUnavailable, match="cannot be looked at") as caught:
        winpath.host_glob(tmp_path, "C:/ProgramData/ssh/keys.conf", "f")
    assert caught.value.call == r"C:\ProgramData\ssh\keys.conf"


# -- Windows: sshd_config and sshd.exe -T ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "args"),
    [
        ('"C:/Program Data/keys" .ssh/ak', ["C:/Program Data/keys", ".ssh/ak"]),
        (r"C:\ssh\keys   # a comment", [r"C:\ssh\keys"]),
        (r'a\ b "q\"x" c#d', ["a b", 'q"x', "c#d"]),
    ],
)
def test_sshd_config_arguments_split_as_openssh_does(value: str, args: list[str]) -> None:
    assert sshw.split_args(value) == args


def test_sshd_config_unterminated_quote_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "C/ProgramData/ssh").mkdir(parents=True)
    (tmp_path / "C/ProgramData/ssh/sshd_config").write_text('AuthorizedKeysFile "C:/x\n')
    with pytest.raises(FactParseError, match="unterminated quote"):
        _host(tmp_path, "win32", _sshd(SSHD_EXE, 0, _win_sshd_t())).sshd_keys_config()


def _config_tree(tmp_path: Path, main: str, **included: str) -> Path:
    ssh = tmp_path / "C" / "ProgramData" / "ssh"
    (ssh / "sshd_config.d").mkdir(parents=True)
    (ssh / "sshd_config").write_text(main)
    for name, text in included.items():
        (ssh / "sshd_config.d" / name).write_text(text)
    return tmp_path


def test_match_blocks_includes_and_first_value_wins(tmp_path: Path) -> None:
    root = _config_tree(
        tmp_path,
        "Include sshd_config.d/*\n"
        "AuthorizedKeysFile .ssh/ignored\n"
        "Match Group Administrators\n"
        "  AuthorizedKeysFile __PROGRAMDATA__/ssh/administrators_authorized_keys\n"
        "Match group administrators\n"
        "  AuthorizedKeysFile C:/second/block/is/ignored\n",
        **{
            "10-first.conf": "AuthorizedKeysFile .ssh/authorized_keys C:/keys/%u\n"
            "Match User deploy\n  AuthorizedKeysCommand C:/bin/keys.exe %u\n",
            "20-after.conf": "AuthorizedKeysFile .ssh/also_ignored\n",
        },
    )
    config = _host(root, "win32", _sshd(SSHD_EXE, 1, stderr="Access is denied")).sshd_keys_config()
    assert config.files == (".ssh/authorized_keys", "C:/keys/%u")  # the Match in 10- ended there
    assert config.source == r"C:\ProgramData\ssh\sshd_config"
    assert "sshd -T failed (exited with status 1: Access is denied)" in config.note
    assert config.group_files == (("Administrators", (ADMIN_FILE,)),)
    ((label, why),) = config.unevaluated
    assert label == r"Match User deploy (C:\ProgramData\ssh\sshd_config.d\10-first.conf:2)"
    assert why.startswith("AuthorizedKeysCommand set inside 'Match User deploy'")


@pytest.mark.parametrize("files", [".ssh/admin_keys", "C:/keys/%u", "__PROGRAMDATA__/ssh/%u_keys"])
def test_administrators_files_that_depend_on_the_user_are_not_evaluated(files: str) -> None:
    blocks = [sshw.MatchBlock("Group administrators", "f:9", (files,))]
    groups, unevaluated = sshw.match_keys(blocks, r"C:\ProgramData")
    assert groups == ()
    assert [label for label, _why in unevaluated] == ["Match Group administrators (f:9)"]


def test_administrators_file_none_means_no_file_and_nothing_unevaluated() -> None:
    blocks = [sshw.MatchBlock("Group administrators", "f:9", ("none",))]
    assert sshw.match_keys(blocks, r"C:\ProgramData") == ((), ())


def test_windows_sshd_t_recording_and_shipped_match_block() -> None:
    runner = _sshd(SSHD_EXE, 0, _win_sshd_t())
    config = _host(WIN_TREE, "win32", runner).sshd_keys_config()
    assert config.files == (".ssh/authorized_keys",)
    assert (config.source, config.note, config.command) == ("sshd -T", "", None)
    assert config.group_files == (("Administrators", (ADMIN_FILE,)),)
    assert config.unevaluated == ()


def test_msi_install_is_used_when_the_optional_feature_is_absent() -> None:
    missing = [SSHD_EXE, SYSNATIVE_SSHD_EXE]
    host = _host(WIN_TREE, "win32", _sshd(MSI_SSHD_EXE, 0, _win_sshd_t()), missing=missing)
    assert host.sshd_keys_config().source == "sshd -T"


def test_a_32_bit_agent_finds_the_optional_feature_through_sysnative() -> None:
    # A 32-bit process asking for System32 gets SysWOW64, where the feature's sshd is not.
    recordings = [_sshd(SYSNATIVE_SSHD_EXE, 0, _win_sshd_t())]
    host = _host(WIN_TREE, "win32", *recordings, missing=[SSHD_EXE])
    assert host.sshd_keys_config().source == "sshd -T"
    assert sshw.SSHD_EXES[1] == r"{SystemRoot}\Sysnative\OpenSSH\sshd.exe"


def test_sshd_t_fine_but_sshd_config_unreadable_is_an_unevaluated_match(tmp_path: Path) -> None:
    config = _host(tmp_path, "win32", _sshd(SSHD_EXE, 0, _win_sshd_t())).sshd_keys_config()
    assert config.files == (".ssh/authorized_keys",)
    assert config.group_files == ()
    ((label, why),) = config.unevaluated
    assert label == "Match" and "unreadable (does not exist)" in why


def test_sshd_config_without_authorized_keys_file_gives_the_openssh_default(
    tmp_path: Path,
) -> None:
    root = _config_tree(tmp_path, "Subsystem sftp sftp-server.exe\n")
    config = _host(root, "win32", missing=NO_SSHD).sshd_keys_config()
    assert config.files == (".ssh/authorized_keys", ".ssh/authorized_keys2")
    assert config.source == "OpenSSH default"
    assert config.note.startswith("sshd is not installed;")


def _deny_reading(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    real = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self == denied:
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)


def test_unreadable_sshd_config_is_an_error_never_the_shipped_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _config_tree(tmp_path, "AuthorizedKeysFile C:/keys/%u\n")
    _deny_reading(monkeypatch, root / "C/ProgramData/ssh/sshd_config")
    with pytest.raises(FactPermissionDenied) as caught:
        _host(root, "win32", missing=NO_SSHD).sshd_keys_config()
    assert caught.value.call == r"C:\ProgramData\ssh\sshd_config"
    assert "permission denied" in caught.value.reason
    assert "shipped" not in str(caught.value)


def test_an_unreadable_included_file_is_named_never_the_shipped_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    included = r"C:\ProgramData\ssh\sshd_config.d\10-keys.conf"
    root = _config_tree(
        tmp_path,
        "Include sshd_config.d/*.conf\n",
        **{"10-keys.conf": "AuthorizedKeysFile C:/keys/%u\n"},
    )
    _deny_reading(monkeypatch, root / "C/ProgramData/ssh/sshd_config.d/10-keys.conf")
    with pytest.raises(FactPermissionDenied) as caught:
        _host(root, "win32", missing=NO_SSHD).sshd_keys_config()
    assert caught.value.call == included
    assert f"{included} could not be read (permission denied)" in caught.value.reason
    assert r"included by C:\ProgramData\ssh\sshd_config" in caught.value.reason
    # With sshd -T answering, the global files are known; the Match blocks are an error.
    config = _host(root, "win32", _sshd(SSHD_EXE, 0, _win_sshd_t())).sshd_keys_config()
    assert config.files == (".ssh/authorized_keys",)
    ((label, why),) = config.unevaluated
    assert label == "Match" and why.startswith(f"{included} could not be read")


def test_an_unlistable_include_directory_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _config_tree(tmp_path, "Include sshd_config.d/*\n", **{"10.conf": ""})
    real = os.scandir

    def scandir(path: object) -> object:
        if str(path).endswith("sshd_config.d"):
            raise PermissionError(13, "Permission denied")
        return real(path)  # type: ignore[call-overload]

    monkeypatch.setattr(winpath.os, "scandir", scandir)
    with pytest.raises(FactPermissionDenied) as caught:
        _host(root, "win32", missing=NO_SSHD).sshd_keys_config()
    assert caught.value.call == r"C:\ProgramData\ssh\sshd_config.d"


def test_a_missing_include_without_wildcards_is_skipped_as_sshd_does(tmp_path: Path) -> None:
    root = _config_tree(tmp_path, "Include C:/ProgramData/ssh/nothing.conf\nAuthorizedKeysFile x\n")
    assert _host(root, "win32", missing=NO_SSHD).sshd_keys_config().files == ("x",)


@pytest.mark.parametrize(
    ("include", "says"),
    [
        ("//fs01/ssh/keys.conf", "UNC path"),
        (r"\\\\fs01\\ssh\\keys.conf", "UNC path"),  # sshd_config doubles backslashes
        ("/etc/ssh/keys.conf", "no drive letter"),
        (r"\ssh\keys.conf", "no drive letter"),
        ("D:keys.conf", "no drive letter"),
    ],
)
def test_includes_that_cannot_be_placed_are_refused_naming_the_line(
    tmp_path: Path, include: str, says: str
) -> None:
    root = _config_tree(tmp_path, f"# header\nInclude {include}\n")
    with pytest.raises(FactParseError, match=says) as caught:
        _host(root, "win32", missing=NO_SSHD).sshd_keys_config()
    assert caught.value.call == r"C:\ProgramData\ssh\sshd_config:2"


def test_a_programdata_that_is_not_a_drive_path_is_refused(tmp_path: Path) -> None:
    env = {"ProgramData": r"\\fs01\ProgramData"}
    with pytest.raises(FactParseError, match="not a drive-letter path"):
        _host(tmp_path, "win32", missing=NO_SSHD, env=env).sshd_keys_config()
    with pytest.raises(FactParseError, match="no drive letter"):
        sshp.windows_key_path("__PROGRAMDATA__/ssh/keys", ALICE, env)


@pytest.mark.parametrize(
    ("recording", "error"),
    [("sshd-T/win11-garbage", FactParseError), ("sshd-T/truncated", FactParseError)],
)
def test_windows_sshd_t_garbage_is_an_error(recording: str, error: type[Exception]) -> None:
    stdout = str(_rec(recording)["stdout"])
    with pytest.raises(error):
        _host(WIN_TREE, "win32", _sshd(SSHD_EXE, 0, stdout)).sshd_keys_config()


def test_sshd_t_timeout_is_an_error_on_every_platform() -> None:
    with pytest.raises(FactTimeout):
        _host(WIN_TREE, "win32", hanging=[SSHD_EXE]).sshd_keys_config()
    with pytest.raises(FactTimeout):
        _host(MAC_TREE, "darwin", hanging=["/usr/sbin/sshd"]).sshd_keys_config()
    with pytest.raises(FactTimeout):
        _host(MAC_TREE, "linux", hanging=["/usr/sbin/sshd"]).sshd_keys_config()


# -- macOS: sshd -T ----------------------------------------------------------------------


def test_macos_sshd_t_recordings() -> None:
    root = parse_sshd_t(str(_rec("sshd-T/macos14-root")["stdout"]), "sshd -T")
    assert root.files == (".ssh/authorized_keys", ".ssh/authorized_keys2")
    assert root.command is None
    with pytest.raises(FactParseError, match="no authorizedkeysfile"):
        parse_sshd_t(str(_rec("sshd-T/macos14-empty-output")["stdout"]), "sshd -T")


def test_macos_unprivileged_fallback_follows_apple_include() -> None:
    root = CASES / "pass-macos14-unprivileged-fallback" / "root"
    config = _host(root, "darwin", "sshd-T/macos14-unprivileged").sshd_keys_config()
    assert config.files == (".ssh/authorized_keys", "/etc/ssh/authorized_keys.d/%u")
    assert config.source == "/etc/ssh/sshd_config"


# -- reading keys ------------------------------------------------------------------------


def test_fixture_keys_read_with_the_fingerprints_ssh_keygen_printed() -> None:
    mac = _host(MAC_TREE, "darwin", "sshd-T/macos14-root", "dscl-readall-users-homes/macos14")
    win = _host(WIN_TREE, "win32", "sshd-T/win11-system", PROFILES)
    keys = [*mac.authorized_keys("alice"), *mac.authorized_keys("root")]
    keys += [*win.authorized_keys("alice"), *win.authorized_keys_file(ADMIN_FILE)]
    assert {k.comment: k.fingerprint for k in keys} == FINGERPRINTS
    assert {k.file for k in keys} == {
        "/Users/alice/.ssh/authorized_keys",
        "/var/root/.ssh/authorized_keys",
        r"C:\Users\alice\.ssh\authorized_keys",
        ADMIN_FILE,
    }
    assert mac.authorized_keys("bob") == ()  # no file: no keys
    with pytest.raises(FactUnavailable, match="no such account in dscl"):
        mac.authorized_keys("mallory")
    with pytest.raises(FactUnavailable, match="no such account in HKLM"):
        win.authorized_keys("mallory")


@pytest.mark.parametrize(
    ("platform", "tree", "recordings", "user", "path"),
    [
        (
            "darwin",
            MAC_TREE,
            ("sshd-T/macos14-root", "dscl-readall-users-homes/macos14"),
            "alice",
            "Users/alice/.ssh/authorized_keys",
        ),
        (
            "win32",
            WIN_TREE,
            ("sshd-T/win11-system", PROFILES),
            "alice",
            "C/Users/alice/.ssh/authorized_keys",
        ),
    ],
)
def test_permission_denied_on_a_keys_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
    tree: Path,
    recordings: tuple[str, ...],
    user: str,
    path: str,
) -> None:
    denied = tree / path
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == denied:
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(FactPermissionDenied, match="permission denied"):
        _host(tree, platform, *recordings).authorized_keys(user)


def test_unreadable_keys_files_are_errors_never_no_keys(tmp_path: Path) -> None:
    host = _host(tmp_path, "darwin")
    (tmp_path / "a").mkdir()
    with pytest.raises(FactUnavailable, match="is a directory"):
        sshp.read_keys(host, "/a")
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(FactUnavailable, match="symbolic links"):
        sshp.read_keys(host, "/loop")
    (tmp_path / "utf16").write_bytes("ssh-ed25519 AAAA x\r\n".encode("utf-16"))
    with pytest.raises(FactParseError, match="UTF-16"):
        sshp.read_keys(host, "/utf16")
    windows = _host(tmp_path, "win32")
    with pytest.raises(FactUnavailable, match="not a drive-letter path"):
        sshp.read_keys(windows, r"\\fs01\keys\alice")
    assert sshp.read_keys(windows, r"C:\nothing\here") == ()


def test_linux_holders_are_the_passwd_accounts() -> None:
    root = CASES / "error-garbage-authorized-keys" / "root"
    holders = _host(root, "linux", "sshd-T/debian12-root").ssh_key_holders()
    assert holders[0] == sshp.KeyHolder("root", "/root", 0)
    assert [h.name for h in holders] == ["root", "nobody", "alice"]


def test_holders_on_an_unsupported_platform_are_refused() -> None:
    with pytest.raises(FactUnavailable, match="not implemented for platform freebsd14"):
        _host(MAC_TREE, "freebsd14").ssh_key_holders()


# -- the check end to end ------------------------------------------------------------------


def test_no_key_material_reaches_evidence_on_macos_or_windows() -> None:
    mac = _host(MAC_TREE, "darwin", "sshd-T/macos14-root", "dscl-readall-users-homes/macos14")
    win = _host(WIN_TREE, "win32", "sshd-T/win11-system", PROFILES)
    params = checks.SshKeysParams(baseline_file="/etc/tillsyn/access-baseline.yaml")
    results = [*checks.ssh_keys(mac, params), *checks.ssh_keys(win, params)]
    blobs = [
        line.split()[-2]
        for tree in (MAC_TREE, WIN_TREE)
        for f in tree.rglob("*authorized_keys*")
        for line in f.read_text().splitlines()
    ]
    assert len(blobs) == 5 and len(results) == 5
    for result in results:
        evidence = jsonable({"m": result.message, "o": result.observed, "e": result.expected})
        assert find_secret(evidence) is None, result.message
        text = json.dumps(evidence)
        assert not any(blob[:30] in text for blob in blobs)
    admin = next(r for r in results if r.resource.id.startswith("C:"))
    assert admin.resource.id == f"{ADMIN_FILE} (members of Administrators)"
    alice = next(r for r in results if r.resource.id == "alice" and "sid" in r.observed)
    assert alice.observed["sid"] == "S-1-5-21-3623811015-3361044348-30300820-1001"
