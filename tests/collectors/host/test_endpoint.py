"""Endpoint facts against recorded real outputs: rulesets, sockets, packages, screen lock."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, FIXTURES, HOSTS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.collectors.errors import FactParseError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host import endpoint_firewall as fw
from tillsyn.collectors.host import endpoint_screenlock as sl
from tillsyn.collectors.host import endpoint_software as sw
from tillsyn.collectors.host.endpoint import PacketFilter, SourceFailure
from tillsyn.collectors.host.endpoint_processes import (
    PsutilTable,
    RecordedTable,
    listeners,
    parse_snapshot,
)
from tillsyn.collectors.memory import FactMemory

PROCESSES = FIXTURES / "processes"


def _stdout(path: str) -> str:
    return str(json.loads((COMMANDS / path).read_text())["stdout"])


def _nft(case: str) -> dict[tuple[str, str], fw.InputChain]:
    chains = fw.parse_nft_ruleset(_stdout(f"nft-list-ruleset/{case}.json"), "nft")
    return {(c.table, c.name): c for c in chains}


# -- nftables -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "table", "chain", "outcome", "why"),
    [
        ("debian12-inet-default-deny", "inet filter", "input", "deny", "policy drop"),
        ("debian12-inet-final-reject", "inet filter", "input", "deny", "input rule 4"),
        ("debian12-shipped-nftables-conf", "inet filter", "input", "open", "policy accept"),
        ("debian12-interface-accept", "inet filter", "input", "open", 'iifname == "eth0"'),
        ("debian12-ipv4-only-deny", "ip filter", "input", "deny", "policy drop"),
        ("debian12-ufw-deny", "ip filter", "INPUT", "deny", "policy drop"),
        ("debian12-ufw-deny", "ip6 filter", "INPUT", "deny", "policy drop"),
        ("debian12-ufw-allow", "ip filter", "INPUT", "open", "policy accept"),
        ("debian12-firewalld-public", "inet firewalld", "filter_INPUT", "deny", "reject"),
        ("debian12-firewalld-trusted", "inet firewalld", "filter_INPUT", "open", "trusted"),
    ],
)
def test_recorded_nft_rulesets_are_judged_like_the_kernel_would(
    case: str, table: str, chain: str, outcome: str, why: str
) -> None:
    found = _nft(case)[(table, chain)]
    assert found.outcome == outcome
    assert why in found.reason


def test_an_empty_ruleset_has_no_input_chain() -> None:
    assert _nft("debian12-empty") == {}


def test_ufw_not_local_drop_does_not_count_as_a_deny_of_its_own() -> None:
    """ufw-not-local returns every packet for this host before its DROP: only the policy
    decides, so ufw with 'default allow incoming' must be open."""
    assert _nft("debian12-ufw-allow")[("ip6 filter", "INPUT")].outcome == "open"


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        (_stdout("nft-list-ruleset/debian12-ufw-deny-truncated.json"), "output is not JSON"),
        ("", "output is not JSON"),
        ('{"rules": []}', "expected an object with an 'nftables' list"),
        ('{"nftables": [{"rule": {"family": "ip", "table": "t"}}]}', "rule without"),
        ('{"nftables": [{"chain": {"family": "ip"}}]}', "chain without a name"),
        ('{"nftables": [{"table": {}, "chain": {}}]}', "one-key object"),
        (
            '{"nftables": [{"chain": {"family": "ip", "table": "t", "name": "in", '
            '"type": "filter", "hook": "input"}}]}',
            "has no accept/drop policy",
        ),
    ],
)
def test_malformed_nft_output_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        fw.parse_nft_ruleset(stdout, "nft -j list ruleset")


# -- the default-deny walk --------------------------------------------------------------------


def _ipt(rules: str, policy: str = "DROP") -> fw.InputChain:
    text = f"*filter\n:INPUT {policy} [0:0]\n:sub - [0:0]\n{rules}COMMIT\n"
    ((chain,),) = [fw.parse_iptables_save(text, "iptables-save", "ipv4")[1]]
    return chain


@pytest.mark.parametrize(
    ("rules", "policy", "outcome"),
    [
        ("-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\n", "DROP", "deny"),
        ("-A INPUT -j ACCEPT\n", "DROP", "open"),
        ("-A INPUT -i eth0 -j ACCEPT\n", "DROP", "open"),
        ('-A INPUT -i eth0 -m comment --comment "lan" -j ACCEPT\n', "DROP", "open"),
        ("-A INPUT ! -i lo -j ACCEPT\n", "DROP", "open"),
        ("-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j REJECT\n", "ACCEPT", "deny"),
        ("-A INPUT -j sub\n-A sub -j DROP\n", "ACCEPT", "deny"),
        ("-A INPUT -j sub\n-A sub -p tcp -j RETURN\n-A sub -j DROP\n", "ACCEPT", "open"),
        ("-A INPUT -p tcp -j sub\n-A sub -j ACCEPT\n", "DROP", "deny"),
        ("-A INPUT -i eth1 -j sub\n-A sub -j ACCEPT\n", "DROP", "open"),
        ("-A INPUT -g sub\n-A sub -p tcp -j ACCEPT\n", "ACCEPT", "open"),
        ("-A INPUT -j sub\n-A sub -j NFQUEUE\n-A INPUT -j DROP\n", "ACCEPT", "deny"),
        ('-A INPUT -j LOG --log-prefix "in: "\n-A INPUT -j DROP\n', "ACCEPT", "deny"),
    ],
)
def test_the_walk_follows_netfilter_semantics(rules: str, policy: str, outcome: str) -> None:
    assert _ipt(rules, policy).outcome == outcome


def test_firewalld_on_iptables_follows_upper_case_user_chains() -> None:
    """RHEL 7's firewalld (iptables backend) names its chains INPUT_ZONES, IN_trusted ...:
    a jump to them must be followed, or the trusted zone's ACCEPT would be missed."""
    text = (
        "*filter\n:INPUT ACCEPT [0:0]\n:INPUT_ZONES - [0:0]\n:IN_trusted - [0:0]\n"
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A INPUT -i lo -j ACCEPT\n-A INPUT -j INPUT_ZONES\n"
        "-A INPUT -j REJECT --reject-with icmp-host-prohibited\n"
        "-A INPUT_ZONES -g IN_trusted\n-A IN_trusted -j ACCEPT\nCOMMIT\n"
    )
    ((chain,),) = [fw.parse_iptables_save(text, "iptables-save", "ipv4")[1]]
    assert chain.outcome == "open"
    assert "IN_trusted rule 1" in chain.reason


def test_iptables_backend_is_read_from_header_or_error() -> None:
    legacy = _stdout("iptables-save/debian12-legacy-ipv4-deny.json")
    nft = _stdout("iptables-save/debian12-ufw-deny.json")
    denied = json.loads(
        (COMMANDS / "iptables-save/debian12-ufw-deny-unprivileged.json").read_text()
    )
    assert fw.parse_iptables_save(legacy, "iptables-save", "ipv4")[0] == "legacy"
    assert fw.parse_iptables_save(nft, "iptables-save", "ipv4")[0] == "nf_tables"
    assert fw.iptables_backend(str(denied["stderr"])) == "nf_tables"


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("*filter\n:INPUT DROP [0:0]\n", "has no COMMIT"),
        ("*filter\n:INPUT DROP [0:0]\n-A OTHER -j DROP\nCOMMIT\n", "undeclared chain"),
        ("*filter\n:INPUT DROP [0:0]\nrandom words\nCOMMIT\n", "not iptables-save output"),
        ('*filter\n:INPUT DROP [0:0]\n-A INPUT -m comment --comment "x -j DROP\nCOMMIT\n', "quot"),
        ("*filter\n:INPUT QUEUE [0:0]\nCOMMIT\n", "is not ACCEPT/DROP"),
    ],
)
def test_malformed_iptables_save_output_is_a_parse_error(stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        fw.parse_iptables_save(stdout, "iptables-save", "ipv4")


def _chain(outcome: str, versions: tuple[fw.IpVersion, ...] = ("ipv4",)) -> fw.InputChain:
    return fw.InputChain("nft", "ip filter", "input", versions, "drop", outcome, "x", 0)  # type: ignore[arg-type]


def test_one_denying_chain_is_enough_even_when_another_source_failed() -> None:
    pf = PacketFilter(
        (_chain("deny"),), ("nft",), (SourceFailure("iptables-legacy-save", "x", False),), ()
    )
    assert pf.protection("ipv4").state == "deny"


def test_open_is_only_said_when_every_uncovered_source_was_read() -> None:
    legacy = SourceFailure("iptables-legacy-save", "refused", covered=False)
    nf_tables = SourceFailure("iptables-save", "incompatible", covered=True)
    assert PacketFilter((_chain("open"),), ("nft",), (legacy,), ()).protection("ipv4").state == (
        "unknown"
    )
    assert PacketFilter((_chain("open"),), ("nft",), (nf_tables,), ()).protection("ipv4").state == (
        "open"
    )
    assert PacketFilter((), (), (), ("nft",)).protection("ipv6").state == "unknown"


# -- front-ends -------------------------------------------------------------------------------


def test_ufw_status_says_active_and_default_incoming() -> None:
    deny = fw.parse_ufw_status(_stdout("ufw-status/debian12-active-deny.json"), "ufw")
    assert (deny.active, deny.incoming) == (True, "deny")
    assert fw.parse_ufw_status(_stdout("ufw-status/debian12-inactive.json"), "ufw").active is False
    with pytest.raises(FactParseError, match="no 'Status"):
        fw.parse_ufw_status("ERROR: You need to be root to run this script\n", "ufw")
    with pytest.raises(FactParseError, match="Default"):
        fw.parse_ufw_status("Status: active\n", "ufw")


def test_firewalld_zones_keep_each_target() -> None:
    public = fw.parse_firewalld_zones(
        _stdout("firewall-cmd-list-all-zones/debian12-default-public.json"), "firewall-cmd"
    )
    trusted = fw.parse_firewalld_zones(
        _stdout("firewall-cmd-list-all-zones/debian12-default-trusted.json"), "firewall-cmd"
    )
    # firewalld 1.3 marks no zone "(default)" here: --get-default-zone names it
    assert {z.name: z.target for z in public}["public"] == "default"
    assert {z.name: z.target for z in trusted}["trusted"] == "ACCEPT"
    assert {z.name: z.target for z in public}["drop"] == "DROP"
    with pytest.raises(FactParseError, match="no target"):
        fw.parse_firewalld_zones("public (default)\n  interfaces: eth0\n", "firewall-cmd")
    with pytest.raises(FactParseError, match="no zone"):
        fw.parse_firewalld_zones("\n", "firewall-cmd")


def test_ipv6_is_disabled_only_when_every_interface_says_so() -> None:
    disabled = HostFacts(root=HOSTS / "endpoint-ipv6-disabled", platform="linux")
    enabled = HostFacts(root=HOSTS / "endpoint-debian12-baseline", platform="linux")
    assert disabled.ipv6_enabled() is False
    assert enabled.ipv6_enabled() is True
    with pytest.raises(FactUnavailable):
        HostFacts(root="/nonexistent", platform="linux").ipv6_enabled()


# -- sockets and processes --------------------------------------------------------------------


def _table(name: str) -> RecordedTable:
    return RecordedTable(PROCESSES / f"{name}.json", name)


def test_recorded_legacy_listeners_carry_their_owners() -> None:
    found = {
        (x.transport, x.address): x for x in listeners(_table("debian12-legacy-services").read())
    }
    assert found[("tcp", "0.0.0.0:23")].process == "inetutils-inetd"
    assert found[("tcp", "0.0.0.0:21")].process == "vsftpd"
    assert found[("udp", "0.0.0.0:69")].process == "in.tftpd"
    assert ("tcp", "[::]:111") in found
    assert not any(x.port == 53 and x.transport == "tcp" for x in found.values())


def test_an_unprivileged_snapshot_shows_sockets_without_pids() -> None:
    table = _table("debian12-legacy-services-unprivileged").read()
    assert table.euid == 65534
    found = listeners(table)
    assert any(x.port == 23 for x in found)
    assert all(x.pid is None and x.process is None for x in found)


def test_connected_sockets_are_not_listeners() -> None:
    table = _table("debian12-baseline").read()
    assert len(listeners(table)) < len(table.sockets)
    assert all(x.ip for x in listeners(table))


def test_loopback_is_told_apart_from_all_addresses() -> None:
    found = {x.address: x for x in listeners(_table("debian12-loopback-telnet").read())}
    assert found["127.0.0.1:23"].loopback_only
    assert found["[::1]:6379"].loopback_only
    assert not found["0.0.0.0:2024"].loopback_only


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([], "not an object"),
        ({"sockets": [], "processes": None}, "neither 'processes'"),
        ({"sockets": [{"type": "tcp", "family": "inet", "laddr": "x"}], "processes": []}, "laddr"),
        (
            {
                "sockets": [{"type": "sctp", "family": "inet", "laddr": ["::", 1]}],
                "processes": [],
            },
            "unknown type",
        ),
        (
            {
                "sockets": [{"type": "tcp", "family": "inet", "laddr": ["::", 1], "pid": "1"}],
                "processes": [],
            },
            "'pid' is not an integer",
        ),
        ({"sockets": [], "processes": [{"name": "x"}]}, "integer 'pid'"),
    ],
)
def test_malformed_snapshots_are_refused(data: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_snapshot(data, "test")


def test_the_live_machine_gets_psutil_and_a_tree_gets_its_recording() -> None:
    assert isinstance(HostFacts(root="/").process_table(), PsutilTable)
    recorded = HostFacts(root=HOSTS / "endpoint-debian12-baseline").process_table()
    assert isinstance(recorded, RecordedTable)
    with pytest.raises(FactUnavailable, match="does not exist"):
        HostFacts(root=HOSTS / "endpoint-ipv6-disabled").process_snapshot()


def test_the_live_psutil_table_parses_on_this_machine() -> None:
    table = PsutilTable().read()
    assert table.processes
    assert table.sockets_error is None or "AccessDenied" in table.sockets_error


def test_snapshots_never_hold_command_lines() -> None:
    for path in PROCESSES.glob("*.json"):
        assert "cmdline" not in path.read_text(), path


# -- packages ---------------------------------------------------------------------------------


def test_dpkg_counts_only_installed_packages() -> None:
    installed = sw.parse_dpkg(
        _stdout("dpkg-query-packages/debian12-anydesk-standin-installed.json"), "d"
    )
    removed = sw.parse_dpkg(
        _stdout("dpkg-query-packages/debian12-anydesk-standin-removed.json"), "d"
    )
    assert installed["anydesk"] == "6.3.2-tillsyn-standin"
    assert "anydesk" not in removed
    assert "dpkg" in removed


@pytest.mark.parametrize(
    ("parse", "stdout", "says"),
    [
        (sw.parse_dpkg, "bash install ok installed 5.2\n", "package/status/version"),
        (sw.parse_dpkg, "bash\tinstalled\t5.2\n", "package/status/version"),
        (sw.parse_rpm, "bash 5.1.8-9.el9\n", "name/version"),
        (sw.parse_snap, "core20 20231123 2105\n", "header"),
        (sw.parse_snap, _stdout("snap-list/ubuntu-lxd-host.json") + "broken line\n", "five"),
    ],
)
def test_malformed_package_lists_are_parse_errors(parse: object, stdout: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse(stdout, "query")  # type: ignore[operator]


def test_snap_and_rpm_recordings_parse() -> None:
    assert set(sw.parse_snap(_stdout("snap-list/ubuntu-lxd-host.json"), "snap")) == {
        "core20",
        "core22",
        "lxd",
        "snapd",
    }
    assert sw.parse_rpm(_stdout("rpm-qa/rhel9-teamviewer.json"), "rpm")["teamviewer"] == (
        "15.48.4-0"
    )
    assert sw.parse_snap("", "snap") == {}


def test_a_reused_package_list_keeps_when_it_was_collected() -> None:
    memory = FactMemory()
    recordings = [COMMANDS / "dpkg-query-packages/debian12-vm.json"]
    earlier = PINNED_NOW - timedelta(minutes=20)
    first = HostFacts(
        root="/nonexistent",
        runner=RecordedRunner.from_files(recordings, missing=["rpm", "snap"]),
        platform="linux",
        now=earlier,
        memory=memory,
        command_cache_ttl=3600,
    )
    first.installed_software()
    runner = RecordedRunner.from_files([], missing=["rpm", "snap"])
    second = HostFacts(
        root="/nonexistent",
        runner=runner,
        platform="linux",
        now=PINNED_NOW,
        memory=memory,
        command_cache_ttl=3600,
    )
    (dpkg,) = second.installed_software().lists
    assert dpkg.reused and dpkg.collected_at == earlier
    assert [argv[0] for argv, _ in runner.calls] == ["rpm", "snap"]


def test_the_dpkg_format_string_is_shown_escaped() -> None:
    assert sw.shown(sw.DPKG_QUERY) == r"dpkg-query -W -f ${Package}\t${Status}\t${Version}\n"


# -- Samba ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "minimum", "smb1"),
    [("debian12-default", "SMB2_02", False), ("debian12-nt1", "NT1", True)],
)
def test_samba_minimum_protocol_from_testparm(case: str, minimum: str, smb1: bool) -> None:
    facts = HostFacts(
        root="/nonexistent",
        runner=RecordedRunner.from_files([COMMANDS / f"testparm-min-protocol/{case}.json"]),
        platform="linux",
    )
    samba = facts.samba_min_protocol()
    assert samba is not None and (samba.minimum, samba.allows_smb1) == (minimum, smb1)


def test_no_testparm_means_no_samba() -> None:
    facts = HostFacts(root="/nonexistent", runner=RecordedRunner(missing=["testparm"]))
    assert facts.samba_min_protocol() is None


# -- desktop and screen lock ------------------------------------------------------------------


def test_session_kinds() -> None:
    gnome = (
        HOSTS / "endpoint-debian12-gnome-shipped/usr/share/xsessions/gnome.desktop"
    ).read_text()
    plasma = (
        HOSTS / "endpoint-debian12-kde-shipped/usr/share/xsessions/plasma.desktop"
    ).read_text()
    lightdm = HOSTS / "endpoint-debian12-xfce-lightdm/usr/share/xsessions"
    assert sl.session_kind(gnome) == "gnome"
    assert sl.session_kind(plasma) == "kde"
    assert sl.session_kind((lightdm / "xfce.desktop").read_text()) == "other"
    assert sl.session_kind((lightdm / "lightdm-xsession.desktop").read_text()) == "default"


def test_a_server_has_no_desktop_even_with_graphical_target() -> None:
    desktop = HostFacts(root=HOSTS / "endpoint-debian12-baseline", platform="linux").desktop()
    assert not desktop.present
    assert desktop.default_target == "graphical.target"


def test_gnome_settings_come_from_locked_system_databases() -> None:
    facts = HostFacts(root=HOSTS / "endpoint-debian12-gnome-dconf-locked", platform="linux")
    settings = facts.gnome_screen_lock()
    idle = settings["/org/gnome/desktop/session/idle-delay"]
    assert (idle.value, idle.enforced) == ("uint32 600", True)
    assert idle.source == "/etc/dconf/db/local.d/00-screen-lock"


def test_an_unlocked_system_value_is_not_enforced(tmp_path: Path) -> None:
    db = tmp_path / "etc/dconf/db/site.d"
    (db / "locks").mkdir(parents=True)
    (tmp_path / "etc/dconf/profile").mkdir(parents=True)
    (tmp_path / "etc/dconf/profile/user").write_text("user-db:user\nsystem-db:site\n")
    (db / "10-lock").write_text(
        "[org/gnome/desktop/session]\nidle-delay=uint32 300\n"
        "[org/gnome/desktop/screensaver]\nlock-enabled=true\nlock-delay=uint32 0\n"
        "idle-activation-enabled=true\n"
    )
    (db / "locks/lock").write_text("/org/gnome/desktop/screensaver/lock-enabled\n")
    settings = HostFacts(root=tmp_path, platform="linux").gnome_screen_lock()
    assert settings["/org/gnome/desktop/screensaver/lock-enabled"].enforced
    assert not settings["/org/gnome/desktop/session/idle-delay"].enforced


def test_dconf_keyfile_parsing() -> None:
    text = "# comment\n[org/gnome/desktop/session]\nidle-delay=uint32 300\n"
    assert sl.parse_keyfile(text, "f", "fact") == {
        "/org/gnome/desktop/session/idle-delay": "uint32 300"
    }
    with pytest.raises(FactParseError, match="not key=value in a group"):
        sl.parse_keyfile("idle-delay=1\n", "f", "fact")
    with pytest.raises(FactParseError, match="line 2"):
        sl.parse_keyfile("[a/b]\njust words\n", "f", "fact")
    assert sl.parse_dconf_profile("user-db:user\n# x\nsystem-db:local\nsystem-db:site\n") == (
        "local",
        "site",
    )
    assert (sl.gvariant_int("uint32 300"), sl.gvariant_int("60"), sl.gvariant_int("true")) == (
        300,
        60,
        None,
    )


def test_kscreenlockerrc_immutability_marks() -> None:
    group = sl.parse_kscreenlockerrc("[Daemon][$i]\nTimeout=10\n", "f")
    key = sl.parse_kscreenlockerrc("[Daemon]\nTimeout[$i]=10\nAutolock=true\n", "f")
    whole = sl.parse_kscreenlockerrc("[$i]\n[Daemon]\nTimeout=10\n", "f")
    assert group.values["Timeout"] == ("10", True)
    assert key.values == {"Timeout": ("10", True), "Autolock": ("true", False)}
    assert whole.values["Timeout"] == ("10", True)
    with pytest.raises(FactParseError, match="not key=value"):
        sl.parse_kscreenlockerrc("[Daemon]\nTimeout\n", "f")
