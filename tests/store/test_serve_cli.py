"""`tillsyn serve` as a user starts it: migrations on start, HTTPS with a given certificate,
the OpenAPI document served, tokens made from the command line."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.cli import tillsyn
from tests.support.server import free_port
from tillsyn.store.schema import MIGRATIONS


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_serve_over_https_with_a_cli_made_token(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    state = tmp_path / "state"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillsyn.cli",
            "serve",
            "--state-dir",
            str(state),
            "--port",
            str(port),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"https://localhost:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(base + "/healthz", verify=str(cert), timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        made = tillsyn("store", "token", "create", "--role", "auditor", "--state-dir", str(state))
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        assert token.startswith("tls_")
        answer = requests.get(
            base + "/api/v1/agents",
            verify=str(cert),
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200 and answer.json() == []
        schema = requests.get(base + "/openapi.json", verify=str(cert), timeout=10).json()
        assert {"/api/v1/evidence", "/api/v1/enroll", "/api/v1/controls"} <= set(schema["paths"])
        plain = tillsyn("verify", "--store", base, "--token-file", str(tmp_path / "none"))
        assert plain.returncode != 0  # no such token file: refused, not a traceback
    finally:
        server.terminate()
        try:
            _, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, stderr = server.communicate()
            raise AssertionError(f"the store did not stop on SIGTERM: {stderr[-2000:]}") from None
    assert f"schema version {len(MIGRATIONS)}" in stderr


def test_serve_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    done = tillsyn("serve", "--state-dir", str(tmp_path), "--tls-cert", str(tmp_path / "c"))
    assert done.returncode == 2
    assert "--tls-cert and --tls-key go together" in done.stderr
