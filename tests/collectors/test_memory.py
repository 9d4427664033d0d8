"""The agent's memory between runs, and reuse of slow command answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.recorded import RecordedRunner
from tillsyn.collectors.host import HostFacts
from tillsyn.collectors.memory import FactMemory

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def test_first_seen_keeps_the_first_time_and_forgets_what_disappeared(tmp_path: Path) -> None:
    memory = FactMemory(tmp_path / "memory.sqlite3")
    assert memory.first_seen("apt", ["openssl", "curl"], T0) == {"openssl": T0, "curl": T0}
    later = T0 + timedelta(days=3)
    assert memory.first_seen("apt", ["openssl", "zlib"], later) == {"openssl": T0, "zlib": later}
    again = later + timedelta(days=1)
    assert memory.first_seen("apt", ["curl"], again) == {"curl": again}  # a new clock
    memory.close()
    reopened = FactMemory(tmp_path / "memory.sqlite3")
    assert reopened.first_seen("apt", ["curl"], again + timedelta(days=9)) == {"curl": again}


def test_slow_answers_are_reused_within_the_ttl_and_say_when_they_were_collected(
    tmp_path: Path,
) -> None:
    recording = {
        "argv": ["apt-get", "-s", "dist-upgrade"],
        "returncode": 0,
        "stdout": "x\n",
        "stderr": "",
    }
    memory = FactMemory(tmp_path / "m.sqlite3")
    first_runner = RecordedRunner([recording])
    first = HostFacts(
        runner=first_runner, memory=memory, command_cache_ttl=3600, now=T0, platform="linux", env={}
    )
    answer = first.cached_command("host.patch.apt", ["apt-get", "-s", "dist-upgrade"])
    assert (answer.reused, answer.collected_at) == (False, T0)

    second_runner = RecordedRunner([])
    second = HostFacts(
        runner=second_runner,
        memory=memory,
        command_cache_ttl=3600,
        now=T0 + timedelta(minutes=30),
        platform="linux",
        env={},
    )
    reused = second.cached_command("host.patch.apt", ["apt-get", "-s", "dist-upgrade"])
    assert (reused.reused, reused.collected_at, reused.result.stdout) == (True, T0, "x\n")
    assert second_runner.calls == []

    third_runner = RecordedRunner([recording])
    third = HostFacts(
        runner=third_runner,
        memory=memory,
        command_cache_ttl=3600,
        now=T0 + timedelta(hours=2),
        platform="linux",
        env={},
    )
    assert not third.cached_command("host.patch.apt", ["apt-get", "-s", "dist-upgrade"]).reused
    assert len(third_runner.calls) == 1
