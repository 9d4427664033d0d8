"""Whether logs leave the host: rsyslog forwarding, syslog-ng network destinations, journal upload.

Only configuration is read (no traffic is observed), so the evidence says "configured to
forward to X", and whether the forwarding daemon is enabled at boot (its systemd
``*.wants/`` link). Recognised:

- rsyslog (``/etc/rsyslog.conf``, ``$IncludeConfig`` and ``include(file=...)`` globs):
  legacy actions ``@host``, ``@@host:port``, ``:omrelp:host:port`` after a selector, and
  RainerScript ``action(type="omfwd"|"omrelp"|... target="host" ...)``;
- syslog-ng (``/etc/syslog-ng/syslog-ng.conf`` and ``@include``): a ``destination`` using
  ``network()``, ``syslog()``, ``tcp()``, ``udp()``, ``tcp6()`` or ``udp6()`` that some
  ``log { ... }`` path uses;
- systemd-journal-upload: ``URL=`` in ``[Upload]`` of ``journal-upload.conf`` (merged with
  its drop-ins like any systemd configuration).
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

from tillsyn.collectors.errors import FactPermissionDenied

FACT = "host.logs.shipping"

REMOTE_MODULES = ("omfwd", "omrelp", "omhttp", "omelasticsearch", "omkafka", "omgssapi")


@dataclass(frozen=True)
class Forwarder:
    """One configured way logs leave the host."""

    daemon: str  # rsyslog | syslog-ng | journal-upload | Windows Event Forwarding | syslogd
    target: str
    how: str  # the action or driver: omfwd, @@ (tcp), network(), URL ...
    where: str  # file:line
    enabled: bool | None  # the daemon's unit enabled at boot; None: not a systemd host


def _strip_comments(text: str) -> str:
    """Drop ``/* */`` blocks and ``#`` comments outside double quotes, keeping line numbers."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    out = []
    for line in text.splitlines():
        quoted = False
        for i, char in enumerate(line):
            if char == '"':
                quoted = not quoted
            elif char == "#" and not quoted:
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


_LEGACY = re.compile(r"^\s*[^\s$:][^\s]*\s+(@@?)(\([^)]*\))?(\[[^\]]+\]|[^\s:;]+)(:\d+)?", re.M)
_RELP = re.compile(r"^\s*[^\s$][^\s]*\s+:omrelp:([^\s:;]+)(:\d+)?", re.M)
_ACTION = re.compile(r"action\s*\((.*?)\)", re.S)
_PARAM = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
_INCLUDE_LEGACY = re.compile(r"^\s*\$IncludeConfig\s+(\S+)", re.M)
_INCLUDE_SCRIPT = re.compile(r'include\s*\(\s*file\s*=\s*"([^"]+)"', re.S)


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def rsyslog_forwarders(text: str, path: str, enabled: bool | None) -> list[Forwarder]:
    """Forwarding actions in one rsyslog file (comments ignored)."""
    clean = _strip_comments(text)
    found: list[Forwarder] = []
    for m in _LEGACY.finditer(clean):
        how = "@@ (TCP)" if m.group(1) == "@@" else "@ (UDP)"
        target = m.group(3) + (m.group(4) or "")
        where = f"{path}:{_line_of(clean, m.start())}"
        found.append(Forwarder("rsyslog", target, how, where, enabled))
    for m in _RELP.finditer(clean):
        where = f"{path}:{_line_of(clean, m.start())}"
        target = m.group(1) + (m.group(2) or "")
        found.append(Forwarder("rsyslog", target, "omrelp", where, enabled))
    for m in _ACTION.finditer(clean):
        params = {k.lower(): v for k, v in _PARAM.findall(m.group(1))}
        module = params.get("type", "")
        if module not in REMOTE_MODULES:
            continue
        target = params.get("target") or params.get("server") or params.get("broker") or "?"
        if params.get("port"):
            target += f":{params['port']}"
        where = f"{path}:{_line_of(clean, m.start())}"
        found.append(Forwarder("rsyslog", target, module, where, enabled))
    return found


def rsyslog_includes(text: str) -> list[str]:
    """Glob patterns rsyslog includes from this file, in order."""
    clean = _strip_comments(text)
    return _INCLUDE_LEGACY.findall(clean) + _INCLUDE_SCRIPT.findall(clean)


_SNG_DEST = re.compile(r"destination\s+([\w-]+)\s*\{(.*?)\}\s*;", re.S)
_SNG_DRIVER = re.compile(r"\b(network|syslog|tcp6?|udp6?)\s*\(\s*(\"[^\"]*\"|[^\s)]+)?", re.S)
_SNG_LOG = re.compile(r"\blog\s*\{(.*?)\}\s*;", re.S)
_SNG_INCLUDE = re.compile(r'^\s*@include\s+"([^"]+)"', re.M)


def syslog_ng_forwarders(text: str, path: str, enabled: bool | None) -> list[Forwarder]:
    """Network destinations that a log path uses, in one syslog-ng file."""
    clean = _strip_comments(text)
    used = set(re.findall(r"destination\s*\(\s*([\w-]+)\s*\)", " ".join(_SNG_LOG.findall(clean))))
    found = []
    for m in _SNG_DEST.finditer(clean):
        name, body = m.group(1), m.group(2)
        driver = _SNG_DRIVER.search(body)
        if not driver or name not in used:
            continue
        target = (driver.group(2) or "?").strip('"')
        where = f"{path}:{_line_of(clean, m.start())}"
        found.append(Forwarder("syslog-ng", target, f"{driver.group(1)}()", where, enabled))
    return found


def syslog_ng_includes(text: str) -> list[str]:
    return _SNG_INCLUDE.findall(_strip_comments(text))


def expand(root: Path, pattern: str) -> list[str]:
    """Host paths matching an include glob (or naming a directory's files), sorted."""
    local = str(root / pattern.lstrip("/"))
    if Path(local).is_dir():
        local = local.rstrip("/") + "/*"
    matches = sorted(glob.glob(local))
    prefix = str(root).rstrip("/")
    return ["/" + m[len(prefix) :].lstrip("/") for m in matches if Path(m).is_file()]


def read_config(root: Path, path: str) -> str | None:
    """A configuration file's text, None when absent; unreadable is an error."""
    local = root / path.lstrip("/")
    try:
        return local.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise FactPermissionDenied(FACT, path, "permission denied") from exc
