"""A separate, throw-away plugin package is installed with pip, then listed and run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.cli import tillsyn

PLUGIN_MODULE = '''
"""A third-party check: passes when /etc/hostname exists (only for the plugin test)."""

from collections.abc import Iterator
from pathlib import Path

from tillsyn.plugin import TARGET, NoParams, Result, check


@check(id="host.acme.hostname_file", title="Hostname file exists", target="host",
       controls=("iso27001:2022/A.8.9",), severity="low", interval="1d",
       facts=("host.identity",), needs=("read /etc/hostname",),
       remediation="Write /etc/hostname.")
def hostname_file(facts, p: NoParams) -> Iterator[Result]:
    yield Result.judge(Path("/etc/hostname").exists(), TARGET, "acme plugin looked")
'''

BROKEN_MODULE = "raise ImportError('acme broken plugin cannot import on purpose')\n"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("acme-src")
    (source / "acme_checks").mkdir()
    (source / "acme_checks" / "__init__.py").write_text("")
    (source / "acme_checks" / "host_acme.py").write_text(PLUGIN_MODULE)
    (source / "acme_checks" / "broken.py").write_text(BROKEN_MODULE)
    (source / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "acme-tillsyn-checks"
        version = "1.2.3"
        [project.entry-points."tillsyn.checks"]
        "host.acme" = "acme_checks.host_acme"
        "acme.broken" = "acme_checks.broken"
        [tool.setuptools]
        packages = ["acme_checks"]
    """)
    )
    target = tmp_path_factory.mktemp("acme-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


def _tillsyn(site: Path, *args: str, state: Path | None = None) -> subprocess.CompletedProcess[str]:
    return tillsyn(*args, state=state, extra_env={"PYTHONPATH": str(site)})


def test_installed_plugin_is_listed_with_its_distribution(plugin_site: Path) -> None:
    listed = _tillsyn(plugin_site, "checks", "--json")
    data = json.loads(listed.stdout)
    plugin = next(c for c in data["checks"] if c["id"] == "host.acme.hostname_file")
    assert plugin["source"] == "acme-tillsyn-checks 1.2.3"
    assert plugin["controls"] == ["iso27001:2022/A.8.9"]
    broken = next(p for p in data["problems"] if p["name"] == "acme.broken")
    assert "acme broken plugin cannot import on purpose" in broken["reason"]
    assert listed.returncode == 1  # a plugin that did not load is not hidden


def test_installed_plugin_runs_and_a_broken_one_leaves_an_error_record(
    plugin_site: Path, tmp_path: Path
) -> None:
    ran = _tillsyn(plugin_site, "run", "--json", state=tmp_path)
    records = [json.loads(line) for line in ran.stdout.splitlines()]
    by_check = {r["check"]["id"]: r for r in records if r["kind"] == "result"}
    assert by_check["host.acme.hostname_file"]["message"] == "acme plugin looked"
    assert by_check["acme.broken"]["status"] == "error"
    assert "could not be loaded" in by_check["acme.broken"]["message"]
    assert records[-1]["kind"] == "seal"
