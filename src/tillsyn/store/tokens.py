"""Bearer tokens: random, shown once, stored only as a hash, revocable, expiring.

A token reads ``tls_<id>_<secret>``. The id finds the row; the secret is 32 random
bytes, so a plain SHA-256 is enough to store it (a slow password hash protects low-
entropy secrets, which these are not) and comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Connection, select

from tillsyn.store.schema import tokens

PREFIX = "tls"


class Role(StrEnum):
    ENROL = "enrol"  # one-time: may register one agent and nothing else
    AGENT = "agent"  # writes its own evidence, reads nothing of others
    AUDITOR = "auditor"  # reads everything, writes nothing
    ADMIN = "admin"  # manages tokens and agents


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for, after its token was checked."""

    token_id: str
    role: Role
    agent_id: str | None


class TokenError(Exception):
    """A token that is malformed, unknown, revoked or expired (the reason is kept for the log)."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    connection: Connection,
    role: Role,
    *,
    expires_at: datetime | None = None,
    agent_id: str | None = None,
    note: str = "",
    now: datetime | None = None,
) -> str:
    """A new token; the returned text is the only time the secret exists outside the caller."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    connection.execute(
        tokens.insert().values(
            token_id=token_id,
            secret_hash=_hash(secret),
            role=str(role),
            agent_id=agent_id,
            created_at=(now or datetime.now(UTC)).isoformat(),
            expires_at=expires_at.astimezone(UTC).isoformat() if expires_at else None,
            revoked_at=None,
            note=note,
        )
    )
    return f"{PREFIX}_{token_id}_{secret}"


def authenticate(connection: Connection, token: str, now: datetime | None = None) -> Principal:
    """The principal behind ``token``; :class:`TokenError` with the reason otherwise."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not token_id or not secret:
        raise TokenError("malformed token")
    row = connection.execute(select(tokens).where(tokens.c.token_id == token_id)).first()
    if row is None:
        raise TokenError(f"unknown token {token_id}")
    if not hmac.compare_digest(row.secret_hash, _hash(secret)):
        raise TokenError(f"wrong secret for token {token_id}")
    if row.revoked_at:
        raise TokenError(f"token {token_id} was revoked at {row.revoked_at}")
    moment = (now or datetime.now(UTC)).isoformat()
    if row.expires_at and row.expires_at <= moment:
        raise TokenError(f"token {token_id} expired at {row.expires_at}")
    return Principal(row.token_id, Role(row.role), row.agent_id)


@dataclass(frozen=True)
class TokenInfo:
    """What an admin may see of a token: never its secret or the secret's hash."""

    token_id: str
    role: str
    agent_id: str | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    note: str


def listing(connection: Connection) -> list[TokenInfo]:
    """Every token, oldest first, for ``tillsyn store token list``."""
    rows = connection.execute(
        select(
            tokens.c.token_id,
            tokens.c.role,
            tokens.c.agent_id,
            tokens.c.created_at,
            tokens.c.expires_at,
            tokens.c.revoked_at,
            tokens.c.note,
        ).order_by(tokens.c.created_at, tokens.c.token_id)
    )
    return [TokenInfo(*row) for row in rows]


def revoke(connection: Connection, token_id: str, now: datetime | None = None) -> bool:
    """Revoke a token; False when it does not exist or was already revoked."""
    result = connection.execute(
        tokens.update()
        .where((tokens.c.token_id == token_id) & tokens.c.revoked_at.is_(None))
        .values(revoked_at=(now or datetime.now(UTC)).isoformat())
    )
    return bool(result.rowcount)
