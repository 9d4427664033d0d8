"""Windows BitLocker: ``manage-bde -status``, one block per volume.

``manage-bde`` needs an elevated prompt; without it, it prints an ``ERROR:`` line and
exits non-zero, which becomes a FactError. Its output is in the display language of
Windows (LC_ALL means nothing there): this parser reads the English output and raises a
parse error on anything else, never a guess. Each volume block looks like::

    Volume C: [Windows]
    [OS Volume]

        Size:                 237.84 GB
        Conversion Status:    Fully Encrypted
        Percentage Encrypted: 100.0%
        Encryption Method:    XTS-AES 128
        Protection Status:    Protection On
        Lock Status:          Unlocked
        Key Protectors:
            TPM
            Numerical Password
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError

MANAGE_BDE_ARGV = ["manage-bde", "-status"]

_VOLUME = re.compile(r"^Volume (.+?) \[(.*)\]$")
_KIND = re.compile(r"^\[(.+) Volume\]$")
_FIELD = re.compile(r"^\s+([A-Za-z ]+):\s*(.*)$")
_REQUIRED = ("Conversion Status", "Protection Status", "Lock Status")
#: Conversion states in which every sector holding data is encrypted.
ENCRYPTED_CONVERSIONS = frozenset({"Fully Encrypted", "Used Space Only Encrypted"})


@dataclass(frozen=True)
class BitLockerVolume:
    """One volume as ``manage-bde -status`` describes it."""

    volume: str  # "C:" or \\?\Volume{...}\
    label: str
    kind: str  # "OS", "Data" ...
    conversion: str  # Fully Encrypted, Used Space Only Encrypted, Fully Decrypted ...
    percent: str  # "100.0%" as printed ("Unknown%" when locked)
    method: str
    protection: str  # Protection On, Protection Off, Unknown
    lock: str  # Locked, Unlocked
    protectors: tuple[str, ...] = ()

    @property
    def locked(self) -> bool:
        return self.lock == "Locked"


def parse_manage_bde_status(stdout: str, call: str) -> tuple[BitLockerVolume, ...]:
    fact = "host.bitlocker"
    lines = stdout.splitlines()
    blocks: list[tuple[str, str, list[str]]] = []
    for line in lines:
        match = _VOLUME.match(line.strip()) if not line.startswith(" ") else None
        if match:
            blocks.append((match.group(1), match.group(2), []))
        elif blocks:
            blocks[-1][2].append(line)
    if not blocks:
        if "Disk volumes that can be protected with" in stdout or "BitLocker" in stdout:
            raise FactParseError(fact, call, "no 'Volume X: [label]' block found", stdout[:160])
        raise FactParseError(fact, call, "not manage-bde's English status output", stdout[:160])
    volumes: list[BitLockerVolume] = []
    for name, label, body in blocks:
        kind = ""
        fields: dict[str, str] = {}
        protectors: list[str] = []
        in_protectors = False
        for line in body:
            if not line.strip():
                continue
            if match := _KIND.match(line.strip()):
                kind = match.group(1)
                continue
            match = _FIELD.match(line)
            if match and not (in_protectors and line.startswith("        ")):
                key, value = match.group(1).strip(), match.group(2).strip()
                fields[key] = value
                in_protectors = key == "Key Protectors" and not value
                continue
            if in_protectors and line.startswith("        "):
                protectors.append(line.strip())
                continue
            raise FactParseError(fact, call, f"volume {name}: unexpected line", line)
        missing = [key for key in _REQUIRED if key not in fields]
        if missing:
            raise FactParseError(
                fact, call, f"volume {name} lacks {', '.join(missing)} (truncated?)", name
            )
        if fields.get("Key Protectors") and fields["Key Protectors"] != "None Found":
            protectors.append(fields["Key Protectors"])
        volumes.append(
            BitLockerVolume(
                volume=name,
                label=label,
                kind=kind,
                conversion=fields["Conversion Status"],
                percent=fields.get("Percentage Encrypted", ""),
                method=fields.get("Encryption Method", ""),
                protection=fields["Protection Status"],
                lock=fields["Lock Status"],
                protectors=tuple(protectors),
            )
        )
    return tuple(volumes)
