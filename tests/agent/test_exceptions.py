"""Approved exceptions keep a fail a fail, mark it, and lapse on their own."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tillsyn.agent import config
from tillsyn.agent.config import ConfigError
from tillsyn.agent.exceptions import RiskException, apply, is_excepted
from tillsyn.agent.registry import Registry

EXCEPTION = RiskException(
    "EXC-7",
    "host.encryption.disk",
    "filesystem:/srv/*",
    "scratch data, rebuilt nightly",
    "ciso@example.eu",
    date(2027, 1, 31),
)


def _record(status: str = "fail", resource_id: str = "/srv/scratch") -> dict[str, object]:
    return {
        "status": status,
        "check": {"id": "host.encryption.disk"},
        "resource": {"type": "filesystem", "id": resource_id},
        "message": "m",
    }


def test_a_matching_exception_marks_the_fail_and_keeps_it_a_fail() -> None:
    record = _record()
    apply((EXCEPTION,), record, datetime(2026, 12, 1, tzinfo=UTC))
    assert record["status"] == "fail"
    assert record["exception"] == {
        "id": "EXC-7",
        "approved_by": "ciso@example.eu",
        "justification": "scratch data, rebuilt nightly",
        "expires": "2027-01-31",
        "expired": False,
    }
    assert "accepted risk: exception EXC-7" in str(record["message"])
    assert is_excepted(record)


def test_an_expired_exception_says_so_and_no_longer_covers() -> None:
    record = _record()
    apply((EXCEPTION,), record, datetime(2027, 2, 1, tzinfo=UTC))
    assert record["exception"]["expired"] is True  # type: ignore[index]
    assert "expired on 2027-01-31 and no longer applies" in str(record["message"])
    assert not is_excepted(record)


@pytest.mark.parametrize(
    "record", [_record(status="pass"), _record(status="error"), _record(resource_id="/home")]
)
def test_exceptions_touch_only_matching_fails(record: dict[str, object]) -> None:
    apply((EXCEPTION,), record, datetime(2026, 12, 1, tzinfo=UTC))
    assert "exception" not in record


def test_exceptions_are_validated_in_config(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("""exceptions:
  - {id: E1, check: host.encryption.disk, resource: "filesystem:/srv", justification: j,
     approved_by: ciso, expires: 2027-01-31}
  - {id: E1, check: host.nope.x, resource: "*", justification: "", approved_by: a,
     expires: someday}
""")
    with pytest.raises(ConfigError) as caught:
        config.load(registry, path)
    joined = "\n".join(caught.value.problems)
    assert "exceptions[1].expires: expected a date like 2027-03-31, got 'someday'" in joined
    path.write_text("""exceptions:
  - {id: E1, check: host.encryption.disk, resource: "filesystem:/srv", justification: j,
     approved_by: ciso, expires: 2027-01-31}
  - {id: E1, check: host.nope.x, resource: "*", justification: j, approved_by: a,
     expires: 2027-01-31}
""")
    with pytest.raises(ConfigError) as caught:
        config.load(registry, path)
    joined = "\n".join(caught.value.problems)
    assert "exceptions[1].id: duplicate exception id 'E1'" in joined
    assert "exceptions[1].check: unknown check id 'host.nope.x'" in joined
    path.write_text("""exceptions:
  - {id: E1, check: host.encryption.disk, resource: "filesystem:/srv", justification: " ",
     approved_by: ciso, expires: 2027-01-31}
""")
    with pytest.raises(ConfigError, match="justification and approved_by are required"):
        config.load(registry, path)
