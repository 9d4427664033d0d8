"""macOS and Windows installed-software inventories, and the name matching they share.

The macOS trees and the Windows inventory outputs are reconstructed (see the fixtures'
provenance): these tests pin what is read, what is skipped on purpose, and that an
unreadable source is a failure of the inventory, never an empty list.
"""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, FIXTURES, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import FactCommandFailed, FactParseError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host import endpoint_software as sw
from tillsyn.collectors.host import endpoint_software_macos as swm
from tillsyn.collectors.host import endpoint_software_windows as sww

CASES = FIXTURES / "checks" / "host.endpoint.forbidden_software"


def _host(root: Path, platform: str, *recordings: str, **kwargs: list[str]) -> HostFacts:
    runner = RecordedRunner.from_files((COMMANDS / f"{r}.json" for r in recordings), **kwargs)
    return HostFacts(root=root, runner=runner, env={}, platform=platform, now=PINNED_NOW)


def _app(root: Path, path: str, binary: bool = False, **keys: object) -> None:
    info = root / path.lstrip("/") / "Contents" / "Info.plist"
    info.parent.mkdir(parents=True)
    fmt = plistlib.FMT_BINARY if binary else plistlib.FMT_XML
    info.write_bytes(plistlib.dumps(keys, fmt=fmt))


# -- matching ---------------------------------------------------------------------------


def test_names_match_case_insensitively_and_as_patterns() -> None:
    assert sw.matches("AnyDesk", ("anydesk",))
    assert sw.matches("TeamViewer Host", ("TeamViewer*",))
    assert sw.matches("com.teamviewer.TeamViewer", ("com.teamviewer.*",))
    assert not sw.matches("anydesk-helper", ("anydesk",))  # a plain name matches only itself
    assert not sw.matches("nautilus-dropbox", ("dropbox",))


def test_windows_process_names_match_without_exe() -> None:
    assert sw.process_matches("TeamViewer.exe", ("TeamViewer",))
    assert sw.process_matches("AnyDesk.EXE", ("anydesk",))
    assert sw.process_matches("anydesk.exe", ("anydesk.exe",))
    assert not sw.process_matches("anydesk.exe.bak", ("anydesk",))


def test_inventory_finds_packages_and_programs() -> None:
    program = sw.Program(
        "TeamViewer",
        "15.59.3",
        "/Applications/Remote Help.app",
        ("Remote Help", "TeamViewer", "com.teamviewer.TeamViewer"),
    )
    listed = sw.ProgramList("applications", "app", "c", (program,), PINNED_NOW)
    packages = sw.PackageList(
        "homebrew", "c", {"teamviewer": "15.59.3", "git": "2.47.1"}, PINNED_NOW
    )
    inventory = sw.SoftwareInventory((packages,), (), (), (listed,))
    assert inventory.find(("TeamViewer",)) == [(packages, "teamviewer", "15.59.3")]
    assert inventory.find_programs(("com.teamviewer.*",)) == [(listed, program)]
    assert inventory.find_programs(("Remote*",)) == [(listed, program)]
    assert inventory.find_programs(("AnyDesk",)) == []


# -- macOS: Info.plist ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [plistlib.FMT_XML, plistlib.FMT_BINARY])
def test_info_plist_in_both_formats(fmt: plistlib.PlistFormat) -> None:
    data = plistlib.dumps(
        {
            "CFBundleIdentifier": "com.philandro.anydesk",
            "CFBundleName": "AnyDesk",
            "CFBundleShortVersionString": "8.1.0",
            "LSUIElement": True,
        },
        fmt=fmt,
    )
    assert swm.parse_info_plist(data, "p") == {
        "CFBundleIdentifier": "com.philandro.anydesk",
        "CFBundleName": "AnyDesk",
        "CFBundleShortVersionString": "8.1.0",
    }


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "not a property list"),
        (b"<?xml version='1.0'?><plist><dict><key>CFBundleName", "not a property list"),
        (plistlib.dumps(["AnyDesk"]), "not a dictionary"),
        (plistlib.dumps({"CFBundleIdentifier": 42}), "CFBundleIdentifier is not a string"),
        (
            b"<?xml version='1.0'?><plist version='1.0'><dict><key>Built</key>"
            b"<date>yesterday</date></dict></plist>",
            "not a property list",
        ),  # plistlib raises AttributeError for a <date> it cannot match
        (
            b"<?xml version='1.0'?><plist version='1.0'><dict><key>Built</key>"
            b"<date>2026-13-45T00:00:00Z</date></dict></plist>",
            "not a property list",
        ),
    ],
)
def test_unreadable_info_plist_is_a_parse_error(data: bytes, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        swm.parse_info_plist(data, "p")


def test_a_bundle_answers_to_its_file_name_bundle_name_and_identifier(tmp_path: Path) -> None:
    _app(
        tmp_path,
        "Remote Help.app",
        binary=True,
        CFBundleIdentifier="com.teamviewer.TeamViewer",
        CFBundleName="TeamViewer",
        CFBundleShortVersionString="15.59.3",
    )
    program = swm.bundle_program(tmp_path / "Remote Help.app", "/Applications/Remote Help.app")
    assert program.names == ("Remote Help", "TeamViewer", "com.teamviewer.TeamViewer")
    assert (program.name, program.version) == ("TeamViewer", "15.59.3")


def test_a_bundle_without_info_plist_keeps_its_file_name(tmp_path: Path) -> None:
    (tmp_path / "Authenticator.app" / "Wrapper").mkdir(parents=True)
    program = swm.bundle_program(tmp_path / "Authenticator.app", "/Applications/Authenticator.app")
    assert (program.name, program.version, program.names) == (
        "Authenticator",
        "",
        ("Authenticator",),
    )


# -- macOS: the inventory ---------------------------------------------------------------


def test_macos_inventory_of_the_pass_case_tree() -> None:
    inventory = _host(
        CASES / "pass-macos-apps-and-homebrew" / "root", "darwin"
    ).installed_software()
    assert inventory.failures == () and inventory.absent == ()
    (apps,) = inventory.programs
    assert [p.location for p in apps.programs] == [
        "/Applications/Authenticator.app",
        "/Applications/Firefox.app",
        "/Applications/Google Chrome.app",
        "/Applications/Safari.app",
        "/Applications/Utilities/KeePassXC.app",
        "/Users/alice/Applications/Slack.app",
    ]
    (brew,) = inventory.lists
    assert brew.manager == "homebrew"
    assert brew.packages == {"git": "2.47.1", "wget": "1.25.0", "firefox": "133.0"}
    assert brew.call == "/opt/homebrew/Cellar, /opt/homebrew/Caskroom"


def test_macos_scan_stops_one_folder_deep_and_never_inside_a_bundle(tmp_path: Path) -> None:
    _app(tmp_path, "Applications/Vendor/Tool.app", CFBundleName="Tool")
    _app(tmp_path, "Applications/Vendor/Deeper/Hidden.app", CFBundleName="Hidden")
    _app(tmp_path, "Applications/Outer.app", CFBundleName="Outer")
    _app(tmp_path, "Applications/Outer.app/Contents/Helpers/Inner.app", CFBundleName="Inner")
    inventory = _host(tmp_path, "darwin").installed_software()
    assert [p.name for p in inventory.programs[0].programs] == ["Outer", "Tool"]
    assert inventory.absent == ("homebrew",)


def test_homebrew_on_both_prefixes_with_several_versions(tmp_path: Path) -> None:
    kegs = (
        "usr/local/Cellar/python@3.12/3.12.7",
        "usr/local/Cellar/python@3.12/3.12.8",
        "opt/homebrew/Caskroom/anydesk/8.1.0",
        "opt/homebrew/Caskroom/.metadata/x",
    )
    for keg in kegs:
        (tmp_path / keg).mkdir(parents=True)
    (tmp_path / "Applications").mkdir()
    inventory = _host(tmp_path, "darwin").installed_software()
    assert [(pl.call, pl.packages) for pl in inventory.lists] == [
        ("/opt/homebrew/Caskroom", {"anydesk": "8.1.0"}),
        ("/usr/local/Cellar", {"python@3.12": "3.12.7 3.12.8"}),
    ]
    assert inventory.find(("anydesk",))[0][1:] == ("anydesk", "8.1.0")


def test_a_broken_bundle_and_an_unreadable_folder_are_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _app(tmp_path, "Applications/Safari.app", CFBundleName="Safari")
    broken = tmp_path / "Applications" / "Broken.app" / "Contents" / "Info.plist"
    broken.parent.mkdir(parents=True)
    broken.write_text("<?xml version='1.0'?><plist><dict>")
    (tmp_path / "Users" / "bob" / "Applications").mkdir(parents=True)
    entries = swm._entries

    def refusing(path: Path) -> list[Path]:
        if path.name == "Applications" and path.parent.name == "bob":
            raise PermissionError(13, "Permission denied")
        return entries(path)

    monkeypatch.setattr(swm, "_entries", refusing)
    inventory = _host(tmp_path, "darwin").installed_software()
    assert [p.name for p in inventory.programs[0].programs] == ["Safari"]
    assert [call for call, _ in inventory.failures] == [
        "/Applications/Broken.app/Contents/Info.plist",
        "/Users/bob/Applications",
    ]
    assert "not a property list" in inventory.failures[0][1]
    assert inventory.failures[1][1] == "permission denied"


def test_a_tree_without_applications_or_users_is_a_failure(tmp_path: Path) -> None:
    inventory = _host(tmp_path, "darwin").installed_software()
    assert inventory.failures == (
        ("/Applications", "does not exist (every Mac has it)"),
        ("/Users", "does not exist (every Mac has it)"),
    )


def test_hidden_bundles_are_inventoried(tmp_path: Path) -> None:
    _app(tmp_path, "Applications/.AnyDesk.app", CFBundleIdentifier="com.philandro.anydesk")
    (tmp_path / "Users/bob/Applications/.RustDesk.app").mkdir(parents=True)  # no Info.plist
    (tmp_path / "Applications" / ".localized").write_text("")
    inventory = _host(tmp_path, "darwin").installed_software()
    assert inventory.failures == ()
    locations = [p.location for p in inventory.programs[0].programs]
    assert locations == ["/Applications/.AnyDesk.app", "/Users/bob/Applications/.RustDesk.app"]
    assert [p.name for _, p in inventory.find_programs(("AnyDesk",))] == [".AnyDesk"]
    assert [p.location for _, p in inventory.find_programs(("RustDesk",))] == [
        "/Users/bob/Applications/.RustDesk.app"
    ]


def test_homebrew_bookkeeping_is_not_a_version(tmp_path: Path) -> None:
    (tmp_path / "opt/homebrew/Caskroom/rustdesk/1.3.2").mkdir(parents=True)
    (tmp_path / "opt/homebrew/Caskroom/rustdesk/.metadata").mkdir()
    (tmp_path / "Applications").mkdir()
    (tmp_path / "Users").mkdir()
    (lists,) = _host(tmp_path, "darwin").installed_software().lists
    assert lists.packages == {"rustdesk": "1.3.2"}


def test_a_refused_stat_is_a_failure_not_an_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _app(tmp_path, "Applications/Safari.app", CFBundleName="Safari")
    (tmp_path / "Applications" / "Locked.app").mkdir()
    (tmp_path / "Users" / "carol" / "Applications").mkdir(parents=True)
    (tmp_path / "Users" / "dave").mkdir()
    is_dir = Path.is_dir

    def refusing(self: Path) -> bool:
        if self.name == "Locked.app" or self.parent.name == "dave":
            raise PermissionError(13, "Permission denied")
        return is_dir(self)

    monkeypatch.setattr(Path, "is_dir", refusing)
    inventory = _host(tmp_path, "darwin").installed_software()
    assert [p.name for p in inventory.programs[0].programs] == ["Safari"]
    assert inventory.failures == (
        ("/Applications/Locked.app", "permission denied"),
        ("/Users/dave/Applications", "permission denied"),
    )


def test_an_unreadable_users_folder_or_applications_is_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Applications").mkdir()
    (tmp_path / "Users").mkdir()
    entries = swm._entries

    def refusing(path: Path) -> list[Path]:
        if path.name == "Users":
            raise OSError(5, "Input/output error")
        return entries(path)

    monkeypatch.setattr(swm, "_entries", refusing)
    inventory = _host(tmp_path, "darwin").installed_software()
    assert inventory.failures == (("/Users", "Input/output error"),)


# -- Windows: the uninstall registry keys -------------------------------------------------


def _out(name: str) -> tuple[str, str]:
    rec = json.loads((COMMANDS / f"powershell-uninstall-inventory/{name}.json").read_text())
    return str(rec["stdout"]), str(rec["stderr"])


def test_every_inventory_fixture_runs_the_current_script() -> None:
    for path in sorted((COMMANDS / "powershell-uninstall-inventory").glob("*.json")):
        assert json.loads(path.read_text())["argv"] == sww.POWERSHELL_INVENTORY, path.name


def test_the_script_reads_all_three_places_and_prints_ascii() -> None:
    for needle in (r"HKLM:\SOFTWARE\Microsoft", r"HKLM:\SOFTWARE\WOW6432Node", "HKEY_USERS\\*"):
        assert needle in sww.INVENTORY_SCRIPT
    assert "[^\\x00-\\x7F]" in sww.INVENTORY_SCRIPT


def test_clean_inventory() -> None:
    programs = sww.parse_uninstall_inventory(*_out("win11-clean"), "ps")
    assert len(programs) == 8
    names = {p.name: p for p in programs}
    assert "Intel\u00ae Wireless Bluetooth\u00ae" in names  # escaped by the script, decoded here
    zoom = names["Zoom Workplace"]
    assert zoom.location.startswith("HKEY_USERS\\S-1-5-21-") and zoom.version == "6.2.11 (53270)"


def test_forbidden_programs_are_found_by_display_name() -> None:
    programs = sww.parse_uninstall_inventory(*_out("win11-anydesk-teamviewer"), "ps")
    listed = sw.ProgramList("uninstall-registry", "installed program", "ps", programs, PINNED_NOW)
    inventory = sw.SoftwareInventory((), (), (), (listed,))
    ((_, anydesk),) = inventory.find_programs(("AnyDesk",))
    assert "WOW6432Node" in anydesk.location and anydesk.version == "ad 8.1.0"
    assert [p.name for _, p in inventory.find_programs(("TeamViewer*",))] == ["TeamViewer"]


def test_powershell_unwraps_one_entry_and_null() -> None:
    one = {
        "Scope": "machine",
        "Key": "HKEY_LOCAL_MACHINE\\X\\7-Zip",
        "DisplayName": "7-Zip",
        "DisplayVersion": None,
    }
    data = {
        "Is64BitProcess": True,
        "Is64BitOperatingSystem": True,
        "Entries": one,
        "Profiles": SYSTEM,
        "UserProgramFolders": None,
    }
    (program,) = sww.parse_uninstall_inventory(json.dumps(data), "", "ps")
    assert (program.name, program.version) == ("7-Zip", "")
    data["Entries"] = None
    assert sww.parse_uninstall_inventory(json.dumps(data), "", "ps") == ()
    found = sww.parse_inventory(json.dumps(data), "", "ps")
    assert found.profiles == (sww.Profile("S-1-5-18", "C:\\Windows\\sys", True),)
    assert found.folders == () and found.unloaded == ()


SYSTEM = {"Sid": "S-1-5-18", "Path": "C:\\Windows\\sys", "Loaded": True}
REST = '"Profiles": [{"Sid": "S-1-5-18", "Path": "", "Loaded": true}], "UserProgramFolders": []'


@pytest.mark.parametrize(
    ("stdout", "stderr", "says"),
    [
        ("", "", "no output"),
        (_out("win11-truncated")[0], "", "not JSON"),
        ("[]", "", "not the inventory object"),
        ('{"Is64BitProcess": true, "Entries": 3, ' + REST + "}", "", "Entries is not a list"),
        ('{"Is64BitProcess": true, "Entries": [1], ' + REST + "}", "", "not a JSON object"),
        (
            '{"Is64BitProcess": true, "Entries": [{"Scope": "machine", "Key": "K"}], ' + REST + "}",
            "",
            "without a DisplayName",
        ),
        (
            '{"Is64BitProcess": true, "Entries": '
            '[{"Scope": "hkcu", "Key": "K", "DisplayName": "A"}], ' + REST + "}",
            "",
            "without a known Scope",
        ),
        ('{"Is64BitProcess": true, "Entries": []}', "", "not the inventory object"),
        (
            '{"Is64BitProcess": true, "Entries": [], "Profiles": [], "UserProgramFolders": []}',
            "",
            "no profile in ProfileList",
        ),
        (
            '{"Is64BitProcess": true, "Entries": [], "UserProgramFolders": [], '
            '"Profiles": [{"Sid": "bob", "Path": "C:\\\\Users\\\\bob", "Loaded": false}]}',
            "",
            "profile without a SID",
        ),
        (
            '{"Is64BitProcess": true, "Entries": [], "UserProgramFolders": [], '
            '"Profiles": [{"Sid": "S-1-5-21-1", "Path": "C:\\\\Users\\\\bob", "Loaded": "no"}]}',
            "",
            "Loaded is not true or false",
        ),
        (
            '{"Is64BitProcess": true, "Entries": [], "Profiles": '
            '[{"Sid": "S-1-5-18", "Path": "", "Loaded": true}], '
            '"UserProgramFolders": [{"Name": "x"}]}',
            "",
            "program folder without a Path and a Name",
        ),
        (
            '{"Is64BitProcess": true, "Entries": [], "Profiles": 3, "UserProgramFolders": []}',
            "",
            "Profiles is not a list",
        ),
        (
            '{"Is64BitProcess": true, "Entries": [], ' + REST + "}",
            "WARNING: x\r\n",
            "PowerShell reported",
        ),
    ],
)
def test_unexpected_inventory_output_is_a_parse_error(stdout: str, stderr: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        sww.parse_uninstall_inventory(stdout, stderr, "ps")


def test_a_32_bit_powershell_on_64_bit_windows_is_refused() -> None:
    with pytest.raises(FactUnavailable, match="32-bit PowerShell"):
        sww.parse_uninstall_inventory(*_out("win11-32bit-powershell"), "ps")


def test_windows_collector_names_the_call_briefly(tmp_path: Path) -> None:
    host = _host(tmp_path, "win32", "powershell-uninstall-inventory/win11-registry-denied")
    with pytest.raises(FactCommandFailed, match="Requested registry access") as caught:
        host.installed_software()
    assert caught.value.call == sww.CALL  # not the whole script
    inventory = _host(
        tmp_path, "win32", "powershell-uninstall-inventory/win11-clean"
    ).installed_software()
    assert inventory.lists == () and len(inventory.programs[0].programs) == 8


def test_logged_off_profiles_are_named_and_their_program_folders_read(tmp_path: Path) -> None:
    inventory = _host(
        tmp_path, "win32", "powershell-uninstall-inventory/win11-rustdesk-logged-off-user-folder"
    ).installed_software()
    assert inventory.unread == (
        "per-user installs of 1 logged-off profile not read: C:\\Users\\bjorn "
        "(S-1-5-21-3623811015-3361044348-30300820-1014) (hive not loaded; only their "
        "AppData\\Local\\Programs folders were)",
    )
    folders = inventory.programs[1]
    assert folders.source == "user-programs-folders"
    assert [p.location for p in folders.programs][-1] == (
        "C:\\Users\\bjorn\\AppData\\Local\\Programs\\RustDesk"
    )
    ((_, rustdesk),) = inventory.find_programs(("RustDesk", "com.carriez.rustdesk"))
    assert rustdesk.name == "RustDesk"


def test_service_profiles_are_not_reported_as_logged_off() -> None:
    data = {
        "Is64BitProcess": True,
        "Entries": [],
        "UserProgramFolders": [],
        "Profiles": [
            {
                "Sid": "S-1-5-19",
                "Path": "C:\\Windows\\ServiceProfiles\\LocalService",
                "Loaded": False,
            },
            {"Sid": "S-1-5-21-1-2-3-1001", "Path": None, "Loaded": False},
        ],
    }
    found = sww.parse_inventory(json.dumps(data), "", "ps")
    assert [p.shown for p in found.unloaded] == ["S-1-5-21-1-2-3-1001"]


def test_the_script_lists_profiles_and_their_program_folders() -> None:
    assert "CurrentVersion\\ProfileList" in sww.INVENTORY_SCRIPT
    assert "Test-Path -LiteralPath ('Registry::HKEY_USERS\\' + $sid)" in sww.INVENTORY_SCRIPT
    assert "AppData\\Local\\Programs" in sww.INVENTORY_SCRIPT
    assert "catch [System.Management.Automation.ItemNotFoundException]" in sww.INVENTORY_SCRIPT
