"""The agent key file: standard PKCS#8 PEM, written and read without cryptography's
serialization package, yet byte-identical to what that package writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tillsyn.agent import identity
from tillsyn.agent.identity import IdentityError, key_from_pem, key_pem


def test_key_file_is_the_pem_cryptography_writes() -> None:
    for _ in range(20):
        key = Ed25519PrivateKey.generate()
        reference = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        assert key_pem(key) == reference
        again = key_from_pem(reference)
        assert again.private_bytes_raw() == key.private_bytes_raw()


def test_other_pem_forms_are_read_by_the_library() -> None:
    """A PEM with text around it (as tools that annotate keys write) is still a key."""
    key = Ed25519PrivateKey.generate()
    annotated = b"agent key, created by hand\n" + key_pem(key)
    assert key_from_pem(annotated).private_bytes_raw() == key.private_bytes_raw()


def test_a_key_of_another_kind_or_garbage_is_refused(tmp_path: Path) -> None:
    identity.load_or_create(tmp_path)
    ec = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file = tmp_path / identity.KEY_FILE
    key_file.write_bytes(ec)
    os.chmod(key_file, 0o600)
    with pytest.raises(IdentityError, match="not an Ed25519 key"):
        identity.load(tmp_path)
    key_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n")
    with pytest.raises(IdentityError, match="not a readable PEM private key"):
        identity.load(tmp_path)
