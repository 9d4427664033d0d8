"""Is there a desktop here, and what idle screen lock does its system policy enforce?

Per-user settings are not policy: a user changes them in a click, and the agent does not
run inside anyone's session. What an administrator enforces lives in files:

- GNOME reads dconf. ``/etc/dconf/profile/user`` lists the databases a session reads
  (``user-db:user`` first, then ``system-db:NAME``); each system database is compiled
  from the keyfiles in ``/etc/dconf/db/NAME.d/`` (in name order, a later file's value
  winning, as ``dconf compile`` does) and the keys listed under its
  ``locks/`` cannot be changed by users. A key nobody set comes from the schema's
  shipped default, which ``gsettings get`` prints.
- KDE Plasma reads ``kscreenlockerrc``; the system-wide ``/etc/xdg/kscreenlockerrc``
  applies to every user and entries marked ``[$i]`` are immutable.

A desktop is present when a display manager or a session type is installed. Debian links
``default.target`` to ``graphical.target`` even on servers, so the default target is
kept as evidence and never decides alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tillsyn.collectors.errors import FactParseError

#: Where display managers install their program, by name.
DISPLAY_MANAGERS = {
    "gdm": ("/usr/sbin/gdm3", "/usr/sbin/gdm"),
    "sddm": ("/usr/bin/sddm",),
    "lightdm": ("/usr/sbin/lightdm",),
    "lxdm": ("/usr/sbin/lxdm",),
    "xdm": ("/usr/bin/xdm",),
}
SESSION_DIRS = ("/usr/share/xsessions", "/usr/share/wayland-sessions")
DEFAULT_TARGETS = ("/etc/systemd/system/default.target", "/lib/systemd/system/default.target")

#: The GNOME keys that make an idle screen lock, as dconf paths.
GNOME_KEYS = (
    "/org/gnome/desktop/screensaver/lock-enabled",
    "/org/gnome/desktop/screensaver/idle-activation-enabled",
    "/org/gnome/desktop/session/idle-delay",
    "/org/gnome/desktop/screensaver/lock-delay",
)


@dataclass(frozen=True)
class Desktop:
    """What the installed files say about a graphical desktop on this host."""

    display_managers: tuple[str, ...]
    sessions: tuple[tuple[str, str], ...]  # (session file, kind: gnome, kde or other)
    default_target: str  # "" when no default.target link was found

    @property
    def present(self) -> bool:
        return bool(self.display_managers or self.sessions)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted({kind for _, kind in self.sessions if kind != "default"}))


def session_kind(text: str) -> str:
    """gnome, kde or other, from a session .desktop file's DesktopNames and Exec lines.

    ``default`` is lightdm's "Default Xsession" (``Exec=default``): it starts whichever
    session the system defaults to, so it names no desktop of its own.
    """
    entries = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if entries.get("Exec", "").strip() == "default" and "DesktopNames" not in entries:
        return "default"
    names = f"{entries.get('DesktopNames', '')} {entries.get('Exec', '')}".lower()
    if "gnome" in names:
        return "gnome"
    if "plasma" in names or "kde" in names:
        return "kde"
    return "other"


@dataclass(frozen=True)
class Setting:
    """One screen-lock setting as a session would get it, and whether users can change it."""

    key: str
    value: str  # as written (GVariant text for dconf, the ini value for KDE)
    source: str  # the file that sets it, or "shipped default"
    enforced: bool  # locked (dconf) or immutable (KDE): users cannot change it

    def evidence(self) -> dict[str, object]:
        return {"value": self.value, "source": self.source, "enforced": self.enforced}


def parse_dconf_profile(text: str) -> tuple[str, ...]:
    """System database names a dconf profile lists, in priority order."""
    names: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("system-db:"):
            names.append(line.split(":", 1)[1].strip())
    return tuple(names)


_GROUP = re.compile(r"^\[(?P<name>[^\]]+)\](?P<flags>(?:\[\$\w\])*)\s*$")


def parse_keyfile(text: str, where: str, fact: str) -> dict[str, str]:
    """A dconf keyfile as ``{"/group/path/key": value}``; malformed lines raise."""
    values: dict[str, str] = {}
    group = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = _GROUP.match(line)
        if header:
            group = "/" + header.group("name").strip("/")
            continue
        key, sep, value = line.partition("=")
        if not sep or not group or not key.strip():
            raise FactParseError(fact, where, f"line {number} is not key=value in a group", raw)
        values[f"{group}/{key.strip()}"] = value.strip()
    return values


def parse_locks(text: str) -> set[str]:
    """Key paths listed in a dconf locks file."""
    return {line.strip() for line in text.splitlines() if line.strip().startswith("/")}


def gvariant_int(value: str) -> int | None:
    """``uint32 300`` or ``300`` as 300; None for anything else."""
    match = re.fullmatch(r"(?:u?int(?:16|32|64)\s+)?(\d+)", value.strip())
    return int(match.group(1)) if match else None


def gvariant_bool(value: str) -> bool | None:
    return {"true": True, "false": False}.get(value.strip())


def schema_and_key(path: str) -> tuple[str, str]:
    """``/org/gnome/desktop/session/idle-delay`` as (``org.gnome.desktop.session``, key)."""
    parent, _, key = path.rpartition("/")
    return parent.strip("/").replace("/", "."), key


@dataclass(frozen=True)
class KdeLock:
    """kscreenlockerrc's [Daemon] entries as the system-wide file sets them."""

    values: dict[str, tuple[str, bool]]  # key -> (value, immutable)
    file_found: bool


def parse_kscreenlockerrc(text: str, where: str) -> KdeLock:
    """[Daemon] Autolock/Timeout/LockOnResume, with KConfig's ``[$i]`` immutability marks."""
    fact = "host.endpoint.kde_screen_lock"
    values: dict[str, tuple[str, bool]] = {}
    group, group_immutable, file_immutable = "", False, False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "[$i]" and not group:
            file_immutable = True
            continue
        header = _GROUP.match(line)
        if header:
            group = header.group("name")
            group_immutable = "[$i]" in header.group("flags")
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise FactParseError(fact, where, f"line {number} is not key=value", raw)
        if group != "Daemon":
            continue
        name = key.strip()
        immutable = file_immutable or group_immutable or name.endswith("[$i]")
        values[name.removesuffix("[$i]").strip()] = (value.strip(), immutable)
    return KdeLock(values, True)


def list_dir(path: Path) -> list[Path]:
    """Entries of a directory, or none when it does not exist."""
    try:
        return sorted(path.iterdir())
    except FileNotFoundError:
        return []
