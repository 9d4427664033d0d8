"""Reading ``reg query`` output: the registry as Windows' own tool prints it.

Shared by every Windows fact that reads a registry value (patching, screen lock), so
the layout is parsed once. ``reg query KEY [/v NAME]`` prints a blank line, the key's
full name (``HKEY_LOCAL_MACHINE\\...``), then one line per value, indented four spaces,
with name, type and data separated by four spaces; subkeys appear as further
``HKEY_...`` lines. Lines end in CRLF. A key or value that does not exist is exit 1
with "ERROR: The system was unable to find the specified registry key or value." on
stderr; that sentence is localised, so on a non-English Windows it does not match and
the call is an error rather than "not set".
"""

from __future__ import annotations

import re

from tillsyn.collectors.errors import FactCommandFailed, FactParseError

REG_NOT_FOUND = "unable to find the specified registry key or value"

#: Abbreviations ``reg`` accepts for root keys, and the names it prints for them.
ROOTS = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKU": "HKEY_USERS",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKCC": "HKEY_CURRENT_CONFIG",
}

_VALUE = re.compile(r"^    (?P<name>\S.*?)    (?P<type>REG_[A-Z_]+)(?:    (?P<data>.*))?$")


def full_key(key: str) -> str:
    """``HKLM\\X`` as reg prints it: ``HKEY_LOCAL_MACHINE\\X``."""
    root, sep, rest = key.partition("\\")
    return f"{ROOTS.get(root.upper(), root)}{sep}{rest}"


def parse_reg_query(stdout: str, key: str, call: str, fact: str) -> dict[str, tuple[str, str]]:
    """``reg query KEY``: the key's values as {name: (type, data)}; subkeys are ignored."""
    lines = [ln.rstrip("\r") for ln in stdout.splitlines() if ln.strip()]
    full = full_key(key)
    if not lines or lines[0].strip().lower() != full.lower():
        raise FactParseError(fact, call, f"output does not start with {full}", stdout)
    values: dict[str, tuple[str, str]] = {}
    for line in lines[1:]:
        if line.startswith("HKEY_"):
            continue  # a subkey
        match = _VALUE.match(line)
        if match is None:
            raise FactParseError(fact, call, "unexpected line", line)
        values[match["name"]] = (match["type"], match["data"] or "")
    return values


def key_exists(returncode: int, stderr: str, argv: list[str], fact: str) -> bool:
    """reg query's exit: 0 the key (or value) exists, 1 with "unable to find" it does not."""
    if returncode == 0:
        return True
    if returncode == 1 and REG_NOT_FOUND in stderr:
        return False
    raise FactCommandFailed(fact, argv, returncode, stderr)


def reg_dword(values: dict[str, tuple[str, str]], name: str, call: str, fact: str) -> int | None:
    """A REG_DWORD value (reg prints it as ``0x...``); None when the value is not there."""
    if name not in values:
        return None
    kind, data = values[name]
    if kind != "REG_DWORD" or not re.fullmatch(r"0x[0-9a-fA-F]+", data):
        raise FactParseError(fact, call, f"{name} is not a REG_DWORD", f"{kind} {data}")
    return int(data, 16)
