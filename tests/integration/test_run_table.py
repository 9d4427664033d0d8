"""``tillsyn run`` as a person reads it: the real CLI on a terminal 80 and 160 columns wide.

The CLI runs in a pseudo-terminal whose size is set with TIOCSWINSZ, so rich measures
the terminal exactly as it would in a shell; the text it writes (escape codes removed)
is compared line by line with what a person should see. Nothing here wraps lines the
way a terminal would: a line wider than the terminal fails the width assertion instead.
One check, ``host.backup.recency``, over three path sources gives a pass, a fail and an
excepted fail whose messages do not depend on the clock (ages to the hour, 30 minutes
from a boundary).
"""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from tillsyn.agent.render import run_report
from tillsyn.cli import _parser

termios = pytest.importorskip("termios", reason="needs a POSIX pseudo-terminal")
fcntl = pytest.importorskip("fcntl", reason="needs a POSIX pseudo-terminal")

#: CSI sequences (colours, styles) and OSC sequences (hyperlinks) rich may write.
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
CHECK = "host.backup.recency"
REMEDIATION_80 = [
    "  Fix:      Fix the backup job (see its unit or cron log) or configure the",
    "            sources this host is backed up to under",
    "            checks.host.backup.recency.params.sources.",
]


@dataclass
class Screen:
    raw: str  # what the CLI wrote to the terminal, escape codes and all
    lines: list[str]  # what a person reads, one entry per line
    returncode: int


def on_terminal(*args: str, columns: int, rows: int = 50) -> Screen:
    """``tillsyn ARGS`` with stdin, stdout and stderr on a pty of ``columns`` x ``rows``.

    COLUMNS and LINES are removed from the environment: rich prefers them to the
    terminal's size, and the point is to see what the terminal's size gives."""
    master, slave = os.openpty()
    winsize = rows.to_bytes(2, sys.byteorder) + columns.to_bytes(2, sys.byteorder) + bytes(4)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, winsize)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        [sys.executable, "-m", "tillsyn.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:  # not a timing assertion: only so that a hung CLI fails, not hangs
                process.kill()
                pytest.fail(f"tillsyn {' '.join(args)} wrote nothing for 120 s")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO on Linux: every writer has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    returncode = process.wait(timeout=120)
    raw = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    return Screen(raw, ESCAPES.sub("", raw).splitlines(), returncode)


@pytest.fixture(scope="module")
def backups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config with a fresh, a stale and an excepted stale backup source; returns its path."""
    root = tmp_path_factory.mktemp("run-table")
    now = time.time()
    for name, age in (
        ("fresh", 3 * 86400 + 2 * 3600 + 1800),  # "3 d 2 h" for the next 30 minutes
        ("stale", 40 * 86400 + 12 * 3600 + 1800),  # "40 d 12 h"
        ("archive", 40 * 86400 + 12 * 3600 + 1800),
    ):
        (root / name).mkdir()
        backup = root / name / "backup-1.tar"
        backup.write_text("x")
        os.utime(backup, (now - age, now - age))
    config = root / "config.yaml"
    config.write_text(f"""checks:
  {CHECK}:
    params:
      max_age_hours: 96
      sources:
        - {{name: fresh, kind: path, path: "{root}/fresh/backup-*.tar"}}
        - {{name: stale, kind: path, path: "{root}/stale/backup-*.tar"}}
        - {{name: archive, kind: path, path: "{root}/archive/backup-*.tar"}}
exceptions:
  - {{id: EXC-7, check: {CHECK}, resource: "backup_source:archive",
     justification: "archive disk retired, replaced in Q1", approved_by: ciso@example.eu,
     expires: 2999-12-31}}
""")
    return config


def run_on_terminal(config: Path, state: Path, *extra: str, columns: int) -> Screen:
    screen = on_terminal(
        "run",
        "--check",
        CHECK,
        "--config",
        str(config),
        "--state-dir",
        str(state),
        *extra,
        columns=columns,
    )
    assert screen.returncode == 1, screen.raw  # one plain fail; the excepted one is accepted
    return screen


def assert_fits(screen: Screen, columns: int) -> None:
    """No line wider than the terminal, nothing cut short with an ellipsis, and every
    check id and resource whole on one line."""
    too_wide = [line for line in screen.lines if cell_len(line) > columns]
    assert not too_wide, too_wide
    assert "…" not in screen.raw
    for whole in (CHECK, "backup_source:stale", "backup_source:archive"):
        assert any(whole in line for line in screen.lines), whole


def closing(screen: Screen, state: Path) -> list[str]:
    """Checks the closing line (counts, where the evidence is, the seal; word-wrapped at
    the terminal's width) and the blank line before it; returns everything above those."""
    start = max(i for i, line in enumerate(screen.lines) if line.startswith("3 results:"))
    assert " ".join(screen.lines[start:]) == (
        f"3 results: 1 pass, 1 fail, 1 excepted. Evidence in {state / 'evidence.sqlite3'} "
        "(sealed as record 4)."
    )
    assert screen.lines[start - 1] == ""
    return screen.lines[: start - 1]


def test_summary_at_80_columns_names_what_failed_on_what_and_the_fix(
    backups: Path, tmp_path: Path
) -> None:
    screen = run_on_terminal(backups, tmp_path, columns=80)
    assert_fits(screen, 80)
    assert closing(screen, tmp_path) == [
        "Checks",
        "backup",
        "  FAIL      host.backup.recency  1 pass, 1 fail, 1 excepted",
        "",
        "Failures and errors",
        "host.backup.recency: Newest backup is within the recovery point objective",
        "  FAIL      backup_source:stale",
        "            stale: newest backup is 40 d 12 h old (RPO 96 h)",
        "  EXCEPTED  backup_source:archive",
        "            archive: newest backup is 40 d 12 h old (RPO 96 h) [accepted risk:",
        "            exception EXC-7, approved by ciso@example.eu, until 2999-12-31]",
        *REMEDIATION_80,
    ]
    assert "fresh" not in screen.raw  # a pass is counted, not listed
    assert not any("A.8.13" in line or "NIS 4.2" in line for line in screen.lines)
    # what to act on stands out: the status word in bold red, the check id in bold
    assert "\x1b[1;31mFAIL" in screen.raw
    assert "\x1b[1mhost.backup.recency" in screen.raw


def test_summary_at_160_columns_adds_the_controls(backups: Path, tmp_path: Path) -> None:
    screen = run_on_terminal(backups, tmp_path, columns=160)
    assert_fits(screen, 160)
    assert closing(screen, tmp_path) == [
        "Checks",
        "backup",
        "  FAIL      host.backup.recency  1 pass, 1 fail, 1 excepted  "
        "A.8.13, NIS 4.2.1, NIS 4.2.3, NIS 4.2.6",
        "",
        "Failures and errors",
        "host.backup.recency: Newest backup is within the recovery point objective",
        "  FAIL      backup_source:stale",
        "            stale: newest backup is 40 d 12 h old (RPO 96 h)",
        "  EXCEPTED  backup_source:archive",
        "            archive: newest backup is 40 d 12 h old (RPO 96 h) [accepted risk: "
        "exception EXC-7, approved by ciso@example.eu, until 2999-12-31]",
        "  Fix:      Fix the backup job (see its unit or cron log) or configure the sources "
        "this host is backed up to under checks.host.backup.recency.params.sources.",
    ]


@pytest.mark.parametrize("flag", ["--details", "-v"])
def test_details_at_80_columns_list_every_resource_then_the_summary(
    backups: Path, tmp_path: Path, flag: str
) -> None:
    screen = run_on_terminal(backups, tmp_path, flag, columns=80)
    assert_fits(screen, 80)
    above = closing(screen, tmp_path)
    assert above[:13] == [
        "Results",
        "host.backup.recency: Newest backup is within the recovery point objective",
        "  PASS      backup_source:fresh",
        "            fresh: newest backup is 3 d 2 h old (RPO 96 h)",
        "  FAIL      backup_source:stale",
        "            stale: newest backup is 40 d 12 h old (RPO 96 h)",
        "  EXCEPTED  backup_source:archive",
        "            archive: newest backup is 40 d 12 h old (RPO 96 h) [accepted risk:",
        "            exception EXC-7, approved by ciso@example.eu, until 2999-12-31]",
        "",
        "Checks",
        "backup",
        "  FAIL      host.backup.recency  1 pass, 1 fail, 1 excepted",
    ]
    assert above[13:17] == ["", "Failures and errors", above[1], above[4]]  # then as without
    assert above[-3:] == REMEDIATION_80
    assert not any("A.8.13" in line for line in screen.lines)


def test_details_at_160_columns_put_the_controls_under_the_check(
    backups: Path, tmp_path: Path
) -> None:
    screen = run_on_terminal(backups, tmp_path, "--details", columns=160)
    assert_fits(screen, 160)
    assert screen.lines[:4] == [
        "Results",
        "host.backup.recency: Newest backup is within the recovery point objective",
        "            A.8.13, NIS 4.2.1, NIS 4.2.3, NIS 4.2.6",
        "  PASS      backup_source:fresh",
    ]


def test_a_pipe_gets_the_80_column_summary_without_colour_and_global_v_stays_verbose(
    backups: Path, tmp_path: Path
) -> None:
    """``tillsyn -v run | less``: -v before the command is --verbose, not --details."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    args = ["-v", "run", "--check", CHECK, "--config", str(backups), "--state-dir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "tillsyn.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "\x1b" not in done.stdout
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "Checks",
        "backup",
        "  FAIL      host.backup.recency  1 pass, 1 fail, 1 excepted",
    ]
    assert "Results" not in lines and "backup_source:fresh" not in done.stdout
    assert all(len(line) <= 80 for line in lines)
    assert _parser().parse_args(["-v", "run"]).verbose
    assert not _parser().parse_args(["-v", "run"]).details
    assert _parser().parse_args(["run", "-v"]).details
    assert not _parser().parse_args(["run", "-v"]).verbose


# What the CLI cannot be made to produce on demand (an error, a plugin that did not
# load, an expired exception, a very long resource), rendered directly.


def _record(check: str, status: str, resource: tuple[str, str], message: str) -> dict[str, object]:
    family = check.split(".")[1] if check.count(".") == 2 else ""
    return {
        "kind": "result",
        "check": {"id": check, "family": family, "title": ""},
        "status": status,
        "resource": {"type": resource[0], "id": resource[1]},
        "message": message,
        "controls": ["iso27001:2022/A.8.20", "nis2/6.7.2.b"],
    }


def _render(records: list[dict[str, object]], width: int) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    run_report(records, console, remediation={}, evidence="/e.sqlite3", seal=None)
    return out.getvalue().splitlines()


def test_errors_load_errors_and_expired_exceptions_read_as_what_they_are() -> None:
    expired = _record("host.patch.x", "fail", ("package", "zlib1g"), "zlib1g is old")
    expired["exception"] = {"id": "EXC-1", "expired": True}
    records = [
        _record("host.endpoint.firewall", "error", ("ip_version", "ipv4"), "nft is missing"),
        _record("acme.plugin", "error", ("plugin", "acme 1.0"), "acme could not be loaded"),
        expired,
    ]
    lines = _render(records, 80)
    assert lines[:7] == [
        "Checks",
        "(load errors)",
        "  ERROR     acme.plugin             1 error",
        "endpoint",
        "  ERROR     host.endpoint.firewall  1 error",
        "patch",
        "  FAIL      host.patch.x            1 fail",
    ]
    assert "  FAIL      package:zlib1g" in lines
    assert lines[-1] == "3 results: 1 fail, 2 error. Evidence in /e.sqlite3 (not sealed)."


def test_long_resources_wrap_at_their_spaces_and_nothing_overflows_any_width() -> None:
    resource = "/var/lib/mysql/mysqld.log /var/lib/mysql/mariadb.log /var/log/mysql/*.log"
    records = [
        _record("host.logging.retention", "fail", ("logrotate", resource), "retention unknown"),
        _record("host.endpoint.forbidden_software", "pass", ("target", "self"), "none " * 40),
    ]
    lines = _render(records, 80)
    first = lines.index("host.logging.retention") + 1
    assert lines[first : first + 3] == [
        "  FAIL      logrotate:/var/lib/mysql/mysqld.log /var/lib/mysql/mariadb.log",
        "            /var/log/mysql/*.log",
        "            retention unknown",
    ]
    for width in range(30, 201):
        lines = _render(records, width)
        assert all(cell_len(line) <= width and line == line.rstrip() for line in lines), width
