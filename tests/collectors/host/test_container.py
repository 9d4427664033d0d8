"""Where the agent runs: a container's markers, as each manager leaves them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tillsyn.collectors.host import HostFacts


def _facts(root: Path, platform: str = "linux") -> HostFacts:
    return HostFacts(root=root, env={}, platform=platform)


@pytest.mark.parametrize(
    ("files", "kind"),
    [
        ({"run/systemd/container": "systemd-nspawn\n"}, "systemd-nspawn"),
        ({".dockerenv": ""}, "docker"),
        ({"run/.containerenv": 'engine="podman-4.9.3"\n'}, "podman"),
        ({"proc/1/cgroup": "12:pids:/kubepods/burstable/pod1d2e/abc\n"}, "kubernetes"),
        ({"proc/1/cgroup": "4:memory:/docker/3f1c9a\n"}, "docker"),
        ({"proc/1/cgroup": "0::/init.scope\n"}, None),  # a host with cgroup v2
        ({}, None),
    ],
)
def test_container_markers(tmp_path: Path, files: dict[str, str], kind: str | None) -> None:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert _facts(tmp_path).container() == kind


def test_only_linux_has_these_markers(tmp_path: Path) -> None:
    (tmp_path / ".dockerenv").write_text("")
    assert _facts(tmp_path, "darwin").container() is None
