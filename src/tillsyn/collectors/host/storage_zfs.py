"""ZFS facts: native encryption per dataset, and the devices a pool stands on.

A ZFS mount's device number is anonymous and its ``source`` is a dataset name, so the
sysfs walk of :mod:`.blockdev` cannot say anything about it. Two things can encrypt a
dataset's data at rest: ZFS native encryption (the dataset's ``encryption`` property is
not ``off``), or dm-crypt under every device of its pool (ZFS on LUKS). The first is read
for all filesystems at once with ``zfs get -H -p``; the second from ``zpool status -P
-L``, whose leaf vdevs are real ``/dev`` paths that the sysfs walk then follows.
Both commands work unprivileged where the ZFS module is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError

#: ``zfs get`` for every filesystem at once: one run answers every ZFS mount.
ZFS_GET_ARGV = [
    "zfs",
    "get",
    "-H",
    "-p",
    "-o",
    "name,property,value",
    "-t",
    "filesystem",
    "encryption,keystatus,encryptionroot",
]

#: Values of the ``encryption`` property (zfsprops(7)); ``on`` is aes-256-gcm since 0.8.4.
_ENCRYPTION = re.compile(r"^(off|on|aes-(128|192|256)-(ccm|gcm))$")
_KEYSTATUS = frozenset({"available", "unavailable", "-"})
_PROPERTIES = ("encryption", "keystatus", "encryptionroot")


@dataclass(frozen=True)
class ZfsDataset:
    """The encryption properties of one ZFS filesystem."""

    name: str
    encryption: str  # off, on, aes-256-gcm ...
    keystatus: str  # available, unavailable, or "-" when unencrypted
    encryptionroot: str  # "" when unencrypted

    @property
    def encrypted(self) -> bool:
        return self.encryption != "off"

    @property
    def pool(self) -> str:
        return self.name.split("/", 1)[0]


def parse_zfs_get(stdout: str, call: str) -> dict[str, ZfsDataset]:
    """Strict parse of ``zfs get -H -p -o name,property,value``: tab-separated triples."""
    fact = "host.zfs.datasets"
    seen: dict[str, dict[str, str]] = {}
    for number, line in enumerate(stdout.splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise FactParseError(fact, call, f"line {number} is not 3 tab-separated fields", line)
        name, prop, value = fields
        if prop not in _PROPERTIES or not name:
            raise FactParseError(fact, call, f"line {number} has unexpected property {prop}", line)
        seen.setdefault(name, {})[prop] = value
    datasets: dict[str, ZfsDataset] = {}
    for name, props in seen.items():
        missing = [p for p in _PROPERTIES if p not in props]
        if missing:
            raise FactParseError(
                fact, call, f"dataset {name} lacks {', '.join(missing)}", repr(props)
            )
        if not _ENCRYPTION.match(props["encryption"]):
            raise FactParseError(
                fact, call, f"dataset {name} has unknown encryption value", props["encryption"]
            )
        if props["keystatus"] not in _KEYSTATUS:
            raise FactParseError(
                fact, call, f"dataset {name} has unknown keystatus", props["keystatus"]
            )
        root = props["encryptionroot"]
        datasets[name] = ZfsDataset(
            name, props["encryption"], props["keystatus"], "" if root == "-" else root
        )
    return datasets


#: Sections of ``zpool status`` whose devices hold no pool data until they replace one.
_IDLE_SECTIONS = frozenset({"spares"})


def parse_zpool_devices(stdout: str, pool: str, call: str) -> tuple[str, ...]:
    """The leaf device paths of ``zpool status -P -L POOL`` (spares excepted).

    The ``config:`` table lists the pool, its vdev groups (mirror-0, raidz2-0, logs,
    cache, special ...) and, with ``-P``, every leaf as a full ``/dev`` path.
    """
    fact = "host.zfs.pool_devices"
    lines = stdout.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "config:")
    except StopIteration:
        raise FactParseError(fact, call, "no 'config:' section", stdout[:120]) from None
    devices: list[str] = []
    section = pool
    saw_pool = False
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("errors:"):
            break
        first = stripped.split()[0]
        if first == "NAME":
            continue
        indent = len(line) - len(line.lstrip())
        if first == pool and not saw_pool:
            saw_pool = True
            continue
        if not first.startswith("/") and indent <= _section_indent(lines, start):
            section = first  # logs, cache, spares, special, dedup
            continue
        if first.startswith("/") and section not in _IDLE_SECTIONS:
            devices.append(first)
    if not saw_pool:
        raise FactParseError(fact, call, f"pool {pool} is not in the config table", stdout[:120])
    if not devices:
        raise FactParseError(fact, call, f"no device paths listed for pool {pool}", stdout[:120])
    return tuple(devices)


def _section_indent(lines: list[str], start: int) -> int:
    """Indentation of the pool's own line (sections like ``logs`` sit at the same depth)."""
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if stripped and stripped.split()[0] != "NAME":
            return len(line) - len(line.lstrip())
    return 0
