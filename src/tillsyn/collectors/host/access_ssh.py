"""SSH authorized keys: which files sshd reads, what each key line grants, its fingerprint.

Fingerprints are computed here the way ``ssh-keygen -l -E sha256`` prints them:
``SHA256:`` and the unpadded base64 of SHA-256 over the decoded key blob. Only the
fingerprint, type, comment and options leave this module: never the key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError

#: OpenSSH's AuthorizedKeysFile when sshd_config does not set one.
DEFAULT_AUTHORIZED_KEYS = (".ssh/authorized_keys", ".ssh/authorized_keys2")

_PLAIN_TYPES = (
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ssh-ed448",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
)


def _cert(kind: str) -> str:
    base, _, domain = kind.partition("@")
    return f"{base}-cert-v01@{domain or 'openssh.com'}"


KEY_TYPES = frozenset(_PLAIN_TYPES) | {_cert(t) for t in _PLAIN_TYPES}
_OPTION = re.compile(r'[A-Za-z0-9-]+(?:="(?:[^"\\]|\\.)*")?')


@dataclass(frozen=True)
class AuthorizedKey:
    """One usable line of an authorized_keys file (no key material kept)."""

    file: str
    line: int
    type: str
    fingerprint: str
    comment: str
    options: tuple[str, ...]

    def as_evidence(self) -> dict[str, object]:
        return {
            "fingerprint": self.fingerprint,
            "type": self.type,
            "comment": self.comment,
            "options": list(self.options),
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True)
class KeysConfig:
    """Where sshd looks for a user's keys, and how we know."""

    files: tuple[str, ...]  # patterns with %h %u %U %% tokens, relative to the home
    command: str | None  # AuthorizedKeysCommand, when set
    source: str  # "sshd -T", "/etc/ssh/sshd_config", "OpenSSH default"
    note: str  # why a fallback was used ("" for sshd -T)
    #: Files sshd reads instead for the members of a group, from a ``Match Group`` block
    #: (Windows: Administrators -> administrators_authorized_keys); host paths.
    group_files: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: (label, why) of Match blocks that point some users at other keys, not evaluated.
    unevaluated: tuple[tuple[str, str], ...] = ()


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a decoded public key blob."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")
    return "SHA256:" + digest.rstrip("=")


#: How many length-prefixed fields (type name included) each plain key blob holds.
_FIELDS = {
    "ssh-rsa": 3,
    "ssh-dss": 5,
    "ssh-ed25519": 2,
    "ssh-ed448": 2,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,
    "sk-ssh-ed25519@openssh.com": 3,
}
_KEY_BYTES = {"ssh-ed25519": 32, "ssh-ed448": 57, "sk-ssh-ed25519@openssh.com": 32}


def _fields(blob: bytes) -> list[bytes] | None:
    """The SSH wire-format strings of ``blob``, or None unless they fill it exactly."""
    out: list[bytes] = []
    pos = 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            return None
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        pos += 4
        if pos + length > len(blob):
            return None
        out.append(blob[pos : pos + length])
        pos += length
    return out


def _blob_problem(kind: str, blob: bytes) -> str | None:
    """Why sshd would refuse this blob for a ``kind`` key line, or None when it is whole."""
    if len(blob) < 4:
        return "the key is empty"
    (length,) = struct.unpack(">I", blob[:4])
    name = blob[4 : 4 + length].decode("ascii", errors="replace") if length <= 64 else "?"
    if name != kind:
        return f"key line says {kind} but the key is {name}"
    if kind not in _FIELDS:  # certificates: fixed-width fields too; the type check suffices
        return None
    fields = _fields(blob)
    if fields is None or len(fields) != _FIELDS[kind]:
        return "the key is truncated or has trailing data"
    size = _KEY_BYTES.get(kind)
    if size is not None and len(fields[1]) != size:
        return f"a {kind} key must be {size} bytes"
    return None


def _split_options(line: str) -> tuple[tuple[str, ...], str]:
    """Leading options (comma separated, quoted values may hold commas and spaces)."""
    options: list[str] = []
    pos = 0
    while True:
        match = _OPTION.match(line, pos)
        if match is None or match.end() == pos:
            raise ValueError("malformed options")
        options.append(match.group(0))
        pos = match.end()
        if pos < len(line) and line[pos] == ",":
            pos += 1
            continue
        if pos < len(line) and line[pos] in " \t":
            return tuple(options), line[pos:].lstrip()
        raise ValueError("options are not followed by a key")


def parse_authorized_keys(text: str, file: str) -> tuple[AuthorizedKey, ...]:
    """Strict parse; a line sshd might read differently is an error, not a skipped line."""
    fact = "host.access.authorized_keys"
    keys: list[AuthorizedKey] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{file}:{number}"
        first = line.split(None, 1)[0]
        options: tuple[str, ...] = ()
        rest = line
        if first not in KEY_TYPES:
            try:
                options, rest = _split_options(line)
            except ValueError as exc:
                raise FactParseError(fact, where, f"not a key line: {exc}", first[:40]) from exc
        parts = rest.split(None, 2)
        if len(parts) < 2 or parts[0] not in KEY_TYPES:
            shown = parts[0][:40] if parts else ""
            raise FactParseError(fact, where, "unknown or missing key type", shown)
        kind, encoded = parts[0], parts[1]
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FactParseError(fact, where, "key is not valid base64", kind) from exc
        problem = _blob_problem(kind, blob)
        if problem is not None:
            raise FactParseError(fact, where, problem, kind)
        keys.append(
            AuthorizedKey(
                file=file,
                line=number,
                type=kind,
                fingerprint=fingerprint(blob),
                comment=parts[2].strip() if len(parts) > 2 else "",
                options=options,
            )
        )
    return tuple(keys)


def parse_sshd_t(stdout: str, call: str) -> KeysConfig:
    """``sshd -T``: one lowercase ``keyword value`` per line."""
    fact = "host.access.sshd_keys_config"
    settings: dict[str, str] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        match = re.fullmatch(r"([a-z0-9]+)(?: (.*))?", line)
        if match is None:
            raise FactParseError(fact, call, "not a 'keyword value' line", line)
        settings.setdefault(match.group(1), match.group(2) or "")
    if "authorizedkeysfile" not in settings or "port" not in settings:
        raise FactParseError(
            fact, call, "no authorizedkeysfile (or port) line: not sshd -T output", stdout[:120]
        )
    files = settings["authorizedkeysfile"].split()
    command = settings.get("authorizedkeyscommand", "none")
    return KeysConfig(
        files=() if files == ["none"] else tuple(files),
        command=None if command in ("none", "") else command,
        source="sshd -T",
        note="",
    )


def config_directives(text: str) -> list[tuple[str, str]]:
    """(lowercase keyword, value) of an sshd_config text up to its first Match block."""
    out: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"[\s=]+", line, maxsplit=1)
        keyword = parts[0].lower()
        value = parts[1].strip() if len(parts) > 1 else ""
        if keyword == "match":
            out.append(("match", value))
            break
        out.append((keyword, value))
    return out


def expand_tokens(pattern: str, user: str, uid: int, home: str) -> str:
    """An AuthorizedKeysFile entry for one user; relative paths are under the home."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        token = pattern[i + 1 : i + 2]
        replacement = {"%": "%", "h": home, "u": user, "U": str(uid)}.get(token)
        if replacement is None:
            raise FactParseError(
                "host.access.sshd_keys_config",
                "AuthorizedKeysFile",
                f"unknown token %{token} (sshd accepts %%, %h, %U, %u)",
                pattern,
            )
        out.append(replacement)
        i += 2
    path = "".join(out)
    return path if path.startswith("/") else f"{home.rstrip('/')}/{path}"
