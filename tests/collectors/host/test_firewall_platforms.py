"""macOS application firewall and Windows firewall profiles: parsers and collector.

The outputs are reconstructed (see each fixture's provenance); these tests pin what the
parsers accept, and that everything else is an error rather than a guess.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import COMMANDS
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host import endpoint_firewall_macos as fwm
from tillsyn.collectors.host import endpoint_firewall_windows as fww


def _recording(name: str) -> dict[str, object]:
    return dict(json.loads((COMMANDS / name).read_text()))


def _parse_args(name: str) -> tuple[str, str, str]:
    recording = _recording(name)
    argv = recording["argv"]
    assert isinstance(argv, list)
    return str(recording["stdout"]), str(recording["stderr"]), " ".join(argv)


# -- macOS: socketfilterfw ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "state"),
    [("enabled", 1), ("disabled", 0), ("block-all-state-2", 2)],
)
def test_global_state_fixtures(fixture: str, state: int) -> None:
    got, line = fwm.parse_global_state(
        *_parse_args(f"socketfilterfw-getglobalstate/{fixture}.json")
    )
    assert got == state and line.startswith("Firewall is ")


@pytest.mark.parametrize(
    "stdout",
    [
        "Firewall is enabled. (State = 2)\n",  # older releases
        "Firewall is blocking all non-essential connections. (State = 2)\n",
        "\nFirewall is blocking all non-essential incoming connections. (State = 2)  \n",
    ],
)
def test_block_all_state_in_every_wording(stdout: str) -> None:
    assert fwm.parse_global_state(stdout, "", "socketfilterfw")[0] == 2


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "Firewall is enabled.\n",  # no state number: never guessed from the words
        "Firewall is disabled. (State = 1)\n",  # contradicts itself
        "Firewall is enabled. (State = 0)\n",
        "Firewall is enabled. (State = 3)\n",
        "Firewall is enabled. (State = 1)\nFirewall is enabled. (State = 1)\n",
        "Firewall stealth mode is on\n",  # the answer to another question
        "Le coupe-feu est activé. (État = 1)\n",
    ],
)
def test_unknown_global_state_is_a_parse_error(stdout: str) -> None:
    with pytest.raises(FactParseError):
        fwm.parse_global_state(stdout, "", "socketfilterfw --getglobalstate")


@pytest.mark.parametrize(
    ("stdout", "on"),
    [
        ("Firewall has block all state set to enabled.\n", True),
        ("Firewall has block all state set to disabled.\n", False),
        ("Block all ENABLED!\n", True),
        ("Block all DISABLED! \n", False),
    ],
)
def test_block_all_wordings(stdout: str, on: bool) -> None:
    assert fwm.parse_block_all(stdout, "", "socketfilterfw --getblockall")[0] is on


@pytest.mark.parametrize(
    ("stdout", "on"),
    [
        ("Firewall stealth mode is on\n", True),
        ("Firewall stealth mode is off\n", False),
        ("Stealth mode enabled\n", True),
        ("Stealth mode disabled\n", False),
    ],
)
def test_stealth_mode_wordings(stdout: str, on: bool) -> None:
    assert fwm.parse_stealth_mode(stdout, "", "socketfilterfw --getstealthmode")[0] is on


@pytest.mark.parametrize(
    ("parse", "stdout"),
    [
        (fwm.parse_block_all, "Block all is maybe\n"),
        (fwm.parse_block_all, ""),
        (fwm.parse_stealth_mode, "Firewall stealth mode is maybe\n"),
        (fwm.parse_stealth_mode, "Firewall is enabled. (State = 1)\n"),
    ],
)
def test_unknown_switch_answers_are_parse_errors(parse: object, stdout: str) -> None:
    assert callable(parse)
    with pytest.raises(FactParseError):
        parse(stdout, "", "socketfilterfw")


def test_stealth_off_is_named_but_the_firewall_still_protects() -> None:
    alf = fwm.ApplicationFirewall(1, False, False, ())
    assert alf.enabled
    assert "stealth mode is off" in alf.describe()


def test_state_two_blocks_all_even_when_getblockall_disagrees() -> None:
    alf = fwm.ApplicationFirewall(2, False, True, ())
    assert alf.enabled and alf.blocks_all
    assert alf.observed()["block_all"] is True


def test_options_stored_while_off_do_not_protect() -> None:
    alf = fwm.ApplicationFirewall(0, True, True, ())
    assert not alf.enabled
    assert "only in force while the firewall is on" in alf.describe()


def _mac(*names: str, missing: tuple[str, ...] = ()) -> HostFacts:
    runner = RecordedRunner.from_files((COMMANDS / n for n in names), missing=missing)
    return HostFacts(runner=runner, platform="darwin")


def test_collector_reads_the_three_answers() -> None:
    alf = _mac(
        "socketfilterfw-getglobalstate/block-all-state-2.json",
        "socketfilterfw-getblockall/enabled.json",
        "socketfilterfw-getstealthmode/on.json",
    ).application_firewall()
    assert (alf.state, alf.block_all, alf.stealth) == (2, True, True)
    assert alf.said[2] == "Firewall stealth mode is on"


def test_collector_refuses_a_failed_socketfilterfw() -> None:
    failed = _recording("socketfilterfw-getglobalstate/enabled.json") | {
        "returncode": 1,
        "stdout": "",
        "stderr": "socketfilterfw: unexpected failure\n",
    }
    facts = HostFacts(runner=RecordedRunner([failed]), platform="darwin")
    with pytest.raises(FactCommandFailed):
        facts.application_firewall()


def test_missing_socketfilterfw_is_unavailable() -> None:
    with pytest.raises(FactUnavailable):
        _mac(missing=(fwm.SOCKETFILTERFW,)).application_firewall()


def test_each_platform_reader_refuses_the_others() -> None:
    with pytest.raises(FactUnavailable, match="not implemented for platform linux"):
        HostFacts(runner=RecordedRunner(), platform="linux").application_firewall()
    with pytest.raises(FactUnavailable, match="not implemented for platform darwin"):
        HostFacts(runner=RecordedRunner(), platform="darwin").windows_firewall()
    with pytest.raises(FactUnavailable, match="not implemented for platform win32"):
        HostFacts(runner=RecordedRunner(), platform="win32").packet_filter()


# -- Windows: Get-NetFirewallProfile --------------------------------------------------------


def _profiles(fixture: str) -> dict[str, fww.FirewallProfile]:
    return fww.parse_profiles(*_parse_args(f"powershell-firewall-profiles/{fixture}.json"))


@pytest.mark.parametrize(
    ("fixture", "states"),
    [
        ("win11-all-block", {"Domain": "deny", "Private": "deny", "Public": "deny"}),
        ("win11-inbound-not-configured", {"Domain": "deny", "Private": "deny", "Public": "deny"}),
        ("win11-public-off", {"Domain": "deny", "Private": "deny", "Public": "open"}),
        ("win11-private-inbound-allow", {"Domain": "deny", "Private": "open", "Public": "deny"}),
        ("win11-public-missing", {"Domain": "deny", "Private": "deny"}),
    ],
)
def test_profile_fixtures(fixture: str, states: dict[str, str]) -> None:
    assert {name: p.state for name, p in _profiles(fixture).items()} == states


def _one(**fields: object) -> str:
    item = {
        "Name": "Public",
        "Enabled": "True",
        "DefaultInboundAction": "Block",
        "DefaultOutboundAction": "Allow",
    }
    return json.dumps(item | fields)


@pytest.mark.parametrize(
    ("fields", "enabled", "inbound", "state"),
    [
        ({}, "True", "Block", "deny"),
        # the CIM numbers: GpoBoolean True = 1, NetSecurity.Action Block = 4, Allow = 2
        ({"Enabled": 1, "DefaultInboundAction": 4}, "True", "Block", "deny"),
        ({"Enabled": "1", "DefaultInboundAction": "2"}, "True", "Allow", "open"),
        ({"Enabled": 0}, "False", "Block", "open"),
        ({"DefaultInboundAction": 0}, "True", "NotConfigured", "deny"),
        ({"Enabled": "NotConfigured"}, "NotConfigured", "Block", "unknown"),
        ({"Enabled": 2}, "NotConfigured", "Block", "unknown"),
    ],
)
def test_values_by_name_and_by_cim_number(
    fields: dict[str, object], enabled: str, inbound: str, state: str
) -> None:
    (profile,) = fww.parse_profiles(_one(**fields), "", "ps").values()  # one object, unwrapped
    assert (profile.enabled, profile.inbound, profile.state) == (enabled, inbound, state)


@pytest.mark.parametrize(
    "fields",
    [
        {"DefaultInboundAction": 1},  # NET_FW_ACTION's Allow: not a NetSecurity.Action value
        {"DefaultInboundAction": "Blocked"},
        {"Enabled": True},  # a JSON boolean means the script's string cast did not run
        {"Enabled": None},
        {"DefaultOutboundAction": "Erlauben"},
        {"Name": ""},
    ],
)
def test_unknown_values_are_parse_errors(fields: dict[str, object]) -> None:
    with pytest.raises(FactParseError):
        fww.parse_profiles(_one(**fields), "", "ps")


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [
        ("", ""),
        ("[]garbage", ""),
        ("[" + _one() + "," + _one() + "]", ""),  # the same profile twice
        ("[" + _one() + "]", "Get-NetFirewallProfile : The RPC server is unavailable."),
        ('"Domain"', ""),
    ],
)
def test_malformed_answers_are_parse_errors(stdout: str, stderr: str) -> None:
    with pytest.raises(FactParseError):
        fww.parse_profiles(stdout, stderr, "ps")


def test_not_json_fixture_is_a_parse_error() -> None:
    with pytest.raises(FactParseError, match="not JSON"):
        _profiles("win11-not-json")


def _windows(*recordings: dict[str, object], missing: tuple[str, ...] = ()) -> HostFacts:
    return HostFacts(runner=RecordedRunner(recordings, missing=missing), platform="win32")


def test_collector_reads_the_profiles() -> None:
    facts = _windows(_recording("powershell-firewall-profiles/win11-public-off.json"))
    profiles = facts.windows_firewall()
    assert sorted(profiles) == ["Domain", "Private", "Public"]
    assert profiles["Public"].enabled == "False"


def test_access_denied_is_a_permission_error_named_briefly() -> None:
    facts = _windows(_recording("powershell-firewall-profiles/win11-access-denied.json"))
    with pytest.raises(FactPermissionDenied) as caught:
        facts.windows_firewall()
    assert caught.value.call == fww.CALL
    assert caught.value.reason == "access denied: Get-NetFirewallProfile : Access is denied."


def test_other_failures_keep_the_exit_status_and_name_the_call_briefly() -> None:
    failed = _recording("powershell-firewall-profiles/win11-all-block.json") | {
        "returncode": 1,
        "stdout": "",
        "stderr": "Get-NetFirewallProfile : The RPC server is unavailable.\r\n",
    }
    with pytest.raises(FactCommandFailed) as caught:
        _windows(failed).windows_firewall()
    assert caught.value.call == fww.CALL and caught.value.returncode == 1


def test_missing_powershell_is_unavailable_and_named_briefly() -> None:
    with pytest.raises(FactUnavailable) as caught:
        _windows(missing=("powershell.exe",)).windows_firewall()
    assert caught.value.call == fww.CALL
