"""Access facts against recorded outputs (sshd -T, ssh-keygen -lf) and recorded/built trees."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.conftest import COMMANDS, HOSTS, PINNED_NOW
from tests.support.recorded import RecordedRunner
from tillsyn.agent.evidence import find_secret, jsonable
from tillsyn.checks._result import Result
from tillsyn.checks.host import access as checks
from tillsyn.collectors.errors import FactParseError, FactUnavailable
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.host.access_accounts import (
    parse_group,
    parse_passwd,
    parse_shadow,
    password_state,
)
from tillsyn.collectors.host.access_baseline import parse_baseline
from tillsyn.collectors.host.access_ssh import (
    expand_tokens,
    fingerprint,
    parse_authorized_keys,
    parse_sshd_t,
)
from tillsyn.collectors.host.access_sudoers import (
    Sudoers,
    effective_grants,
    logical_lines,
    parse_sudoers,
)
from tillsyn.collectors.memory import FactMemory

KEYGEN = COMMANDS / "ssh-keygen-lf"
SSHD = COMMANDS / "sshd-T"
RHEL = HOSTS / "access-rhel9-cloud-drift"
OFFICE = HOSTS / "access-small-office"
FAKE_HASH = "$6$fixture0$svpVu/uFm2IuRnRs38OAW5SpjCtXdmv33rNixiJSU7Tw4dZdJCQbn9BOSljZIi"


def _recording(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _facts(
    root: Path, *recordings: Path, memory: FactMemory | None = None, now: datetime = PINNED_NOW
) -> HostFacts:
    return HostFacts(
        root=root,
        runner=RecordedRunner.from_files(recordings),
        env={},
        platform="linux",
        now=now,
        memory=memory,
    )


# -- accounts ------------------------------------------------------------------------


def test_recorded_debian_accounts_parse() -> None:
    accounts = parse_passwd((HOSTS / "access-debian12-vm/etc/passwd").read_text())
    by_name = {a.name: a for a in accounts}
    assert by_name["root"].uid == 0 and by_name["root"].interactive
    assert not by_name["daemon"].interactive
    assert not by_name["sync"].interactive  # /bin/sync runs sync and exits
    assert all(a.passwd_field == "shadow" for a in accounts)
    shadow = parse_shadow((HOSTS / "access-debian12-vm/etc/shadow").read_text())
    assert shadow["root"].password == "never_set" and shadow["root"].locked
    assert shadow["systemd-network"].password == "never_set"  # "!*"


@pytest.mark.parametrize(
    ("field", "state", "locked"),
    [
        ("", "empty", False),
        ("!", "never_set", True),
        ("!!", "never_set", True),  # RHEL's marker for "no password yet"
        ("*", "never_set", True),
        ("!*", "never_set", True),
        (FAKE_HASH, "set", False),
        ("!" + FAKE_HASH, "locked", True),
    ],
)
def test_password_state_is_derived_without_keeping_the_hash(
    field: str, state: str, locked: bool
) -> None:
    assert password_state(field) == (state, locked)


def test_shadow_state_keeps_no_hash_and_reads_the_expiry_date() -> None:
    shadow = parse_shadow((RHEL / "etc/shadow").read_text())
    assert shadow["dave"].expires_on == date(2024, 10, 4)
    assert shadow["dave"].expired(date(2026, 11, 23))
    assert shadow["kiosk"].password == "empty"
    assert "$6$" not in repr(shadow)


@pytest.mark.parametrize(
    ("parser", "text", "says"),
    [
        (parse_passwd, "root:x:0:0:root:/root\n", "expected 7 fields"),
        (parse_passwd, "root:x:zero:0:root:/root:/bin/bash\n", "uid 'zero' is not a number"),
        (parse_passwd, "+::::::\n", "NIS compat"),
        (parse_passwd, "", "no account at all"),
        (parse_group, "sudo:x:27\n", "expected 4 fields"),
        (parse_shadow, f"root:{FAKE_HASH}:19000\n", "expected 9 fields"),
        (parse_shadow, "root:*:19000:0:99999:7::soon:\n", "expiry day 'soon'"),
    ],
)
def test_malformed_account_files_are_parse_errors(parser: object, text: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parser(text)  # type: ignore[operator]


def test_parse_errors_never_quote_a_password_hash() -> None:
    with pytest.raises(FactParseError) as caught:
        parse_shadow(f"root:{FAKE_HASH}:19000\n")
    assert "$6$" not in str(caught.value)
    assert "<password field>" in str(caught.value)


def _results(check: object, facts: HostFacts, params: object) -> list[Result]:
    return list(check(facts, params))  # type: ignore[operator]


def test_no_hash_and_no_key_material_reaches_evidence() -> None:
    facts = _facts(RHEL, SSHD / "debian12-root.json")
    results = _results(checks.accounts, facts, checks.AccountsParams())
    results += _results(checks.ssh_keys, facts, checks.SshKeysParams())
    blobs = [pub.read_text().split()[1] for pub in KEYGEN.glob("*.pub")]
    assert len(blobs) == 4
    for result in results:
        evidence = jsonable({"m": result.message, "o": result.observed, "e": result.expected})
        assert find_secret(evidence) is None, result.message
        text = json.dumps(evidence)
        assert "$6$" not in text
        assert not any(blob[:30] in text for blob in blobs)


# -- ssh -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ed25519", "rsa", "ecdsa", "ecdsa384"])
def test_fingerprints_match_ssh_keygen(name: str) -> None:
    oracle = str(_recording(KEYGEN / f"{name}.json")["stdout"]).split()[1]
    keys = parse_authorized_keys((KEYGEN / f"{name}.pub").read_text(), f"{name}.pub")
    assert [k.fingerprint for k in keys] == [oracle]


def test_fingerprint_is_unpadded_base64_of_sha256() -> None:
    assert fingerprint(b"") == "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"


def test_authorized_key_options_with_quoted_commas_and_escaped_quotes() -> None:
    (key,) = parse_authorized_keys((RHEL / "root/.ssh/authorized_keys").read_text(), "/root")
    assert key.type == "ssh-ed25519"
    assert key.options[:3] == ("no-port-forwarding", "no-agent-forwarding", "no-X11-forwarding")
    assert key.options[3].startswith('command="echo \'Please login as the user \\"ec2-user\\"')
    (ci,) = parse_authorized_keys((RHEL / "home/ci/.ssh/authorized_keys").read_text(), "ci")
    assert ci.options == (
        "restrict",
        'command="/usr/local/bin/deploy.sh"',
        'from="10.20.0.0/16"',
        'expiry-time="20270101"',
    )
    assert ci.comment == "ci-deploy"


def _pub(name: str) -> list[str]:
    return (KEYGEN / f"{name}.pub").read_text().split()


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (f"ssh-foo {_pub('ed25519')[1]}", "not a key line|unknown or missing key type"),
        (f"ssh-ed25519 {_pub('ed25519')[1][:40]}", "truncated"),
        (f"ssh-ed25519 {_pub('ed25519')[1][:-3]}", "not valid base64"),
        (f"ssh-rsa {_pub('ed25519')[1]}", "key line says ssh-rsa but the key is ssh-ed25519"),
        (f'command="unterminated {_pub("ed25519")[1]}', "not a key line"),
        ("ssh-ed25519", "unknown or missing key type"),
    ],
)
def test_malformed_key_lines_are_errors_with_file_and_line(line: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says) as caught:
        parse_authorized_keys(f"# header\n{line}\n", "/home/x/.ssh/authorized_keys")
    assert caught.value.call == "/home/x/.ssh/authorized_keys:2"


def test_sshd_t_recordings() -> None:
    root = parse_sshd_t(str(_recording(SSHD / "debian12-root.json")["stdout"]), "sshd -T")
    assert root.files == (".ssh/authorized_keys", ".ssh/authorized_keys2")
    assert root.command is None
    command = parse_sshd_t(str(_recording(SSHD / "debian12-keys-command.json")["stdout"]), "x")
    assert command.files == ("/etc/ssh/authorized_keys/%u",)
    assert command.command == "/usr/bin/sss_ssh_authorizedkeys"
    with pytest.raises(FactParseError, match="no authorizedkeysfile"):
        parse_sshd_t(str(_recording(SSHD / "truncated.json")["stdout"]), "x")
    with pytest.raises(FactParseError, match="not a 'keyword value' line"):
        parse_sshd_t("Port 22\n", "x")


def test_sshd_failures_fall_back_and_say_why() -> None:
    unprivileged = _facts(
        HOSTS / "access-debian12-vm", SSHD / "debian12-unprivileged.json"
    ).sshd_keys_config()
    assert unprivileged.source == "OpenSSH default"
    assert "no hostkeys available" in unprivileged.note
    rhel = _facts(RHEL, SSHD / "debian12-no-privsep-dir.json").sshd_keys_config()
    assert rhel.files == (".ssh/authorized_keys",)  # from sshd_config, through its Include
    assert "Missing privilege separation directory" in rhel.note


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        (".ssh/authorized_keys", "/home/alice/.ssh/authorized_keys"),
        ("%h/.ssh/keys", "/home/alice/.ssh/keys"),
        ("/etc/ssh/keys/%u", "/etc/ssh/keys/alice"),
        ("/etc/ssh/keys/%U", "/etc/ssh/keys/1000"),
        ("/etc/ssh/100%%/%u", "/etc/ssh/100%/alice"),
    ],
)
def test_authorized_keys_file_tokens(pattern: str, path: str) -> None:
    assert expand_tokens(pattern, "alice", 1000, "/home/alice") == path


def test_unknown_token_is_an_error() -> None:
    with pytest.raises(FactParseError, match="unknown token %x"):
        expand_tokens("/etc/%x", "alice", 1000, "/home/alice")


# -- sudoers -------------------------------------------------------------------------


def _policy(root: Path) -> Sudoers:
    def read(path: str) -> str:
        target = root / path.lstrip("/")
        if not target.exists():
            raise FactUnavailable("host.access.sudo", path, "does not exist")
        return target.read_text()

    def listdir(path: str) -> list[str]:
        target = root / path.lstrip("/")
        return [p.name for p in target.iterdir()] if target.is_dir() else []

    return parse_sudoers("/etc/sudoers", read, listdir, "db01")


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return tmp_path


def test_logical_lines_join_continuations_and_drop_comments() -> None:
    text = "a = b, \\\n   c  # tail\n# Cmnd_Alias X = \\\n#   /bin/ls\n#includedir /etc/d\nx #0 y\n"
    assert list(logical_lines(text)) == [
        (1, "a = b,     c"),
        (5, "#includedir /etc/d"),
        (6, "x #0 y"),
    ]


def test_rhel_drift_tree_resolves_to_people() -> None:
    policy = _policy(RHEL)
    assert policy.files == [
        "/etc/sudoers",
        "/etc/sudoers.d/20-site",
        "/etc/sudoers.d/90-cloud-init-users",
        "/etc/sudoers.local",
    ]  # 30-old~ and README.rpmsave are skipped, as sudo does
    accounts = parse_passwd((RHEL / "etc/passwd").read_text())
    groups = parse_group((RHEL / "etc/group").read_text())
    grants = effective_grants(policy, accounts, groups).grants
    keys = {g.key for g in grants}
    assert "ALL (except eve) ALL=(root) NOPASSWD: /usr/bin/uptime" in keys
    assert "carol ALL=(postgres) NOPASSWD: /usr/bin/psql" in keys  # %dba minus dave
    assert not any(g.principal == "dave" and "psql" in g.command for g in grants)
    assert "ci ALL=(root) /usr/bin/systemctl restart postgresql" in keys  # #1004
    assert 'ci ALL=(root) NOPASSWD: SETENV: /usr/local/bin/deploy.sh ""' in keys  # "ci"
    assert "dave db01,db02=(ALL) !/bin/bash" in keys  # %#1501, negated alias member
    assert "eve ALL=(ALL) ALL" in keys and "eve ALL=(ALL) NOPASSWD: ALL" not in keys
    assert "kiosk ALL=(root) NOPASSWD: /usr/sbin/reboot" in keys  # relative @include
    ec2 = [g for g in grants if g.principal == "ec2-user"]
    assert {g.nopasswd for g in ec2} == {True, False} and all(g.all_commands for g in ec2)
    weakening = [e.render() for e in policy.defaults if checks.weakening(e)]
    assert weakening == ["Defaults:%ops !authenticate", "Defaults env_keep += LD_PRELOAD"]


def test_tags_carry_over_until_the_opposite_tag(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "etc/sudoers": "ray ALL = NOPASSWD: /bin/kill, PASSWD: /bin/ls, /usr/bin/lprm\n"
            "dgb ALL = (operator : operator) /bin/ls, (root) /bin/kill\n"
        },
    )
    accounts = parse_passwd(
        "ray:x:1:1::/h:/bin/sh\ndgb:x:2:2::/h:/bin/sh\noperator:x:3:3::/h:/bin/sh\n"
    )
    grants = effective_grants(_policy(root), accounts, ()).grants
    assert [(g.command, g.nopasswd) for g in grants[:3]] == [
        ("/bin/kill", True),
        ("/bin/ls", False),
        ("/usr/bin/lprm", False),
    ]
    assert [(g.command, g.runas) for g in grants[3:]] == [
        ("/bin/ls", "operator : operator"),
        ("/bin/kill", "root"),
    ]


def test_includedir_is_read_in_lexical_order(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "etc/sudoers": "@includedir /etc/sudoers.d\n",
            "etc/sudoers.d/10_second": "b ALL=ALL\n",
            "etc/sudoers.d/1_whoops": "c ALL=ALL\n",
            "etc/sudoers.d/01_first": "a ALL=ALL\n",
        },
    )
    assert _policy(root).files[1:] == [
        "/etc/sudoers.d/01_first",
        "/etc/sudoers.d/10_second",
        "/etc/sudoers.d/1_whoops",
    ]


@pytest.mark.parametrize(
    ("sudoers", "says"),
    [
        ("bar ALL=\n", r"unexpected end of entry.*\(/etc/sudoers:1\)"),
        ('alice ALL = "/bin/ls\n', "unterminated double quote"),
        ("alice ALL /bin/ls\n", "expected '='"),
        ("alice ALL = ls\n", "not a fully qualified path"),
        ("Cmnd_Alias X = /bin/ls\nCmnd_Alias X = /bin/cat\n", "alias X redefined"),
        ("User_Alias lower = alice\n", "bad alias name"),
        ("Defaults:alice\n", "Defaults without a parameter"),
        ("Defaults env_keep += \n", "has no value"),
        ("@include /etc/sudoers.local\n", "does not exist"),
        ('@include "/etc/sudo ers\n', "unterminated double quote in include path"),
        ("@include /etc/sudoers\n", "nested includes"),
    ],
)
def test_sudoers_that_sudo_would_refuse_are_parse_errors(
    tmp_path: Path, sudoers: str, says: str
) -> None:
    root = _tree(tmp_path, {"etc/sudoers": sudoers})
    with pytest.raises((FactParseError, FactUnavailable), match=says):
        _policy(root)


def test_alias_loop_is_an_error(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"etc/sudoers": "User_Alias A = B\nUser_Alias B = A\nA ALL = ALL\n"})
    with pytest.raises(FactParseError, match="alias loop"):
        effective_grants(_policy(root), parse_passwd("root:x:0:0::/r:/bin/sh\n"), ())


def test_unresolvable_principals_stay_as_written(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"etc/sudoers": "+admins, %:AD\\ Admins ALL = (ALL) ALL\n"})
    grants = effective_grants(_policy(root), parse_passwd("root:x:0:0::/r:/bin/sh\n"), ())
    assert sorted(g.principal for g in grants.grants) == ["%:AD Admins", "+admins"]


def _lines(results: Iterator[Result]) -> list[str]:
    return [f"{r.status} {r.resource.type} {r.resource.id} | {r.message}" for r in results]


def test_unreadable_sudoers_is_permission_denied_not_no_grants() -> None:
    params = checks.PrivilegedParams(baseline_file="/none")
    lines = _run_unprivileged(lambda facts: _lines(checks.privileged(facts, params)))
    sudo = [line for line in lines if " sudoers /etc/sudoers " in line]
    assert sudo and sudo[0].startswith("error"), lines
    assert "readable by root only" in sudo[0]


def test_unreadable_shadow_says_state_unknown() -> None:
    params = checks.AccountsParams(baseline_file="/none")
    lines = _run_unprivileged(lambda facts: _lines(checks.accounts(facts, params)))
    assert any(line.startswith("error file /etc/shadow |") for line in lines), lines
    alice = next(line for line in lines if " account alice " in line)
    assert "locked/expired state unknown" in alice and "not locked" not in alice


def _run_unprivileged(run: Callable[[HostFacts], list[str]]) -> list[str]:
    """``run`` against a copy of the small-office tree whose shadow and sudoers are
    root-only, in a real unprivileged process: a forked child that drops to nobody when
    we are root (the files are then mode 0600 root), else this user (files mode 000)."""
    work = Path(tempfile.mkdtemp(prefix="tillsyn-access-", dir="/tmp"))
    try:
        tree = work / "tree"
        shutil.copytree(OFFICE, tree)
        for path in [work, tree, *tree.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        for secret in ("etc/shadow", "etc/sudoers"):
            (tree / secret).chmod(0o600 if os.geteuid() == 0 else 0o000)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop privileges, run, report through the pipe
            code = 0
            try:
                os.close(read_end)
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                out = json.dumps(run(_facts(tree))).encode()
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                out, code = json.dumps([f"child failed: {exc!r}"]).encode(), 1
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(out)
            os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        lines: list[str] = json.loads(data)
        assert os.waitstatus_to_exitcode(status) == 0, lines
        return lines
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- baseline and memory -------------------------------------------------------------


def test_approved_baseline_parses() -> None:
    text = (OFFICE / "etc/tillsyn/access-baseline.yaml").read_text()
    baseline = parse_baseline(text, "b.yaml")
    assert baseline.approved_at == datetime(2026, 6, 1, tzinfo=UTC)
    assert baseline.privileged_groups is not None
    assert baseline.privileged_groups["sudo"] == frozenset({"alice"})
    assert baseline.ssh_keys is not None and len(baseline.ssh_keys["alice"]) == 2


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("approved_at: 2026-01-01\n", "approved_by is missing"),
        ("approved_by: x\n", "approved_at is missing"),
        ("approved_by: x\napproved_at: last spring\n", "not a date"),
        ("approved_by: x\napproved_at: 2026-01-01\nacounts: {}\n", "unknown key.*acounts"),
        ("approved_by: x\napproved_at: 2026-01-01\naccounts: {}\n", "accounts.interactive"),
        ("approved_by: x\napproved_at: 2026-01-01\naccounts: [a]\n", "must be a mapping"),
        (
            "approved_by: x\napproved_at: 2026-01-01\naccounts: {interactive: root}\n",
            "must be a list of names",
        ),
        ("approved_by: x\napproved_at: 2026-01-01\nssh_keys: {a: [abc]}\n", "SHA256"),
        ("approved_by: x\napproved_by: y\napproved_at: 2026-01-01\n", "duplicate key"),
        ("approved_by: [x\n", "not valid YAML"),
        ("- a\n", "must be a mapping"),
    ],
)
def test_malformed_baselines_name_the_problem(text: str, says: str) -> None:
    with pytest.raises(FactParseError, match=says):
        parse_baseline(text, "/etc/tillsyn/access-baseline.yaml")


def _statuses(results: Iterator[Result]) -> dict[str, str]:
    return {f"{r.resource.type}:{r.resource.id}": str(r.status) for r in results}


def test_first_observation_is_remembered_and_later_additions_are_drift(tmp_path: Path) -> None:
    memory = FactMemory(tmp_path / "memory.sqlite3")
    params = checks.PrivilegedParams(baseline_file="/etc/tillsyn/none.yaml")
    first = _facts(OFFICE, memory=memory, now=datetime(2026, 11, 1, tzinfo=UTC))
    assert set(_statuses(checks.privileged(first, params)).values()) <= {"pass", "not_applicable"}
    drifted = _tree(tmp_path / "drifted", {})
    shutil.copytree(OFFICE, drifted, dirs_exist_ok=True)
    group = (drifted / "etc/group").read_text().replace("sudo:x:27:alice", "sudo:x:27:alice,bob")
    (drifted / "etc/group").write_text(group)
    later = _facts(drifted, memory=memory)
    statuses = _statuses(checks.privileged(later, params))
    assert statuses["group:sudo"] == "fail"
    assert statuses["sudo:bob"] == "fail"  # bob now has sudo through %sudo
    assert statuses["sudo:alice"] == "pass"
