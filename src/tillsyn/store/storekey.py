"""The store's own Ed25519 key: what its receipts, enrolments, retention removals, audit
events and KPI snapshots are signed with.

It lives in a file, never in the store's database: whoever can rewrite the database
must not be able to re-sign what they wrote. By default ``store.key`` in the store's
state directory (mode 0600, made on first start), or the file ``--key-file`` /
``TILLSYN_STORE_KEY_FILE`` names (a mounted secret in Kubernetes). Every process that
writes to the store's chain (``tillsyn serve`` and its workers, and the admin
commands) must use the same key; :func:`check_matches` refuses a key other than the
one the chain was signed with, so a forgotten ``--key-file`` cannot start a second,
silently different signer.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tillsyn.agent.evidence import b64
from tillsyn.agent.identity import Signer, key_from_pem, key_pem, publish_once

KEY_FILE = "store.key"
KEY_ENV = "TILLSYN_STORE_KEY_FILE"


class StoreKeyError(Exception):
    """The store key cannot be read, is readable by others, or is not the chain's key."""


@dataclass(frozen=True)
class StoreKey(Signer):
    private_key: Ed25519PrivateKey
    path: Path

    def public(self) -> dict[str, str]:
        """What the store publishes about its key (``/.well-known/tillsyn-store-key``)."""
        return {
            "algorithm": "ed25519",
            "key_id": self.key_id,
            "public_key": b64(self.public_key_raw),
        }


def key_path(state_dir: Path, given: Path | None = None) -> Path:
    """``given``, else ``$TILLSYN_STORE_KEY_FILE``, else ``<state_dir>/store.key``."""
    if given is not None:
        return given
    from_env = os.environ.get(KEY_ENV)
    return Path(from_env) if from_env else state_dir / KEY_FILE


def load_or_create(path: Path, create: bool = True, needed: str | None = None) -> StoreKey:
    """The key at ``path``, made there first when ``create`` and it does not exist.

    ``needed`` is the key id the store's chain is signed with, named in the error when
    the file is missing.
    """
    try:
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            publish_once(path, key_pem(Ed25519PrivateKey.generate()))
        mode = stat.S_IMODE(path.stat().st_mode)
        pem = path.read_bytes()
    except FileNotFoundError:
        wanted = f" (this store's chain is signed with {needed})" if needed else ""
        raise StoreKeyError(
            f"no store key at {path}{wanted}: give the store's key with --key-file "
            f"(or {KEY_ENV}) or --state-dir"
        ) from None
    except OSError as exc:
        raise StoreKeyError(f"cannot read the store key {path}: {exc.strerror or exc}") from exc
    if mode & 0o077 and not _is_mounted_secret(path):
        raise StoreKeyError(
            f"{path} is readable by others (mode {mode:04o}); run: chmod 600 {path}"
        )
    try:
        return StoreKey(key_from_pem(pem), path)
    except (ValueError, TypeError) as exc:
        raise StoreKeyError(f"{path} is not an Ed25519 private key in PEM: {exc}") from exc


def _is_mounted_secret(path: Path) -> bool:
    """Kubernetes mounts secrets through a ``..data`` symlink, group-readable with
    ``defaultMode`` 0440 at most under an fsGroup; that is the platform's own protection."""
    return (path.parent / "..data").is_symlink()


def check_matches(key: StoreKey, chain_key_id: str | None) -> None:
    """Refuse ``key`` when the store's chain is already signed with another key."""
    if chain_key_id is not None and chain_key_id != key.key_id:
        raise StoreKeyError(
            f"this store's chain is signed with {chain_key_id}, but {key.path} holds "
            f"{key.key_id}: give the store's key with --key-file (or {KEY_ENV})"
        )
