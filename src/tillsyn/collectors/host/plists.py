"""Reading a macOS property list (XML or binary) that must hold a dictionary.

Profiles, bundles and preferences are all plists; each reader wants the same refusal
for a file that does not parse or holds something else, naming the file.
"""

from __future__ import annotations

import plistlib
from typing import Any
from xml.parsers.expat import ExpatError

from tillsyn.collectors.errors import FactParseError


def load_dict(data: bytes, fact: str, where: str, what: str = "property list") -> dict[str, Any]:
    """The plist's top-level dictionary; :class:`FactParseError` naming ``where`` otherwise."""
    try:
        loaded = plistlib.loads(data)
    except (
        plistlib.InvalidFileException,
        ExpatError,
        ValueError,
        TypeError,
        AttributeError,  # a <date> that does not match plistlib's pattern
        OverflowError,
    ) as exc:
        shown = data[:80].decode("utf-8", errors="replace")
        raise FactParseError(fact, where, f"not a property list ({exc})", shown) from exc
    if not isinstance(loaded, dict):
        raise FactParseError(fact, where, f"{what} is not a dictionary", repr(loaded))
    return loaded
