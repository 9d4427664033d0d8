"""Running the installed ``tillsyn`` command line as a separate process, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def tillsyn(
    *args: str, state: Path | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``tillsyn ARGS`` with its state in ``state``; output captured, never raises on exit codes."""
    env = dict(os.environ, COLUMNS="200", **(extra_env or {}))
    if state is not None:
        env["TILLSYN_STATE_DIR"] = str(state)
    return subprocess.run(
        [sys.executable, "-m", "tillsyn.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
