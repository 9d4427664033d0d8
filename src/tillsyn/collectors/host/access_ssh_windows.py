"""Which authorized_keys files Win32-OpenSSH's sshd reads: ``sshd.exe -T`` plus Match blocks.

Why a module of its own: on Windows the question has a part Linux does not have.
``sshd.exe -T`` (``C:\\Windows\\System32\\OpenSSH`` for the optional feature, reached as
``C:\\Windows\\Sysnative\\OpenSSH`` by a 32-bit agent, whose System32 Windows redirects
to SysWOW64; ``C:\\Program Files\\OpenSSH`` for the MSI/zip release) prints the global
AuthorizedKeysFile as on Linux, but, like any ``sshd -T`` without ``-C``, it does not
apply Match blocks, and the sshd_config Win32-OpenSSH ships ends with::

    Match Group administrators
           AuthorizedKeysFile __PROGRAMDATA__/ssh/administrators_authorized_keys

so for every member of the built-in Administrators group sshd reads
``C:\\ProgramData\\ssh\\administrators_authorized_keys`` instead of the user's own file.
This module therefore always reads ``C:\\ProgramData\\ssh\\sshd_config`` itself (Include
files followed; relative ones are under ``C:\\ProgramData\\ssh``) for its Match blocks:

- the first ``Match Group administrators`` block that sets AuthorizedKeysFile to fixed
  paths: those files go into :attr:`KeysConfig.group_files` for "Administrators", and are
  reported for the members of Administrators (membership is not listed: the file grants
  access to whoever is, or becomes, an administrator);
- any other Match block that sets AuthorizedKeysFile or AuthorizedKeysCommand (or an
  administrators block whose files depend on the user: %h, %u, relative paths) goes into
  :attr:`KeysConfig.unevaluated`: an error, because the keys it points some users at
  are not checked.

When ``sshd -T`` fails (not installed at any of those places, or refused) the global
settings come from sshd_config, as on Linux; only when sshd_config does not exist is the
one Win32-OpenSSH ships assumed, Match Group administrators included, because the service
writes it on first start. An sshd_config that exists but cannot be read (permission
denied), an Include'd file or directory that cannot be read or listed, an Include of a
UNC path or of a path without a drive letter, a timeout or unparsable output are errors
naming the file or line, never a fallback. (With ``sshd -T`` answering, such a failure
leaves the global files known and makes the Match blocks an error of their own.)

Sources: Win32-OpenSSH ``contrib/win32/openssh/sshd_config`` (the shipped file);
OpenSSH ``servconf.c`` (``match_cfg_line``: without ``-C`` no Match block applies;
Include restores the Match context after the included file; ``argv_split`` quoting);
Microsoft Learn "Key-based authentication in OpenSSH for Windows" and "OpenSSH Server
configuration for Windows" (administrators_authorized_keys, its ACL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from tillsyn.collectors.errors import (
    FactError,
    FactMissing,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host import windows_paths as winpath
from tillsyn.collectors.host._base import WINDOWS, HostBase
from tillsyn.collectors.host.access_ssh import KeysConfig, parse_sshd_t
from tillsyn.collectors.host.access_ssh_platforms import PROGRAMDATA_PLACEHOLDER, SSHD_T_FATAL

FACT = "host.access.sshd_keys_config"
#: The platform whose sshd this module reads.
PLATFORM = WINDOWS
#: The optional feature's sshd (as a 64-bit process sees it, then as a 32-bit one must
#: name it: System32 is redirected to SysWOW64 for it, Sysnative is the real System32),
#: then the MSI/zip release's.
SSHD_EXES = (
    r"{SystemRoot}\System32\OpenSSH\sshd.exe",
    r"{SystemRoot}\Sysnative\OpenSSH\sshd.exe",
    r"C:\Program Files\OpenSSH\sshd.exe",
)
ADMINISTRATORS = "Administrators"
#: What Win32-OpenSSH's shipped sshd_config sets (see the module docstring).
SHIPPED_FILES = (".ssh/authorized_keys",)
SHIPPED_ADMIN_FILE = r"{ProgramData}\ssh\administrators_authorized_keys"
#: OpenSSH's compiled-in AuthorizedKeysFile, when sshd_config does not set one.
DEFAULT_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")


def split_args(value: str) -> list[str]:
    """Arguments as OpenSSH's argv_split reads them: quotes group, a backslash escapes
    only a quote, a backslash or a space (so ``C:\\keys`` keeps its backslash), and an
    unquoted ``#`` at the start of an argument ends the line."""
    args: list[str] = []
    current: list[str] = []
    started = False
    quote: str | None = None
    i = 0
    while i < len(value):
        ch = value[i]
        following = value[i + 1 : i + 2]
        if quote is None and ch in " \t":
            if started:
                args.append("".join(current))
                current, started = [], False
        elif quote is None and ch == "#" and not started:
            break
        elif (
            ch == "\\"
            and following
            and (following in "'\"\\" or (quote is None and following == " "))
        ):
            current.append(following)
            started = True
            i += 1
        elif quote is None and ch in "'\"":
            quote, started = ch, True
        elif ch == quote:
            quote = None
        else:
            current.append(ch)
            started = True
        i += 1
    if quote is not None:
        raise ValueError("unterminated quote")
    if started:
        args.append("".join(current))
    return args


@dataclass
class MatchBlock:
    """A Match block's keys settings (the first of each, as sshd keeps)."""

    criteria: str
    where: str
    files: tuple[str, ...] | None = None
    command: str | None = None


@dataclass
class ServerConfig:
    """The keys settings of sshd_config: global ones and each Match block's."""

    files: tuple[str, ...] | None = None
    command: str | None = None
    matches: list[MatchBlock] = field(default_factory=list)


_LINE = re.compile(r"([A-Za-z0-9]+)(?:\s*=\s*|\s+|$)(.*)")


def parse_server_config(
    path: str,
    read: Callable[[str], str],
    glob: Callable[[str], list[str]],
    program_data: str,
) -> ServerConfig:
    """sshd_config with its Include files, as far as keys are concerned."""
    config = ServerConfig()
    _parse(path, read, glob, program_data, config, None, 0)
    return config


def _parse(
    path: str,
    read: Callable[[str], str],
    glob: Callable[[str], list[str]],
    program_data: str,
    config: ServerConfig,
    block: MatchBlock | None,
    depth: int,
) -> None:
    if depth > 16:
        raise FactParseError(FACT, path, "Include loop")
    for number, raw in enumerate(read(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        match = _LINE.fullmatch(line)
        if match is None:
            raise FactParseError(FACT, where, "not a 'keyword value' line", line)
        keyword, rest = match.group(1).lower(), match.group(2).strip()
        try:
            args = split_args(rest)
        except ValueError as exc:
            raise FactParseError(FACT, where, str(exc), line) from exc
        target: ServerConfig | MatchBlock = config if block is None else block
        if keyword == "match":
            block = MatchBlock(rest, where)
            config.matches.append(block)
        elif keyword == "include":
            for pattern in args:
                for sub in _include(pattern, where, line, glob, program_data):
                    _parse(sub, read, glob, program_data, config, block, depth + 1)
        elif keyword == "authorizedkeysfile" and target.files is None:
            target.files = tuple(args)
        elif keyword == "authorizedkeyscommand" and target.command is None:
            target.command = rest


def _include(
    pattern: str,
    where: str,
    line: str,
    glob: Callable[[str], list[str]],
    program_data: str,
) -> list[str]:
    """The files one Include argument names: relative ones under %ProgramData%\\ssh; a UNC
    path, or one without a drive letter, is refused rather than guessed."""
    full = _programdata(pattern, program_data)
    if full.startswith(("\\\\", "//")):
        raise FactParseError(
            FACT, where, "Include names a UNC path (another machine): not read", line
        )
    if not winpath.is_absolute(full):
        if full.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", full):
            raise FactParseError(
                FACT,
                where,
                "Include path has no drive letter (or no root after it), so which file "
                "sshd reads depends on its working directory",
                line,
            )
        full = f"{program_data}\\ssh\\{full}"
    try:
        return glob(full)
    except ValueError as exc:
        raise FactParseError(FACT, where, f"Include path {exc}", line) from exc


def _programdata(path: str, program_data: str) -> str:
    if path.startswith(PROGRAMDATA_PLACEHOLDER):
        return program_data + path[len(PROGRAMDATA_PLACEHOLDER) :]
    return path


def _fixed_paths(files: tuple[str, ...], program_data: str) -> tuple[str, ...] | None:
    """Host paths of files that are the same for every user, else None."""
    if files == ("none",):
        return ()
    out: list[str] = []
    for entry in files:
        path = _programdata(entry, program_data)
        if "%" in path or not winpath.is_absolute(path):
            return None
        out.append(winpath.normalize(path))
    return tuple(out)


def match_keys(
    blocks: list[MatchBlock], program_data: str
) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[tuple[str, str], ...]]:
    """(group files, not evaluated) from the Match blocks; see the module docstring."""
    groups: list[tuple[str, tuple[str, ...]]] = []
    unevaluated: list[tuple[str, str]] = []
    admin_seen = False
    for block in blocks:
        if block.files is None and block.command is None:
            continue
        words = [w.lower() for w in split_args(block.criteria)]
        if words == ["group", "administrators"] and block.command is None:
            if admin_seen:
                continue  # sshd keeps the first AuthorizedKeysFile that applies
            admin_seen = True
            paths = _fixed_paths(block.files or (), program_data)
            if paths is not None:
                if paths:
                    groups.append((ADMINISTRATORS, paths))
                continue
        what = "AuthorizedKeysCommand" if block.command else "AuthorizedKeysFile"
        label = f"Match {block.criteria} ({block.where})"
        unevaluated.append(
            (
                label,
                f"{what} set inside 'Match {block.criteria}' ({block.where}) is not evaluated "
                "here: the keys sshd reads for the users it matches are not checked",
            )
        )
    return tuple(groups), tuple(unevaluated)


def _read(host: HostBase, path: str) -> str:
    """A Windows config file's text; a path that is not a drive-letter path is refused."""
    if not winpath.is_absolute(path):
        raise FactParseError(FACT, path, f"{path!r} is not a drive-letter path")
    return host.read_text(FACT, path)


def _sshd_t(host: HostBase) -> tuple[KeysConfig | None, str]:
    """``sshd.exe -T`` from the first place sshd is installed, or why there is none."""
    system_root = winpath.env_value(host.env, "SystemRoot")
    for exe in (e.format(SystemRoot=system_root) for e in SSHD_EXES):
        try:
            result = host.command(FACT, [exe, "-T"])
        except SSHD_T_FATAL:
            raise
        except FactUnavailable:
            continue  # not installed here
        except FactError as exc:
            return None, f"sshd -T failed ({exc.reason})"
        return parse_sshd_t(result.stdout, f"{exe} -T"), ""
    return None, "sshd is not installed"


def keys_config(host: HostBase) -> KeysConfig:
    """The files sshd reads for everyone, for Administrators, and what is not evaluated."""
    program_data = winpath.env_value(host.env, "ProgramData")
    if not winpath.is_absolute(program_data):
        raise FactParseError(
            FACT,
            "%ProgramData%",
            "is not a drive-letter path, so where sshd_config lives cannot be told",
            program_data,
        )
    config_path = f"{program_data}\\ssh\\sshd_config"
    sshd_t, why = _sshd_t(host)
    try:
        parsed: ServerConfig | None = parse_server_config(
            config_path,
            lambda p: _read(host, p),
            lambda p: winpath.host_glob(host.root, p, FACT),
            program_data,
        )
        problem = ""
    except FactParseError:
        raise
    except FactError as exc:
        if not (isinstance(exc, FactMissing) and exc.call == config_path):
            return _unreadable(exc, config_path, sshd_t, why)
        parsed, problem = None, exc.reason
    if parsed is None:
        unreadable = f"{config_path} unreadable ({problem})"
        if sshd_t is not None:
            missed = (
                "Match",
                f"{unreadable}: its Match blocks (Win32-OpenSSH ships 'Match Group "
                "administrators') are not evaluated, so keys sshd reads instead for some "
                "users are not checked",
            )
            return replace(sshd_t, unevaluated=(missed,))
        admin = SHIPPED_ADMIN_FILE.format(ProgramData=program_data)
        return KeysConfig(
            SHIPPED_FILES,
            None,
            "Win32-OpenSSH shipped sshd_config",
            f"{why}; {unreadable}: assumed the sshd_config Win32-OpenSSH ships, which the "
            "service writes on first start",
            group_files=((ADMINISTRATORS, (admin,)),),
        )
    groups, unevaluated = match_keys(parsed.matches, program_data)
    if sshd_t is not None:
        return replace(sshd_t, group_files=groups, unevaluated=unevaluated)
    command = None if parsed.command in (None, "none") else parsed.command
    if parsed.files is None:
        return KeysConfig(
            DEFAULT_FILES,
            command,
            "OpenSSH default",
            f"{why}; {config_path} sets no AuthorizedKeysFile: the OpenSSH default applies",
            group_files=groups,
            unevaluated=unevaluated,
        )
    return KeysConfig(
        () if parsed.files == ("none",) else parsed.files,
        command,
        config_path,
        f"{why}; read from {config_path} instead",
        group_files=groups,
        unevaluated=unevaluated,
    )


def _unreadable(
    exc: FactError, config_path: str, sshd_t: KeysConfig | None, why: str
) -> KeysConfig:
    """sshd_config or a file it includes exists but could not be read: never the shipped
    default. With ``sshd -T`` the global files are known and the Match blocks are an
    error; without it nothing is known and the fact is an error naming the file."""
    failed = f"{exc.call} could not be read ({exc.reason})"
    if exc.call != config_path:
        failed += f"; it is included by {config_path}"
    if sshd_t is not None:
        missed = (
            "Match",
            f"{failed}: the Match blocks of {config_path} (Win32-OpenSSH ships 'Match Group "
            "administrators') are not evaluated, so keys sshd reads instead for some users "
            "are not checked",
        )
        return replace(sshd_t, unevaluated=(missed,))
    error = FactPermissionDenied if isinstance(exc, FactPermissionDenied) else FactUnavailable
    raise error(
        FACT,
        exc.call,
        f"{why}; {failed}: which authorized_keys files sshd reads is unknown",
    ) from exc
