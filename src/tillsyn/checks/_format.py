"""Small helpers checks use to write messages a person reads at a glance."""

from __future__ import annotations

from datetime import timedelta


def age_text(age: timedelta) -> str:
    """``3 d 4 h``, ``5 h 12 min``, ``40 s``: two units at most, rounded down."""
    seconds = int(abs(age.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"
