"""The real command runner: timeouts, missing tools and the C locale."""

from __future__ import annotations

import pytest

from tillsyn.collectors.commands import CommandNotFoundError, CommandTimeoutError, SubprocessRunner


def test_a_command_past_its_timeout_is_killed_and_reported() -> None:
    with pytest.raises(CommandTimeoutError, match=r"sleep did not finish within 0\.3s"):
        SubprocessRunner().run(["sleep", "30"], timeout=0.3)


def test_a_missing_tool_is_named() -> None:
    with pytest.raises(CommandNotFoundError, match="no-such-tool-tillsyn is not installed"):
        SubprocessRunner().run(["no-such-tool-tillsyn"], timeout=5)


def test_commands_run_in_the_c_locale_with_extra_environment() -> None:
    done = SubprocessRunner().run(
        ["sh", "-c", 'echo "$LC_ALL $EXTRA"; exit 3'],
        timeout=5,
        env={"EXTRA": "yes", "LC_ALL": "sv_SE.UTF-8"},
    )
    assert done.stdout == "C yes\n"
    assert done.returncode == 3
