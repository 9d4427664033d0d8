"""Windows file paths (``C:\\ProgramData\\ssh\\sshd_config``) under the collector's root.

Why a module of its own: every other host fact reads POSIX paths through
:meth:`HostBase.path`, which cannot express a drive letter. Facts that read Windows files
(SSH keys and sshd_config so far) need one convention, shared, so recorded trees are laid
out the same way for all of them:

- live (the collector's root is ``/``, i.e. it reads the machine it runs on): the Windows
  path is used as it is; Windows resolves it;
- a recorded tree keeps ``X:\\A\\B`` at ``<root>/X/A/B``: the drive letter, upper case,
  is the first directory, then the path's components in the case the collector spells
  them (Windows compares names case-insensitively, the trees are read on case-sensitive
  filesystems, so a tree must use the collector's spelling).

Only drive-letter paths are accepted: a UNC path (``\\\\server\\share``) is on another
machine and a path without a drive depends on the current drive, so both are refused
with :class:`ValueError` rather than guessed. ``/C:/x`` (how sshd_config may write it)
is read as ``C:/x``, as Win32-OpenSSH does.

:func:`host_glob` lists directories itself (``os.scandir``) instead of ``Path.glob``,
which skips a directory it may not list as if it were empty: a directory that cannot be
listed, or a path without wildcards that cannot be looked at, is a
:class:`~tillsyn.collectors.errors.FactError` naming it; only "does not exist" means no
match (as sshd's glob treats it).
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath

from tillsyn.collectors.errors import FactPermissionDenied, FactUnavailable

_WILDCARD = re.compile(r"[*?[]")
_DRIVE = re.compile(r"^[/\\]?(?P<drive>[A-Za-z]):(?P<rest>[/\\].*)?$")


def normalize(path: str) -> str:
    """``path`` with backslashes and an upper-case drive: ``c:/x/y`` -> ``C:\\x\\y``."""
    match = _DRIVE.match(path)
    if match is None:
        raise ValueError(f"{path!r} is not a drive-letter path")
    rest = re.sub(r"[/\\]+", r"\\", match["rest"] or "\\")
    return f"{match['drive'].upper()}:{rest}"


def is_absolute(path: str) -> bool:
    """Whether ``path`` starts at a drive (``C:\\``, ``C:/``, ``/C:/``)."""
    return _DRIVE.match(path) is not None


def live(root: Path) -> bool:
    """Whether ``root`` is the machine itself rather than a recorded tree."""
    return str(root) in ("/", "\\")


def host_file(root: Path, path: str) -> Path:
    """Where the file ``path`` (a Windows path) is read from, per the module's convention."""
    windows = normalize(path)
    if live(root):
        return Path(windows)
    parts = PureWindowsPath(windows).parts
    return root.joinpath(windows[0], *parts[1:])


def host_glob(root: Path, pattern: str, fact: str) -> list[str]:
    """The Windows paths matching a glob ``pattern`` (``C:\\ProgramData\\ssh\\conf.d\\*``),
    sorted as sshd sorts Include matches (lexically).

    Names are compared case-insensitively, as Windows does; ``*`` does not match a
    leading dot (glob(3)). A directory on the way that does not exist gives no match; one
    that cannot be listed, or a match that cannot be looked at (permission denied, an
    I/O error), raises FactPermissionDenied or FactUnavailable naming it.
    """
    windows = normalize(pattern)
    drive = windows[:2]
    parts = [p for p in windows[3:].split("\\") if p]
    if not parts:
        return [drive + "\\"]
    found = [drive]
    for part in parts:
        wild = _WILDCARD.search(part) is not None
        following: list[str] = []
        for base in found:
            if not wild:
                following.append(f"{base}\\{part}")
                continue
            wanted = part.casefold()
            for name in _list_dir(root, base, fact):
                if name.startswith(".") and not part.startswith("."):
                    continue
                if fnmatch.fnmatchcase(name.casefold(), wanted):
                    following.append(f"{base}\\{name}")
        found = following
    return sorted(path for path in found if _exists(root, path, fact))


def _list_dir(root: Path, directory: str, fact: str) -> list[str]:
    """The names in ``directory`` (a Windows path); none when it does not exist."""
    shown = directory + "\\" if len(directory) == 2 else directory
    try:
        with os.scandir(host_file(root, shown)) as entries:
            return [entry.name for entry in entries]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError as exc:
        raise FactPermissionDenied(
            fact, shown, "permission denied: the directory cannot be listed"
        ) from exc
    except OSError as exc:
        raise FactUnavailable(
            fact, shown, f"the directory cannot be listed: {exc.strerror or exc}"
        ) from exc


def _exists(root: Path, path: str, fact: str) -> bool:
    """Whether ``path`` exists; any answer other than "not there" is an error naming it."""
    try:
        os.stat(host_file(root, path))
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError as exc:
        raise FactPermissionDenied(fact, path, "permission denied: cannot be looked at") from exc
    except OSError as exc:
        raise FactUnavailable(fact, path, f"cannot be looked at: {exc.strerror or exc}") from exc
    return True


#: What these variables hold on a Windows installed on C: (every default installation),
#: used when the collector's environment does not say (a recorded tree, a bare service).
ENV_DEFAULTS = {
    "SYSTEMROOT": r"C:\Windows",
    "WINDIR": r"C:\Windows",
    "SYSTEMDRIVE": "C:",
    "PROGRAMDATA": r"C:\ProgramData",
    "ALLUSERSPROFILE": r"C:\ProgramData",
}


def env_value(env: Mapping[str, str], name: str) -> str:
    """A Windows environment variable, case-insensitively, else its default."""
    wanted = name.upper()
    for key, value in env.items():
        if key.upper() == wanted and value:
            return value
    if wanted in ENV_DEFAULTS:
        return ENV_DEFAULTS[wanted]
    raise ValueError(f"%{name}% is not set and has no known default")


def expand_env(value: str, env: Mapping[str, str]) -> str:
    """``%SystemRoot%\\x`` with the variables replaced (REG_EXPAND_SZ data)."""
    return re.sub(r"%([^%]+)%", lambda m: env_value(env, m.group(1)), value)
