"""fscrypt: which home directories carry a file-based encryption policy.

ext4 and f2fs can encrypt single directory trees (fscrypt, the kernel's file-based
encryption, set up with the ``fscrypt`` tool, ``e4crypt`` or systemd-homed). The
kernel marks an encrypted directory with the ``FS_ENCRYPT_FL`` inode flag, which
``lsattr -d`` prints as ``E`` (e2fsprogs' letter for it; lower-case ``e`` is extents).
``lsattr`` is in e2fsprogs on every Debian, Ubuntu and RHEL-family system, needs no
fscrypt metadata and no root for directories the agent may open; a directory it may
not open is reported on stderr and becomes an error for that directory alone.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tillsyn.collectors.errors import FactParseError, FactPermissionDenied

#: Filesystems that can carry fscrypt policies.
FSCRYPT_FSTYPES = frozenset({"ext4", "f2fs", "ubifs"})
#: Directories under a home root that are filesystem housekeeping, not a user's home.
NOT_HOMES = frozenset({"lost+found"})

_LINE = re.compile(r"^([A-Za-z-]+) (.+)$")
_ERROR = re.compile(r"^lsattr: (.+?) While reading flags on (.+)$")


@dataclass(frozen=True)
class DirectoryFlags:
    """Whether one directory is fscrypt-encrypted; ``error`` says why it is unknown."""

    path: str
    encrypted: bool | None
    flags: str = ""
    error: str = ""


def parse_lsattr(
    stdout: str, stderr: str, paths: tuple[str, ...], call: str
) -> dict[str, DirectoryFlags]:
    """Strict parse of ``lsattr -d PATH...``: every path answered on stdout or stderr."""
    fact = "host.fscrypt.directories"
    found: dict[str, DirectoryFlags] = {}
    for line in stdout.splitlines():
        match = _LINE.match(line)
        if not match or match.group(2) not in paths:
            raise FactParseError(fact, call, "unexpected lsattr line", line)
        flags, path = match.groups()
        found[path] = DirectoryFlags(path, "E" in flags, flags)
    for line in stderr.splitlines():
        if not line.strip():
            continue
        match = _ERROR.match(line)
        if not match or match.group(2) not in paths:
            raise FactParseError(fact, call, "unexpected lsattr message", line)
        reason, path = match.groups()
        found[path] = DirectoryFlags(path, None, error=reason.lower())
    missing = [p for p in paths if p not in found]
    if missing:
        raise FactParseError(fact, call, "lsattr said nothing about some paths", ", ".join(missing))
    return found


def list_subdirectories(root: Path, directory: str) -> tuple[str, ...]:
    """Host paths of the real subdirectories of ``directory`` (absolute, as on the host).

    A missing directory has no homes (a server without ``/home``); one the agent may not
    list is a permission error, never an empty list.
    """
    base = root / directory.lstrip("/")
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except FileNotFoundError:
        return ()
    except PermissionError as exc:
        raise FactPermissionDenied(
            "host.fscrypt.directories", directory, "permission denied"
        ) from exc
    prefix = directory.rstrip("/")
    return tuple(
        f"{prefix}/{entry.name}"
        for entry in entries
        if entry.is_dir(follow_symlinks=False) and entry.name not in NOT_HOMES
    )
