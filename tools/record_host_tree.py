"""Record the files the host disk-encryption check reads into a fixture directory.

Why this exists: the check's collector takes a filesystem root, so tests can point it at
a directory instead of ``/``. A fixture is only worth something if it holds what a real
kernel shows, with link shapes, ``dev`` numbers and ``dm/uuid`` strings exactly as they
are; this script copies them from a live machine rather than letting anyone write them
from memory.

It copies exactly what the collector reads, relative to the root:

* ``proc/self/mountinfo``, ``proc/swaps`` and ``etc/machine-id``;
* for every block device a mount or a swap area refers to (by ``MAJ:MIN`` in mountinfo,
  by a ``/dev/...`` mount source, by a swap path), the ``sys/dev/block/MAJ:MIN`` link and,
  in the device's sysfs directory, ``dev``, ``dm/uuid``, ``dm/name``, ``slaves/``,
  ``loop/backing_file``, ``partition`` and ``md/`` (its ``level``, ``raid_disks``,
  ``metadata_version`` and ``array_state``, so that the directory exists in git); it
  recurses through ``slaves/``, from a partition to its disk and from a loop device to
  the filesystem that holds its backing file;
* the matching ``sys/class/block/NAME`` links, the ``dev/mapper`` links to those devices,
  and every symlink met on the way from a ``/dev/...`` mount source or swap path.

Links are copied as the kernel and udev made them (relative), so they resolve inside the
output directory. Device nodes are not copied: git cannot store them, and the collector
only needs the name a ``/dev`` link points at. Nothing here needs root.

Usage: ``python tools/record_host_tree.py OUTDIR`` (``--root DIR`` reads another tree).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

#: Files copied verbatim from the root; the first two are required.
ROOT_FILES = ("proc/self/mountinfo", "proc/swaps", "etc/machine-id")
#: Files copied from each block device's sysfs directory when present.
DEVICE_FILES = ("dev", "partition", "dm/uuid", "dm/name")
#: Files of an md array's ``md/`` directory; the collector only needs the directory.
MD_FILES = ("md/level", "md/raid_disks", "md/metadata_version", "md/array_state")


def unescape(field: str) -> str:
    """Undo the kernel's octal escapes (``\\040`` for a space) in mountinfo and swaps."""
    out: list[str] = []
    i = 0
    while i < len(field):
        chunk = field[i + 1 : i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


class Recorder:
    """Copies the reachable part of ``root`` into ``out``, one relative path at a time."""

    def __init__(self, root: Path, out: Path) -> None:
        self.root = root
        self.out = out
        self.devices: list[str] = []  # kernel names recorded, in the order met
        self._seen: set[str] = set()  # device directories already walked (relative)
        self._mounts: list[tuple[str, str, str]] = []  # (mount point, MAJ:MIN, source)

    # -- copying ------------------------------------------------------------------------

    def copy_file(self, rel: str) -> bool:
        """Copy one regular file; False when it does not exist or cannot be read."""
        try:
            data = (self.root / rel).read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            print(f"warning: cannot read {rel}: {exc.strerror or exc}", file=sys.stderr)
            return False
        target = self.out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return True

    def copy_link(self, rel: str) -> bool:
        """Copy one symlink as it is; an absolute target is rewritten relative to the root."""
        try:
            target = os.readlink(self.root / rel)
        except OSError:
            return False
        if os.path.isabs(target):
            target = os.path.relpath(target, "/" + os.path.dirname(rel))
        link = self.out / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
        return True

    def relative(self, path: str) -> str | None:
        """``path`` (already resolved) relative to the root, or None when it leaves it."""
        root = os.path.realpath(self.root)
        if path != root and not path.startswith(root.rstrip("/") + "/"):
            return None
        return os.path.relpath(path, root)

    # -- walking ------------------------------------------------------------------------

    def record_number(self, number: str) -> None:
        """Record ``sys/dev/block/MAJ:MIN`` and the device it leads to."""
        rel = f"sys/dev/block/{number}"
        if not self.copy_link(rel):
            print(f"warning: no {rel}", file=sys.stderr)
            return
        device = self.relative(os.path.realpath(self.root / rel))
        if device is not None:
            self.record_device(device)

    def record_name(self, name: str) -> None:
        """Record a device known by its kernel name, through ``sys/class/block/NAME``."""
        rel = f"sys/class/block/{name}"
        if not (self.root / rel).exists():
            print(f"warning: no {rel}", file=sys.stderr)
            return
        device = self.relative(os.path.realpath(self.root / rel))
        if device is not None:
            self.record_device(device)

    def record_device(self, device: str) -> None:
        """Record one device directory (relative to the root) and what it stands on."""
        if device in self._seen:
            return
        self._seen.add(device)
        name = os.path.basename(device)
        self.devices.append(name)
        for file in DEVICE_FILES + MD_FILES:
            self.copy_file(f"{device}/{file}")
        self.copy_link(f"sys/class/block/{name}")
        dev_file = self.root / device / "dev"
        if dev_file.is_file():
            self.copy_link(f"sys/dev/block/{dev_file.read_text().strip()}")
        if (self.root / device / "partition").is_file():
            self.record_device(os.path.dirname(device))
        self._record_slaves(device)
        if self.copy_file(f"{device}/loop/backing_file"):
            backing = (self.root / device / "loop/backing_file").read_text().strip()
            self.record_path_holder(backing.removesuffix(" (deleted)"))

    def _record_slaves(self, device: str) -> None:
        slaves = self.root / device / "slaves"
        if not slaves.is_dir():
            return
        (self.out / device / "slaves").mkdir(parents=True, exist_ok=True)
        for entry in sorted(os.listdir(slaves)):
            self.copy_link(f"{device}/slaves/{entry}")
            target = self.relative(os.path.realpath(slaves / entry))
            if target is not None:
                self.record_device(target)

    def record_dev_path(self, path: str) -> None:
        """Record a ``/dev/...`` path: every symlink on the way, then the device it names."""
        rel = path.lstrip("/")
        for _ in range(40):  # a symlink loop must not hang the recorder
            if not (self.root / rel).is_symlink():
                break
            self.copy_link(rel)
            target = os.readlink(self.root / rel)
            if os.path.isabs(target):
                rel = target.lstrip("/")
                continue
            rel = os.path.normpath(os.path.join(os.path.dirname(rel), target))
            if rel.startswith("../"):
                break
        self.record_name(os.path.basename(rel))

    def record_path_holder(self, path: str) -> None:
        """Record the device of the mount holding ``path`` (a swap file, a loop backing file).

        The longest mount point that prefixes the path wins, the last mounted on a tie. A
        filesystem with an anonymous number (btrfs: ``0:N``) is followed through its source.
        """
        best: tuple[str, str, str] | None = None
        for point, number, source in self._mounts:
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and (best is None or len(point) >= len(best[0])):
                best = (point, number, source)
        if best is None:
            print(f"warning: no mount holds {path}", file=sys.stderr)
        elif not best[1].startswith("0:"):
            self.record_number(best[1])
        elif best[2].startswith("/dev/"):
            self.record_dev_path(best[2])

    def record_mapper_links(self) -> None:
        """Copy the ``dev/mapper`` links that point at a recorded device."""
        mapper = self.root / "dev/mapper"
        if not mapper.is_dir():
            return
        for entry in sorted(os.listdir(mapper)):
            link = mapper / entry
            if link.is_symlink() and os.path.basename(os.readlink(link)) in self.devices:
                self.copy_link(f"dev/mapper/{entry}")

    # -- the whole recording --------------------------------------------------------------

    def record(self) -> None:
        for rel in ROOT_FILES:
            if not self.copy_file(rel):
                if rel in ROOT_FILES[:2]:
                    raise SystemExit(f"cannot read {self.root / rel}")
                print(f"warning: no {rel}", file=sys.stderr)
        numbers: list[str] = []
        sources: list[str] = []
        for line in (self.out / "proc/self/mountinfo").read_text().splitlines():
            fields = line.split(" ")
            if "-" not in fields[6:]:
                continue  # not of the documented shape: kept in the copy, not followed
            separator = fields.index("-", 6)
            source = unescape(fields[separator + 2]) if len(fields) > separator + 2 else ""
            self._mounts.append((unescape(fields[4]), fields[2], source))
            if not fields[2].startswith("0:"):  # anonymous devices have no sysfs entry
                numbers.append(fields[2])
            if source.startswith("/dev/"):
                sources.append(source)
        for number in numbers:
            self.record_number(number)
        for source in sources:
            self.record_dev_path(source)
        for line in (self.out / "proc/swaps").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) != 5:
                continue
            path = unescape(fields[0])
            if fields[1] == "partition":
                self.record_dev_path(path)
            else:
                self.record_path_holder(path)
        self.record_mapper_links()

    def write_provenance(self) -> None:
        pretty = "unknown"
        try:
            for line in (self.root / "etc/os-release").read_text().splitlines():
                if line.startswith("PRETTY_NAME="):
                    pretty = line.partition("=")[2].strip().strip('"')
        except OSError:
            pass
        try:
            uname = subprocess.run(
                ["uname", "-srvm"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            u = os.uname()
            uname = f"{u.sysname} {u.release} {u.version} {u.machine}"
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = [
            "recorded by tools/record_host_tree.py",
            f"date: {stamp}",
            f"uname -srvm: {uname}",
            f"os-release PRETTY_NAME: {pretty}",
            f"source root: {self.root}",
            f"block devices recorded: {', '.join(self.devices) or 'none'}",
            "",
        ]
        (self.out / "provenance.txt").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("outdir", type=Path, help="directory to write (created if missing)")
    parser.add_argument("--root", type=Path, default=Path("/"), help="tree to read (default /)")
    args = parser.parse_args(argv)
    if args.outdir.exists() and any(args.outdir.iterdir()):
        parser.error(f"{args.outdir} is not empty")
    args.outdir.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(args.root, args.outdir)
    recorder.record()
    recorder.write_provenance()
    print(f"recorded {len(recorder.devices)} block device(s) into {args.outdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
