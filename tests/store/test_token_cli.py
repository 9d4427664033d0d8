"""``tillsyn store token create|list|revoke``: what an admin sees and what a revoke does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.cli import tillsyn
from tillsyn.store import tokens
from tillsyn.store.database import open_engine, url_for
from tillsyn.store.schema import audit_log


def test_an_agent_token_is_listed_without_its_secret_then_revoked(tmp_path: Path) -> None:
    made = tillsyn(
        "store",
        "token",
        "create",
        "--role",
        "agent",
        "--note",
        "laptop-17",
        "--state-dir",
        str(tmp_path),
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    _, token_id, secret = token.split("_", 2)  # the secret itself may hold "_"

    listed = tillsyn("store", "token", "list", "--json", "--state-dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert secret not in listed.stdout
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["token_id"] == token_id
    assert row["role"] == "enrol"  # it may enrol one agent, nothing else
    assert row["state"] == "active" and row["note"] == "laptop-17"
    assert "secret_hash" not in row

    revoked = tillsyn("store", "token", "revoke", token_id, "--state-dir", str(tmp_path))
    assert revoked.returncode == 0, revoked.stderr
    table = tillsyn("store", "token", "list", "--state-dir", str(tmp_path))
    assert token_id in table.stdout and "revoked" in table.stdout

    engine = open_engine(url_for(None, tmp_path))
    with engine.connect() as connection:
        with pytest.raises(tokens.TokenError, match="revoked"):
            tokens.authenticate(connection, token)
        actions = [row.action for row in connection.execute(select(audit_log))]
    assert actions == ["token_created", "token_revoked"]

    again = tillsyn("store", "token", "revoke", token_id, "--state-dir", str(tmp_path))
    assert again.returncode == 1
    assert "no active token" in again.stderr


def test_revoking_an_unknown_token_names_it(tmp_path: Path) -> None:
    done = tillsyn("store", "token", "revoke", "0123abcd", "--state-dir", str(tmp_path))
    assert done.returncode == 1
    assert "'0123abcd'" in done.stderr
