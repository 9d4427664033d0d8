"""Patch facts against recorded (and reconstructed) package-manager output and trees."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, HOSTS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import FactCommandFailed, FactParseError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.patching_apt import (
    is_security_origin,
    parse_apt_config,
    parse_apt_simulation,
    parse_release_header,
    periodic_enabled,
)
from tillsyn.collectors.host.patching_dnf import (
    parse_automatic_conf,
    parse_check_update,
    parse_needs_restarting,
    parse_updateinfo,
)
from tillsyn.collectors.host.patching_macos import (
    auto_update_problems,
    parse_defaults,
    parse_softwareupdate_list,
)
from tillsyn.collectors.host.patching_model import kernel_flavour, version_key
from tillsyn.collectors.host.patching_os import (
    load_eol_table,
    lookup,
    parse_os_release,
    parse_sw_vers,
)
from tillsyn.collectors.host.patching_windows import (
    AU_KEY,
    POWERSHELL_WU,
    WU_SCRIPT,
    au_policy_problems,
    parse_wu_search,
    pause_problems,
    service_problems,
)
from tillsyn.collectors.host.patching_zypper import parse_list_patches
from tillsyn.collectors.host.windows_registry import key_exists, parse_reg_query
from tillsyn.collectors.memory import FactMemory


def _rec(name: str) -> dict[str, object]:
    recording: dict[str, object] = json.loads((COMMANDS / f"{name}.json").read_text())
    return recording


def _out(name: str) -> str:
    return str(_rec(name)["stdout"])


# -- apt ----------------------------------------------------------------------------------


def test_recorded_simulation_finds_the_security_upgrades_only() -> None:
    pending = parse_apt_simulation(_out("apt-get-simulate/debian12-security-pending"), "apt-get")
    by_name = {u.package: u for u in pending}
    assert len(pending) == 69
    assert by_name["libssl3"].installed == "3.0.19-1~deb12u2"
    assert by_name["libssl3"].candidate == "3.0.22-1~deb12u2"
    assert by_name["libssl3"].origins == ("Debian-Security:12/oldstable-security",)
    # in both the point release and the security suite: still a security update
    assert by_name["libgcrypt20"].origins == (
        "Debian:12.15/oldstable",
        "Debian-Security:12/oldstable-security",
    )
    assert "base-files" not in by_name  # only from the point release


def test_unprivileged_run_parses_like_root() -> None:
    root = parse_apt_simulation(_out("apt-get-simulate/debian12-security-pending"), "x")
    user = parse_apt_simulation(_out("apt-get-simulate/debian12-unprivileged"), "x")
    assert root == user


def test_nothing_pending_is_an_empty_tuple() -> None:
    assert parse_apt_simulation(_out("apt-get-simulate/debian12-nothing-pending"), "x") == ()


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        (_out("apt-get-simulate/debian12-truncated"), "unexpected Inst line"),
        ("", "no 'N upgraded"),
        ("Reading package lists...\n", "no 'N upgraded"),
        (
            "1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n",
            "counts 1 upgrades but 0",
        ),
        ("E: Could not open lock file\n", "unexpected line"),
        ("Inst libssl3 garbage\n", "unexpected Inst line"),
    ],
)
def test_malformed_simulation_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_apt_simulation(stdout, "apt-get -s")


def test_simulation_cut_between_lines_is_caught_by_the_count() -> None:
    stdout = _out("apt-get-simulate/debian12-security-pending")
    lines = stdout.splitlines(keepends=True)
    last_inst = max(i for i, line in enumerate(lines) if line.startswith("Inst "))
    with pytest.raises(FactParseError, match="output cut off"):
        parse_apt_simulation("".join(lines[:last_inst]), "apt-get -s")


@pytest.mark.parametrize(
    ("origin", "security"),
    [
        ("Debian-Security:12/oldstable-security", True),
        ("Ubuntu:22.04/jammy-security", True),
        ("Debian-Security:10/oldoldstable", True),  # Debian 10's suite naming
        ("Debian:12.15/oldstable", False),
        ("Ubuntu:22.04/jammy-updates", False),
        ("localhost", False),
    ],
)
def test_security_origins(origin: str, security: bool) -> None:
    assert is_security_origin(origin) is security


def test_release_header_uses_the_signed_date() -> None:
    path = HOSTS / "patch-debian12-vm/var/lib/apt/lists"
    name = "deb.debian.org_debian-security_dists_bookworm-security_InRelease"
    header = parse_release_header((path / name).read_text(), name)
    assert header.is_security and header.security_name == "bookworm-security"
    assert header.date.tzinfo is not None and header.date.year == 2026


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Origin: Debian\nSuite: stable\n", "no Date field"),
        ("Origin: Debian\nDate: yesterday\n", "unreadable Date"),
        ("this is not a release file\n", "not a Release header line"),
    ],
)
def test_bad_release_headers_are_errors(text: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_release_header(text, "x_InRelease")


def test_apt_config_lists_and_periodic_values() -> None:
    config = parse_apt_config(_out("apt-config-dump/debian12-unattended-enabled"), "x")
    assert config.get("APT::Periodic::Unattended-Upgrade") == "1"
    assert any("Debian-Security" in o for o in config.items("Unattended-Upgrade::Origins-Pattern"))
    off = parse_apt_config(_out("apt-config-dump/debian12-unattended-disabled"), "x")
    assert off.get("APT::Periodic::Unattended-Upgrade") == "0"
    none = parse_apt_config(_out("apt-config-dump/debian12-no-unattended"), "x")
    assert none.get("APT::Periodic::Unattended-Upgrade") is None
    with pytest.raises(FactParseError):
        parse_apt_config("APT::Periodic::Unattended-Upgrade 1\n", "x")


@pytest.mark.parametrize(
    ("value", "on"), [("1", True), ("0", False), (None, False), ("always", True), ("7d", True)]
)
def test_periodic_values(value: str | None, on: bool) -> None:
    assert periodic_enabled(value, "k", "c") is on


def test_unreadable_periodic_value_is_an_error() -> None:
    with pytest.raises(FactParseError):
        periodic_enabled("yes please", "k", "c")


# -- dnf, zypper ----------------------------------------------------------------------------


def test_check_update_with_age_and_wrapped_names() -> None:
    listed = parse_check_update(_out("dnf-check-update/rhel9-security-pending"), 100, "dnf")
    assert [p.package for p in listed.packages][:2] == ["openssl", "openssl-libs"]
    assert listed.metadata_age_seconds == 2 * 3600 + 41 * 60 + 7
    wrapped = (
        "\nvery-long-package-name-for-wrapping.x86_64\n"
        "                      1.2-3.el9          rhel-9-baseos\n"
    )
    (only,) = parse_check_update(wrapped, 100, "dnf").packages
    assert (only.package, only.arch, only.candidate) == (
        "very-long-package-name-for-wrapping",
        "x86_64",
        "1.2-3.el9",
    )
    stale = parse_check_update(_out("dnf-check-update/rhel9-stale-cache"), 0, "dnf")
    assert stale.metadata_age_seconds == 41 * 86400 + 3 * 3600 + 12 * 60 + 40


@pytest.mark.parametrize(
    ("stdout", "code", "says"),
    [
        ("", 100, "exit 100"),
        ("openssl.x86_64  1:3.0.7-27.el9_4  baseos\n", 0, "exit 0"),
        ("Error: something\n", 100, "unexpected check-update line"),
    ],
)
def test_inconsistent_check_update_is_an_error(stdout: str, code: int, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_check_update(stdout, code, "dnf")


def test_updateinfo_severities_by_package() -> None:
    found = parse_updateinfo(_out("dnf-updateinfo/rhel9-security-pending"), "dnf")
    assert found[("openssl", "x86_64")] == [("RHSA-2024:2447", "critical")]
    assert found[("python3-idna", "noarch")] == [("RHSA-2024:3846", "moderate")]
    with pytest.raises(FactParseError):
        parse_updateinfo("RHSA-2024:1 Important kernel\n", "dnf")


def test_recorded_dnf_without_cache_is_refused(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID="rhel"\nVERSION_ID="9.4"\n')
    facts = HostFacts(
        root=tmp_path,
        runner=RecordedRunner.from_files([COMMANDS / "dnf-check-update/debian12-no-cache.json"]),
        platform="linux",
        now=PINNED_NOW,
    )
    with pytest.raises(FactUnavailable, match="tillsyn-rec"):
        facts.pending_security_updates()


def test_zypper_table_and_refusals() -> None:
    stdout = _out("zypper-list-patches/sles15sp5-security-pending")
    patches = parse_list_patches(stdout, "", 0, "zypper")
    assert {p.package: p.severity for p in patches} == {
        "SUSE-SLE-Module-Basesystem-15-SP5-2024-1563": "important",
        "SUSE-SLE-Module-Basesystem-15-SP5-2024-1602": "moderate",
        "SUSE-SLE-Product-SLES-15-SP5-2024-1490": "critical",
    }
    with pytest.raises(FactUnavailable, match="no repositories"):
        parse_list_patches(_out("zypper-list-patches/debian12-no-repos"), "", 0, "zypper")
    skipped = _rec("zypper-list-patches/debian12-never-refreshed")
    with pytest.raises(FactUnavailable, match="skipped repositories"):
        parse_list_patches(str(skipped["stdout"]), str(skipped["stderr"]), 106, "zypper")
    with pytest.raises(FactParseError, match="unknown table layout"):
        parse_list_patches("Repository | Name | Version | Category | Status\n", "", 0, "z")


def test_needs_restarting_answers() -> None:
    assert parse_needs_restarting(_out("needs-restarting/rhel9-no-reboot"), 0, "n") == (False, ())
    needed = parse_needs_restarting(_out("needs-restarting/rhel9-reboot-required"), 1, "n")
    assert needed == (True, ("kernel", "openssl-libs"))
    with pytest.raises(FactParseError):
        parse_needs_restarting("", 1, "n")


def test_automatic_conf() -> None:
    text = (HOSTS / "patch-rhel9-kernel-pending/etc/dnf/automatic.conf").read_text()
    assert parse_automatic_conf(text, "a") == {"apply_updates": "no", "upgrade_type": "security"}
    with pytest.raises(FactParseError):
        parse_automatic_conf("[commands]\napply_updates = maybe\n", "a")
    with pytest.raises(FactParseError):
        parse_automatic_conf("apply_updates = yes\n", "a")  # no section header


# -- memory and caching ---------------------------------------------------------------------


def _apt_host(memory: FactMemory, now: datetime, ttl: float = 0.0) -> HostFacts:
    return HostFacts(
        root=HOSTS / "patch-debian12-vm",
        runner=RecordedRunner.from_files(
            [COMMANDS / "apt-get-simulate/debian12-security-pending.json"]
        ),
        platform="linux",
        now=now,
        memory=memory,
        command_cache_ttl=ttl,
    )


def test_first_sighting_survives_runs_and_forgets_installed_updates() -> None:
    memory = FactMemory()
    first = _apt_host(memory, PINNED_NOW).pending_security_updates()
    later = _apt_host(memory, PINNED_NOW + timedelta(days=3)).pending_security_updates()
    assert all(u.first_seen == PINNED_NOW for u in later.updates)
    assert len(first.updates) == len(later.updates)


def test_reused_answer_keeps_its_collection_time() -> None:
    memory = FactMemory()
    _apt_host(memory, PINNED_NOW, ttl=3600).pending_security_updates()
    again = _apt_host(memory, PINNED_NOW + timedelta(minutes=10), ttl=3600)
    found = again.pending_security_updates()
    assert found.reused and found.collected_at == PINNED_NOW
    assert again.runner.calls == []  # type: ignore[attr-defined]


# -- kernels, OS release, the end-of-life table -------------------------------------------


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("6.1.0-9-amd64", "6.1.0-27-amd64"),
        ("5.14.0-362.24.1.el9_3.x86_64", "5.14.0-427.13.1.el9_4.x86_64"),
        ("6.8.0-9-generic", "6.8.0-45-generic"),
    ],
)
def test_kernel_versions_compare_numerically(older: str, newer: str) -> None:
    assert version_key(older) < version_key(newer)
    assert kernel_flavour(older) == kernel_flavour(newer)


def test_kernel_flavours_differ() -> None:
    assert kernel_flavour("6.1.0-27-rt-amd64") != kernel_flavour("6.1.0-27-amd64")


def test_recorded_vm_has_no_packaged_kernel() -> None:
    state = HostFacts(root=HOSTS / "patch-debian12-vm", platform="linux").kernel_state()
    assert state.running == "6.18.44-fc-v669" and state.installed == ()


def test_rescue_image_is_not_a_kernel() -> None:
    state = HostFacts(root=HOSTS / "patch-rhel9-kernel-pending", platform="linux").kernel_state()
    assert all("rescue" not in k for k in state.installed) and len(state.installed) == 2


def test_os_release_and_sw_vers() -> None:
    release = parse_os_release((HOSTS / "patch-ubuntu2204/etc/os-release").read_text(), "p")
    assert (release.id, release.version_id, release.id_like) == ("ubuntu", "22.04", ("debian",))
    with pytest.raises(FactParseError, match="bad quoting"):
        parse_os_release('ID="debian\nVERSION_ID=12\n', "p")
    with pytest.raises(FactParseError, match="no ID"):
        parse_os_release("VERSION_ID=12\n", "p")
    mac = parse_sw_vers(_out("sw_vers/macos15"), "sw_vers")
    assert (mac.id, mac.version_id) == ("macos", "15.1")
    with pytest.raises(FactParseError):
        parse_sw_vers("ProductName: macOS\n", "sw_vers")


def test_shipped_table_is_dated_and_covers_the_families() -> None:
    updated, entries = load_eol_table()
    assert updated == date(2026, 11, 23)
    ids = {e.os_id for e in entries}
    for wanted in ("debian", "ubuntu", "rhel", "rocky", "almalinux", "ol", "centos", "sles"):
        assert wanted in ids
    assert {"opensuse-leap", "macos", "windows", "windows-server"} <= ids
    for entry in entries:
        assert entry.source.startswith("https://")
        if entry.end_standard and entry.end_extended:
            assert entry.end_extended >= entry.end_standard


def test_table_lookup_by_prefix_and_never_by_guess() -> None:
    _, entries = load_eol_table()
    assert lookup(entries, "rhel", "9.4")[0] is not None
    assert lookup(entries, "sles", "15.5")[0] is not None
    assert lookup(entries, "sles", "15.9")[0] is None  # not "15"
    assert lookup(entries, "fedora", "40")[0] is None


def test_table_without_date_is_refused() -> None:
    with pytest.raises(ValueError, match="does not say when"):
        load_eol_table("os_id,version,codename,end_standard,end_extended,source\n")


def test_now_is_aware() -> None:  # the checks subtract dates from it
    assert HostFacts(platform="linux").now.tzinfo == UTC


# -- macOS ------------------------------------------------------------------------------


def test_softwareupdate_counts_recommended_items_only() -> None:
    rec = _rec("softwareupdate-list/macos14-recommended-pending")
    updates = parse_softwareupdate_list(str(rec["stdout"]), str(rec["stderr"]), "su")
    assert [(u.package, u.candidate) for u in updates] == [
        ("macOS Sonoma 14.7.1-23H222", "14.7.1"),
        ("Safari18.1-18.1", "18.1"),
    ]
    assert "does not flag security" in updates[0].origins[0]


def test_softwareupdate_nothing_new_needs_apples_words() -> None:
    rec = _rec("softwareupdate-list/macos15-nothing-new")
    assert parse_softwareupdate_list("", str(rec["stderr"]), "su") == ()
    with pytest.raises(FactParseError, match="No new software available"):
        parse_softwareupdate_list("", "Software Update Tool\n\nFinding available software\n", "su")


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        (_out("softwareupdate-list/macos-truncated"), "cut off after a label"),
        ("* Label: X\n", "unexpected line before the list"),
        (
            "Software Update found the following new or updated software:\n"
            "\tTitle: X, Version: 1\n",
            "unexpected line",
        ),
        (
            "Software Update found the following new or updated software:\n"
            "* Label: A\n* Label: B\n",
            "label without details",
        ),
        ("garbage\n", "unexpected line before the list"),
        (
            "Software Update found the following new or updated software:\n",
            "header with no item after it",
        ),
        (_out("softwareupdate-list/macos-header-only"), "header with no item after it"),
    ],
)
def test_malformed_softwareupdate_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_softwareupdate_list(stdout, "", "softwareupdate --list")


def test_defaults_reads_top_level_keys_and_skips_nested_values() -> None:
    values = parse_defaults(_out("defaults-read-softwareupdate/macos14-install-off"), "d")
    assert values["AutomaticallyInstallMacOSUpdates"] == "0"
    assert values["LastSuccessfulDate"] == "2026-11-22 08:14:02 +0000"
    assert "RecommendedUpdates" not in values and "Identifier" not in values
    settings, problems = auto_update_problems(values, "d")
    assert settings["AutomaticDownload"] == "unset"
    assert problems == [
        "AutomaticDownload is not set (read as not enabled)",
        "AutomaticallyInstallMacOSUpdates is 0",
    ]


def test_all_keys_on_has_no_problems() -> None:
    values = parse_defaults(_out("defaults-read-softwareupdate/macos14-all-enabled"), "d")
    assert auto_update_problems(values, "d")[1] == []


def test_missing_keys_are_never_read_as_on() -> None:
    settings, problems = auto_update_problems({}, "d")
    assert set(settings.values()) == {"unset"} and len(problems) == 5


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        (_out("defaults-read-softwareupdate/macos-truncated"), "not a plist dictionary"),
        ("", "not a plist dictionary"),
        ("{\n    this is not a key\n}\n", "unexpected line"),
        ("{\n    A = (\n}\n", "cut off inside a value"),
        ("{\n    A = );\n}\n", "unterminated value"),
    ],
)
def test_malformed_defaults_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_defaults(stdout, "defaults read")


def test_defaults_value_other_than_0_or_1_is_an_error() -> None:
    with pytest.raises(FactParseError, match="neither 0 nor 1"):
        auto_update_problems({"AutomaticCheckEnabled": "YES"}, "d")


# -- Windows ----------------------------------------------------------------------------


SEC_ID = "0fa1201d-4330-4fa8-8ae9-b877473b6441"


def _wu(*updates: dict[str, object], code: object = 2) -> str:
    return json.dumps({"ResultCode": code, "Updates": list(updates)})


def _update(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "Title": "x",
        "KBArticleIDs": [],
        "MsrcSeverity": "Low",
        "Categories": [],
        "CategoryIDs": [],
        "IsHidden": False,
        "LastDeploymentChangeTime": "2026-11-01T00:00:00Z",
    }
    item.update(changes)
    return item


def test_every_wu_fixture_runs_the_current_script() -> None:
    for path in sorted((COMMANDS / "powershell-wu-search").glob("*.json")):
        assert json.loads(path.read_text())["argv"] == POWERSHELL_WU, path.name


def test_wu_script_searches_hidden_updates_and_formats_invariantly() -> None:
    assert "IsHidden=0 or " in WU_SCRIPT and "IsHidden=1" in WU_SCRIPT
    assert "$ProgressPreference = 'SilentlyContinue'" in WU_SCRIPT
    assert "[Console]::OutputEncoding = [Text.UTF8Encoding]::new($false)" in WU_SCRIPT
    assert "[Globalization.CultureInfo]::InvariantCulture" in WU_SCRIPT
    assert "ResultCode = [int]$result.ResultCode" in WU_SCRIPT
    assert "CategoryIDs" in WU_SCRIPT


def test_wu_search_keeps_rated_and_security_category_updates() -> None:
    updates = parse_wu_search(
        _out("powershell-wu-search/win11-critical-important-pending"), "", "ps"
    )
    assert [(u.package, u.severity) for u in updates] == [
        ("KB5068861", "critical"),
        ("KB5068520", "important"),
    ]  # the Defender definition update (MsrcSeverity "") is not a security update
    assert updates[0].first_seen == datetime(2026, 11, 11, 18, 0, tzinfo=UTC)
    assert updates[0].origins == ("Security Updates", "Windows 11")
    assert not updates[0].hidden
    item = (
        '{"ResultCode":2,"Updates":{"Title":"T","KBArticleIDs":null,"MsrcSeverity":null,'
        f'"Categories":"Security Updates","CategoryIDs":"{SEC_ID.upper()}","IsHidden":false,'
        '"LastDeploymentChangeTime":"2026-11-01T00:00:00Z"}}'
    )
    (single,) = parse_wu_search(item, "", "ps")  # a single unwrapped object, no KB
    assert single.package == "T" and single.severity is None


def test_wu_security_category_is_matched_by_id_not_localised_name() -> None:
    (german,) = parse_wu_search(
        _out("powershell-wu-search/win11-german-hidden-security-update"), "", "ps"
    )
    assert german.origins == ("Sicherheitsupdates", "Windows 11") and german.severity is None
    assert german.hidden  # a hidden security update is still pending
    by_name_only = _update(MsrcSeverity=None, Categories=["Security Updates"])
    assert parse_wu_search(_wu(by_name_only), "", "ps") == ()


def test_wu_empty_msrc_severity_is_unrated() -> None:
    assert parse_wu_search(_wu(_update(MsrcSeverity="")), "", "ps") == ()
    (rated,) = parse_wu_search(_wu(_update(MsrcSeverity="", CategoryIDs=[SEC_ID])), "", "ps")
    assert rated.severity is None


@pytest.mark.parametrize("stdout", ['{"ResultCode":2,"Updates":[]}\r\n', _wu(code=2)])
def test_wu_search_empty_list_is_nothing_pending(stdout: str) -> None:
    assert parse_wu_search(stdout, "", "ps") == ()


@pytest.mark.parametrize(
    ("stdout", "stderr", "says"),
    [
        ("", "", "no output"),
        ("\r\n", "", "no output"),
        (_out("powershell-wu-search/win11-empty-output"), "", "no output"),
        ("", "Exception from HRESULT: 0x8024402C", "0x8024402C"),
        ("Exception from HRESULT: 0x80072EE2", "", "HRESULT"),
        (_out("powershell-wu-search/win11-not-json"), "", "not JSON"),
        ('{"ResultCode":2,"Upd', "", "not JSON"),
        ("[]", "", "not the search result object"),
        ('{"Updates":[]}', "", "not the search result object"),
        (_out("powershell-wu-search/win11-succeeded-with-errors"), "", "ResultCode 3"),
        (_wu(code=4), "", r"ResultCode 4 \(failed\)"),
        (_wu(code=5), "", "aborted"),
        (_wu(code="2"), "", "ResultCode is not a number"),
        (_wu(code=True), "", "ResultCode is not a number"),
        ('{"ResultCode":2,"Updates":3}', "", "Updates is not a list"),
        (_wu({"Title": "x"}), "", "update without"),
        (_wu(_update(IsHidden="no")), "", "IsHidden is not true or false"),
        ('{"ResultCode":2,"Updates":[1]}', "", "not a JSON object"),
        (_wu(_update(MsrcSeverity="Severe")), "", "unknown MsrcSeverity"),
        (
            _wu(_update(LastDeploymentChangeTime="/Date(1700000000000)/")),
            "",
            "not a UTC time",
        ),
        (_wu(_update(KBArticleIDs=[1])), "", "not a list of strings"),
        (_wu(_update(CategoryIDs=[1])), "", "not a list of strings"),
    ],
)
def test_malformed_wu_search_is_a_parse_error(stdout: str, stderr: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_wu_search(stdout, stderr, "ps")


def test_reg_query_values_and_policy() -> None:
    values = parse_reg_query(_out("reg-query-au-policy/win11-auoptions-4"), AU_KEY, "reg", "f")
    assert values["AUOptions"] == ("REG_DWORD", "0x4")
    assert au_policy_problems(values, "reg")[1] == []
    assert au_policy_problems(None, "reg") == (
        {"policy": "no policy: Windows Update defaults apply"},
        [],
    )
    settings, problems = au_policy_problems({"NoAutoUpdate": ("REG_DWORD", "0x0")}, "reg")
    assert problems == [] and "defaults apply" in settings["policy"]
    assert au_policy_problems({"AUOptions": ("REG_DWORD", "0x5")}, "reg")[1] == [
        "AUOptions is 0x5 (the local administrator chooses)"
    ]


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("", "does not start with"),
        ("\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Other\r\n", "does not start with"),
        (
            "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU\r\n"
            "garbage\r\n",
            "unexpected line",
        ),
    ],
)
def test_malformed_reg_query_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_reg_query(stdout, AU_KEY, "reg", "f")


def test_reg_query_exit_codes() -> None:
    absent = _rec("reg-query-rebootrequired/win11-absent")
    assert key_exists(1, str(absent["stderr"]), ["reg"], "f") is False
    assert key_exists(0, "", ["reg"], "f") is True
    denied = _rec("reg-query-rebootrequired/win11-access-denied")
    with pytest.raises(FactCommandFailed, match="Access is denied"):
        key_exists(1, str(denied["stderr"]), ["reg"], "f")


def test_windows_first_seen_is_the_earlier_of_memory_and_release() -> None:
    memory = FactMemory()
    memory.record_first_seen(
        "patch.pending.windows-update", "KB5068520", PINNED_NOW - timedelta(days=9)
    )
    facts = HostFacts(
        runner=RecordedRunner.from_files(
            [COMMANDS / "powershell-wu-search/win11-critical-important-pending.json"]
        ),
        platform="win32",
        now=PINNED_NOW,
        memory=memory,
    )
    found = {u.package: u for u in facts.pending_security_updates().updates}
    assert found["KB5068520"].first_seen == PINNED_NOW - timedelta(days=9)  # memory earlier
    assert found["KB5068861"].first_seen == datetime(2026, 11, 11, 18, 0, tzinfo=UTC)


def test_windows_release_time_in_the_future_is_refused() -> None:
    record = _rec("powershell-wu-search/win11-german-hidden-security-update")
    record["stdout"] = str(record["stdout"]).replace("2026-11-11T18", "2569-11-11T18")
    facts = HostFacts(runner=RecordedRunner([record]), platform="win32", now=PINNED_NOW)
    with pytest.raises(FactParseError, match="LastDeploymentChangeTime lies in the future"):
        facts.pending_security_updates()


def test_windows_empty_search_output_is_an_error_not_nothing_pending() -> None:
    facts = HostFacts(
        runner=RecordedRunner.from_files(
            [COMMANDS / "powershell-wu-search/win11-empty-output.json"]
        ),
        platform="win32",
        now=PINNED_NOW,
    )
    with pytest.raises(FactParseError, match="no output"):
        facts.pending_security_updates()


def _windows_auto(*recordings: str) -> HostFacts:
    return HostFacts(
        runner=RecordedRunner.from_files([COMMANDS / f"{r}.json" for r in recordings]),
        platform="win32",
        now=PINNED_NOW,
    )


def test_windows_defaults_are_checked_against_service_and_pause() -> None:
    found = _windows_auto(
        "reg-query-au-policy/win11-no-policy",
        "reg-query-wuauserv-start/win11-manual",
        "reg-query-wu-ux-settings/absent",
    ).auto_updates()
    assert found.problems == ()
    assert found.settings["wuauserv"] == "Start 0x3 (manual)"
    assert "not paused" in found.settings["pause"]
    assert found.settings["policy"].startswith("no policy: Windows Update defaults apply")
    disabled = _windows_auto(
        "reg-query-au-policy/win11-auoptions-4",
        "reg-query-wuauserv-start/win11-disabled",
        "reg-query-wu-ux-settings/win11-paused-until-december",
    ).auto_updates()
    assert disabled.problems == (
        "the Windows Update service (wuauserv) is disabled (Start 0x4)",
        "updates are paused until 2026-12-11 09:12 UTC (PauseUpdatesExpiryTime)",
        "updates are paused until 2026-12-11 09:12 UTC (PauseQualityUpdatesEndTime)",
    )
    assert disabled.settings["PauseFeatureUpdatesEndTime"] == "2026-12-11T09:12:44Z"


def test_windows_update_service_start_types() -> None:
    assert service_problems(3) == ({"wuauserv": "Start 0x3 (manual)"}, [])
    assert service_problems(2)[1] == []
    assert service_problems(4)[1] == [
        "the Windows Update service (wuauserv) is disabled (Start 0x4)"
    ]
    settings, problems = service_problems(None)
    assert settings == {"wuauserv": "not registered"} and "not registered" in problems[0]


def test_windows_update_service_access_denied_is_an_error() -> None:
    denied = _rec("reg-query-rebootrequired/win11-access-denied")
    record = {
        **_rec("reg-query-wuauserv-start/win11-manual"),
        "returncode": 1,
        "stdout": "",
        "stderr": denied["stderr"],
    }
    facts = HostFacts(
        runner=RecordedRunner([_rec("reg-query-au-policy/win11-no-policy"), record]),
        platform="win32",
        now=PINNED_NOW,
    )
    with pytest.raises(FactCommandFailed, match="Access is denied"):
        facts.auto_updates()


def test_windows_pause_values() -> None:
    def sz(value: str) -> tuple[str, str]:
        return ("REG_SZ", value)

    assert pause_problems({}, PINNED_NOW, "reg")[1] == []
    assert pause_problems(None, PINNED_NOW, "reg")[0]["pause"].endswith("not paused")
    started = {"PauseQualityUpdatesStartTime": sz("2026-11-10T00:00:00Z")}
    assert "paused on 2026-11-10 00:00 UTC" in pause_problems(started, PINNED_NOW, "reg")[1][0]
    long_ago = {"PauseQualityUpdatesStartTime": sz("2026-09-01T00:00:00Z")}
    assert pause_problems(long_ago, PINNED_NOW, "reg")[1] == []  # 35 days are over
    feature = {"PauseFeatureUpdatesEndTime": sz("2027-01-01T00:00:00Z")}
    settings, problems = pause_problems(feature, PINNED_NOW, "reg")
    assert problems == [] and settings["PauseFeatureUpdatesEndTime"] == "2027-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (("REG_SZ", "11.12.2026 09:12"), "not an ISO 8601 UTC time"),
        (("REG_SZ", "2026-12-11T09:12:44"), "not an ISO 8601 UTC time"),
        (("REG_DWORD", "0x1"), "not an ISO 8601 UTC time"),
        (("REG_SZ", "2026-13-45T09:12:44Z"), "not a valid time"),
    ],
)
def test_unreadable_pause_value_is_a_parse_error(value: tuple[str, str], says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        pause_problems({"PauseUpdatesExpiryTime": value}, PINNED_NOW, "reg")
