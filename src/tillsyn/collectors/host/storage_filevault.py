"""macOS FileVault: ``fdesetup status`` for the boot volume.

``fdesetup status`` needs no root. Its answers (fdesetup(8); the states MDM tools parse):
``FileVault is On.`` or ``FileVault is Off.``, optionally followed by
``Encryption in progress: Percent completed = N`` (or ``: Pending`` on battery),
``Decryption in progress: Percent completed = N``, or, when FileVault is off,
``Deferred enablement appears to be active for user '<name>'.`` (it turns on at that
user's next logout). Anything else is a parse error, never "off".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError

FDESETUP_ARGV = ["fdesetup", "status"]

_STATE = re.compile(r"^FileVault is (On|Off)\.$")
_PROGRESS = re.compile(
    r"^(Encryption|Decryption) in progress: (?:Percent completed = ([0-9.]+)|Pending)\.?$",
    re.IGNORECASE,
)
_DEFERRED = re.compile(r"^Deferred enablement appears to be active for user '.*'\.$")
_MASTER_KEYCHAIN = re.compile(r"^FileVault master keychain appears to be installed\.$")


@dataclass(frozen=True)
class FileVaultStatus:
    """What ``fdesetup status`` said about the boot volume."""

    on: bool
    progress: str = ""  # "", "encryption" or "decryption"
    percent: float | None = None  # None when pending or not in progress
    deferred: bool = False

    @property
    def encrypted(self) -> bool:
        """Fully encrypted: on, and neither encrypting nor decrypting."""
        return self.on and not self.progress

    def describe(self) -> str:
        text = f"FileVault is {'On' if self.on else 'Off'}"
        if self.progress:
            done = "pending" if self.percent is None else f"{self.percent:g}% done"
            text += f", {self.progress} in progress ({done})"
        if self.deferred:
            text += ", deferred enablement waiting for a user to log out"
        return text


def parse_fdesetup_status(stdout: str, call: str) -> FileVaultStatus:
    fact = "host.filevault"
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    on: bool | None = None
    progress, percent, deferred = "", None, False
    for line in lines:
        if match := _STATE.match(line):
            on = match.group(1) == "On"
        elif match := _PROGRESS.match(line):
            progress = match.group(1).lower()
            percent = float(match.group(2)) if match.group(2) else None
        elif _DEFERRED.match(line):
            deferred = True
        elif _MASTER_KEYCHAIN.match(line):
            continue
        else:
            raise FactParseError(fact, call, "unexpected fdesetup line", line)
    if on is None:
        if not progress:
            raise FactParseError(fact, call, "no 'FileVault is On/Off.' line", stdout)
        on = progress == "decryption"  # older releases print only the progress line
    return FileVaultStatus(on, progress, percent, deferred)
