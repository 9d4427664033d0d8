"""Parsing helpers shared by every collector: strict, and explicit about where it broke."""

from __future__ import annotations

import json
from typing import Any

from tillsyn.collectors.errors import FactParseError


def load_json(fact: str, call: str, text: str) -> Any:
    """``text`` as JSON; anything else (truncated, empty, garbage) is a FactParseError
    quoting the text around the place it broke, never a default."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactParseError(
            fact,
            call,
            f"output is not JSON ({exc.msg} at char {exc.pos})",
            text[max(0, exc.pos - 40) : exc.pos + 40],
        ) from exc
