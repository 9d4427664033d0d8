"""The socket and process tables, live through psutil or recorded from a real machine.

psutil reads the live kernel, which a test cannot pin down, so the collector never calls
it directly: it asks a :class:`ProcessTable`. :class:`PsutilTable` is the live one;
:class:`RecordedTable` replays a JSON snapshot that ``tests/fixtures/processes/
record_processes.py`` wrote from what psutil returned on a real machine (the same
:func:`snapshot` function produces both, so a recording has exactly the live shape).

Privilege shows in the data and is kept: an unprivileged user sees every socket on Linux
but not the pid of another user's socket (``pid`` is None), and on macOS cannot list
sockets at all (psutil raises AccessDenied, recorded as ``error``). Command lines are never
recorded: they can hold passwords.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from tillsyn.collectors.errors import FactParseError, FactPermissionDenied, FactUnavailable

Transport = Literal["tcp", "udp"]


@dataclass(frozen=True)
class Socket:
    """One inet socket as psutil lists it."""

    transport: Transport
    family: Literal["inet", "inet6"]
    ip: str
    port: int
    status: str  # LISTEN, ESTABLISHED ... ("NONE" for UDP)
    remote: str  # "" when not connected
    pid: int | None  # None: the owner is not visible to this user


@dataclass(frozen=True)
class Process:
    pid: int
    name: str
    username: str | None  # None: not visible to this user
    exe: str | None


@dataclass(frozen=True)
class Listener:
    """A socket accepting traffic: TCP in LISTEN, or UDP bound without a peer."""

    transport: Transport
    ip: str
    port: int
    pid: int | None
    process: str | None  # the owning process's name, when visible

    @property
    def loopback_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.ip.split("%")[0]).is_loopback
        except ValueError:
            return False

    @property
    def address(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class Table:
    """What a process table returned; ``*_error`` says why a part could not be read."""

    sockets: tuple[Socket, ...]
    processes: tuple[Process, ...]
    sockets_error: str | None
    processes_error: str | None
    euid: int | None  # the reading user's uid (None on Windows)
    source: str  # "psutil (live)" or the recording's provenance


class ProcessTable(Protocol):
    """Where the collector gets sockets and processes from."""

    def read(self) -> Table: ...


def snapshot() -> dict[str, Any]:
    """What psutil returns right now, as JSON-able data (also what the recorder writes)."""
    import psutil  # lazy: only a live run needs it

    data: dict[str, Any] = {
        "psutil_version": psutil.__version__,
        "euid": os.geteuid() if hasattr(os, "geteuid") else None,
        "sockets": None,
        "sockets_error": None,
        "processes": None,
        "processes_error": None,
    }
    try:
        data["sockets"] = [
            {
                "type": "tcp" if conn.type == socket.SOCK_STREAM else "udp",
                "family": "inet6" if conn.family == socket.AF_INET6 else "inet",
                "laddr": [conn.laddr.ip, conn.laddr.port] if conn.laddr else None,
                "raddr": [conn.raddr.ip, conn.raddr.port] if conn.raddr else None,
                "status": conn.status,
                "pid": conn.pid,
            }
            for conn in psutil.net_connections(kind="inet")
        ]
    except psutil.AccessDenied as exc:
        data["sockets_error"] = f"psutil.AccessDenied: {exc}"
    processes = []
    try:
        for proc in psutil.process_iter(["pid", "name", "username", "exe"]):
            info = proc.info
            processes.append({k: info.get(k) for k in ("pid", "name", "username", "exe")})
        data["processes"] = processes
    except psutil.AccessDenied as exc:
        data["processes_error"] = f"psutil.AccessDenied: {exc}"
    return data


def _socket(item: object, where: str) -> Socket:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: not an object")
    laddr, raddr = item.get("laddr"), item.get("raddr")
    if not (isinstance(laddr, list) and len(laddr) == 2 and isinstance(laddr[1], int)):
        raise ValueError(f"{where}: 'laddr' is not [ip, port]")
    if item.get("type") not in ("tcp", "udp") or item.get("family") not in ("inet", "inet6"):
        raise ValueError(f"{where}: unknown type/family")
    pid = item.get("pid")
    if pid is not None and not isinstance(pid, int):
        raise ValueError(f"{where}: 'pid' is not an integer")
    remote = f"{raddr[0]}:{raddr[1]}" if isinstance(raddr, list) and raddr else ""
    return Socket(
        transport=item["type"],
        family=item["family"],
        ip=str(laddr[0]),
        port=laddr[1],
        status=str(item.get("status", "")),
        remote=remote,
        pid=pid,
    )


def _process(item: object, where: str) -> Process:
    if not isinstance(item, dict) or not isinstance(item.get("pid"), int):
        raise ValueError(f"{where}: not an object with an integer 'pid'")
    name = item.get("name")
    return Process(
        pid=item["pid"],
        name=str(name) if name is not None else "",
        username=item.get("username"),
        exe=item.get("exe") or None,
    )


def parse_snapshot(data: object, source: str) -> Table:
    """A :class:`Table` from :func:`snapshot` data; malformed data raises ValueError."""
    if not isinstance(data, dict):
        raise ValueError("the snapshot is not an object")
    sockets, processes = data.get("sockets"), data.get("processes")
    if sockets is None and not data.get("sockets_error"):
        raise ValueError("neither 'sockets' nor 'sockets_error'")
    if processes is None and not data.get("processes_error"):
        raise ValueError("neither 'processes' nor 'processes_error'")
    return Table(
        sockets=tuple(_socket(s, f"sockets[{i}]") for i, s in enumerate(sockets or ())),
        processes=tuple(_process(p, f"processes[{i}]") for i, p in enumerate(processes or ())),
        sockets_error=data.get("sockets_error"),
        processes_error=data.get("processes_error"),
        euid=data.get("euid"),
        source=source,
    )


class PsutilTable:
    """The live machine, through psutil."""

    def read(self) -> Table:
        return parse_snapshot(snapshot(), "psutil (live)")


class RecordedTable:
    """A snapshot recorded on a real machine by ``record_processes.py``."""

    def __init__(self, path: Path, shown: str) -> None:
        self.path = path
        self.shown = shown

    def read(self) -> Table:
        fact = "host.endpoint.process_table"
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise FactUnavailable(fact, self.shown, "does not exist") from exc
        except PermissionError as exc:
            raise FactPermissionDenied(fact, self.shown, "permission denied") from exc
        try:
            data = json.loads(text)
            return parse_snapshot(data, str(data.get("provenance", self.shown)))
        except (json.JSONDecodeError, ValueError, AttributeError) as exc:
            raise FactParseError(fact, self.shown, f"not a process snapshot: {exc}", text) from exc


def listeners(table: Table) -> tuple[Listener, ...]:
    """Sockets that accept traffic, each with its owner's name where visible."""
    names = {p.pid: p.name for p in table.processes}
    found = {
        Listener(s.transport, s.ip, s.port, s.pid, names.get(s.pid) if s.pid else None)
        for s in table.sockets
        if (s.transport == "tcp" and s.status == "LISTEN")
        or (s.transport == "udp" and not s.remote)
    }
    return tuple(sorted(found, key=lambda x: (x.port, x.transport, x.ip, x.pid or 0)))
