"""A Linux agent never loads the macOS and Windows collectors: the endpoint agent stays small.

The daemon's idle memory has a budget; these modules (and plistlib with xml under them)
cost about a MiB it has no use for on Linux. They are imported where a fact for their
platform is read, which the recorded macOS and Windows cases exercise.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

HOST = "tillsyn.collectors.host"
#: Modules only a macOS or Windows host reads. (access_ssh_platforms and access_platforms
#: are not here: Linux uses the first, and the second is a mixin of HostFacts.)
PLATFORM_MODULES = [
    *(
        f"{HOST}.{name}"
        for name in (
            "access_macos",
            "access_windows",
            "access_ssh_windows",
            "backup_timemachine",
            "endpoint_firewall_macos",
            "endpoint_firewall_windows",
            "endpoint_screenlock_macos",
            "endpoint_screenlock_windows",
            "endpoint_software_macos",
            "endpoint_software_windows",
            "logs_macos",
            "logs_windows",
            "logs_time_macos",
            "logs_time_windows",
            "patching_macos",
            "patching_windows",
            "storage_bitlocker",
            "storage_filevault",
            "plists",
            "windows_registry",
            "windows_paths",
        )
    ),
    "tillsyn.checks.host.access_windows",
    "plistlib",
]
#: What the Linux daemon imports: the collector and every host check.
DAEMON_IMPORTS = [
    "tillsyn.agent.daemon",
    HOST,
    "tillsyn.checks.host.access",
    "tillsyn.checks.host.endpoint",
    "tillsyn.checks.host.logging",
    "tillsyn.checks.host.patch",
    "tillsyn.checks.host.encryption",
    "tillsyn.checks.host.backup",
]


def _loaded_after(code: str) -> list[str]:
    """The platform modules a fresh interpreter holds after running ``code``."""
    script = (
        f"import json, sys\n{code}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m in {PLATFORM_MODULES!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_the_platform_modules_exist() -> None:
    """A renamed module would make the next test pass without looking at anything."""
    assert [m for m in PLATFORM_MODULES if importlib.util.find_spec(m) is None] == []


def test_a_linux_agent_imports_no_macos_or_windows_collector() -> None:
    assert _loaded_after(f"import {', '.join(DAEMON_IMPORTS)}") == []


def test_reading_a_platform_fact_imports_its_module() -> None:
    code = (
        f"import {HOST}\n"
        "from tillsyn.collectors.errors import FactError\n"
        f"facts = {HOST}.HostFacts(root='/nonexistent', env={{}}, platform='linux')\n"
        "try:\n"
        "    facts.macos_screen_lock()\n"
        "except FactError:\n"
        "    pass\n"
    )
    assert _loaded_after(code) == [
        "plistlib",
        f"{HOST}.endpoint_screenlock_macos",
        f"{HOST}.plists",
    ]
