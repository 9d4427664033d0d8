"""Configuration: defaults, overrides, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tillsyn.agent import config
from tillsyn.agent.config import ConfigError
from tillsyn.agent.registry import Registry


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tillsyn.yaml"
    path.write_text(text)
    return path


def _problems(registry: Registry, path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.load(registry, path)
    return caught.value.problems


def test_embedded_defaults_enable_host_checks_with_sensible_parameters(registry: Registry) -> None:
    loaded = config.load(registry)
    backup = loaded.checks["host.backup.recency"]
    assert backup.enabled
    assert backup.params.max_age_hours == 26
    assert backup.interval == 3600
    assert loaded.checks["host.encryption.disk"].enabled
    assert loaded.agent.check_timeout == 120


def test_user_file_overrides_params_interval_and_enabled(
    registry: Registry, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        """
checks:
  host.backup.recency:
    interval: 30m
    params:
      max_age_hours: 8
      sources:
        - {name: nightly, kind: restic, repository: /srv/restic, password_env: RESTIC_PW}
  host.encryption.disk:
    enabled: false
""",
    )
    loaded = config.load(registry, path)
    backup = loaded.checks["host.backup.recency"]
    assert backup.interval == 1800
    assert backup.params.max_age_hours == 8
    assert backup.params.sources[0].repository == "/srv/restic"
    assert not loaded.checks["host.encryption.disk"].enabled


def test_unknown_keys_wrong_types_and_unknown_checks_are_all_reported_with_lines(
    registry: Registry, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        """agent:
  concurency: 4
checks:
  host.backup.recency:
    params:
      max_age_hours: "a day"
  host.backup.recent:
    enabled: true
  host.encryption.disk:
    enabled: yes please
    interval: soon
""",
    )
    problems = _problems(registry, path)
    assert f"{path}:2: agent.concurency: unknown key 'concurency'" in problems[0]
    joined = "\n".join(problems)
    assert (
        f"{path}:6: checks.host.backup.recency.params.max_age_hours: expected a number, got 'a day'"
    ) in joined
    assert (
        f"{path}:7: checks.host.backup.recent: unknown check id 'host.backup.recent'; "
        "did you mean host.backup.recency?"
    ) in joined
    assert f"{path}:10: checks.host.encryption.disk.enabled: expected true or false" in joined
    assert f"{path}:11: checks.host.encryption.disk.interval: expected a duration" in joined
    assert len(problems) == 5


def test_nested_parameter_rules_are_enforced_at_load(registry: Registry, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """checks:
  host.backup.recency:
    params:
      sources:
        - {name: a, kind: restic}
        - {name: b, kind: tape}
""",
    )
    joined = "\n".join(_problems(registry, path))
    assert "params.sources[0]: a restic source needs 'repository'" in joined
    assert (
        "params.sources[1].kind: expected one of 'restic', 'borg', 'path', 'timemachine', "
        "got 'tape'"
    ) in joined


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("checks: [1, 2\n", "not valid YAML"),
        ("checks: {}\nchecks: {}\n", ":2: duplicate key 'checks'"),
        ("- a list\n", "must be a mapping"),
        ("agent:\n  concurrency: 0\n", "concurrency must be between 1 and 64"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(
    registry: Registry, tmp_path: Path, text: str, says: str
) -> None:
    assert says in "\n".join(_problems(registry, _write(tmp_path, text)))


def test_a_missing_file_is_named(registry: Registry, tmp_path: Path) -> None:
    problems = _problems(registry, tmp_path / "absent.yaml")
    assert problems == [f"{tmp_path / 'absent.yaml'}: cannot read: No such file or directory"]
