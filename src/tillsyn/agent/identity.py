"""The agent's identity: a stable agent id and an Ed25519 key, made on first run.

Both live in the state directory. The key file is created with mode 0600 and
published with an atomic link, so two agents starting at once on a fresh machine
end up with one key, never two half-written ones; a key file others can read is
refused, because anyone who can read it can forge seals.

The key file is the standard unencrypted PKCS#8 PEM (``openssl pkey`` reads it). For an
Ed25519 key that is a fixed 16-byte DER prefix and the 32-byte seed (RFC 8410), which
this module writes and reads itself: cryptography's ``serialization`` package costs the
long-running daemon 2.2 MiB of RSS (bench/daemon_footprint.py). Any other form of key
file goes through that package, imported only then.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tillsyn.agent.evidence import key_id

KEY_FILE = "agent.key"
ID_FILE = "agent.id"
#: PKCS#8 DER of an unencrypted Ed25519 private key: this prefix, then the 32-byte seed.
PKCS8_ED25519_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
PEM_BEGIN, PEM_END = b"-----BEGIN PRIVATE KEY-----", b"-----END PRIVATE KEY-----"


class IdentityError(Exception):
    """The identity files exist but cannot be used (unreadable, bad mode, corrupt)."""


class Signer:
    """What holding an Ed25519 private key gives: its public half, its id, signatures.
    Shared by the agent's identity and the store's own key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes_raw()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key_raw)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


@dataclass(frozen=True)
class AgentIdentity(Signer):
    agent_id: str
    private_key: Ed25519PrivateKey


def key_pem(key: Ed25519PrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM, byte for byte what cryptography would write."""
    body = base64.b64encode(PKCS8_ED25519_PREFIX + key.private_bytes_raw())
    return PEM_BEGIN + b"\n" + body + b"\n" + PEM_END + b"\n"


def key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    """The Ed25519 key in ``pem``; ValueError (or TypeError) when it holds none."""
    lines = pem.strip().splitlines()
    if len(lines) == 3 and lines[0] == PEM_BEGIN and lines[2] == PEM_END:
        try:
            der = base64.b64decode(lines[1], validate=True)
        except binascii.Error:
            der = b""
        if len(der) == 48 and der.startswith(PKCS8_ED25519_PREFIX):
            return Ed25519PrivateKey.from_private_bytes(der[16:])
    from cryptography.hazmat.primitives import serialization  # any other form

    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"holds a {type(key).__name__}, not an Ed25519 key")
    return key


def publish_once(path: Path, content: bytes) -> None:
    """Create ``path`` with ``content`` (mode 0600) unless it exists; atomic for readers."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: keep its
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_or_create(state_dir: Path) -> AgentIdentity:
    """The identity in ``state_dir``, created there on first use."""
    id_path, key_path = state_dir / ID_FILE, state_dir / KEY_FILE
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not id_path.exists():
            publish_once(id_path, (str(uuid.uuid4()) + "\n").encode())
        if not key_path.exists():
            publish_once(key_path, key_pem(Ed25519PrivateKey.generate()))
    except OSError as exc:
        raise IdentityError(
            f"cannot create the agent identity in {state_dir}: {exc.strerror or exc}"
        ) from exc
    return load(state_dir)


def load(state_dir: Path) -> AgentIdentity:
    """The identity in ``state_dir``; :class:`IdentityError` if it is missing or unusable."""
    id_path, key_path = state_dir / ID_FILE, state_dir / KEY_FILE
    if not key_path.exists() or not id_path.exists():
        raise IdentityError(f"no agent identity in {state_dir} (no {ID_FILE} or {KEY_FILE})")
    mode = stat.S_IMODE(key_path.stat().st_mode)
    if mode & 0o077:
        raise IdentityError(
            f"{key_path} is readable by others (mode {mode:04o}); run: chmod 600 {key_path}"
        )
    try:
        agent_id = id_path.read_text().strip()
        uuid.UUID(agent_id)
    except (OSError, ValueError) as exc:
        raise IdentityError(f"{id_path} does not hold an agent id: {exc}") from exc
    try:
        key = key_from_pem(key_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise IdentityError(f"{key_path} is not a readable PEM private key: {exc}") from exc
    except TypeError as exc:
        raise IdentityError(f"{key_path} {exc}") from exc
    return AgentIdentity(agent_id, key)
