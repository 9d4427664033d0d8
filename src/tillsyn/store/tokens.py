"""Bearer tokens: random, shown once, stored only as a hash, revocable, expiring.

A token reads ``tls_<id>_<secret>``. The id finds the row; the secret is 32 random
bytes, so a plain SHA-256 is enough to store it (a slow password hash protects low-
entropy secrets, which these are not) and comparison is constant-time.

Checking a token and acting on it happen in separate transactions, so everything that
changes state re-checks its token inside its own transaction (:func:`still_valid`,
:func:`consume`): a token revoked, expired or spent in between acts no more.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

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
    _refuse_spent(row, (now or datetime.now(UTC)).isoformat())
    return Principal(row.token_id, Role(row.role), row.agent_id)


def _refuse_spent(row: Any, moment: str) -> None:
    if row.used_at:
        raise TokenError(
            f"enrolment token {row.token_id} was already used at {row.used_at} "
            f"(by agent {row.used_by})"
        )
    if row.revoked_at:
        raise TokenError(f"token {row.token_id} was revoked at {row.revoked_at}")
    if row.expires_at and row.expires_at <= moment:
        raise TokenError(f"token {row.token_id} expired at {row.expires_at}")


def still_valid(connection: Connection, principal: Principal, now: datetime) -> None:
    """Raise :class:`TokenError` unless ``principal``'s token is still good, *inside* the
    caller's write transaction.

    On PostgreSQL the row is read ``FOR SHARE``: a revocation (an ``UPDATE`` of that row)
    waits until this transaction ends, so once a revocation has answered, nothing that
    token started is still being written. On SQLite the caller's ``BEGIN IMMEDIATE``
    orders the two the same way.
    """
    row = connection.execute(
        select(tokens).where(tokens.c.token_id == principal.token_id).with_for_update(read=True)
    ).first()
    if row is None:
        raise TokenError(f"token {principal.token_id} no longer exists")
    _refuse_spent(row, now.isoformat())


def consume(connection: Connection, token_id: str, agent_id: str, now: datetime) -> None:
    """Spend a one-time enrolment token for ``agent_id``, atomically.

    One conditional ``UPDATE``: of any number of transactions racing for the same token,
    exactly one changes the row (PostgreSQL makes the others wait for it and then finds
    the row spent; SQLite runs them one after another); the others get
    :class:`TokenError`. The caller's transaction also inserts the agent, so a refused
    enrolment spends nothing.
    """
    moment = now.isoformat()
    result = connection.execute(
        tokens.update()
        .where(
            (tokens.c.token_id == token_id)
            & (tokens.c.role == str(Role.ENROL))
            & tokens.c.used_at.is_(None)
            & tokens.c.revoked_at.is_(None)
            & (tokens.c.expires_at.is_(None) | (tokens.c.expires_at > moment))
        )
        .values(used_at=moment, used_by=agent_id)
    )
    if result.rowcount != 1:
        row = connection.execute(select(tokens).where(tokens.c.token_id == token_id)).first()
        if row is not None:
            _refuse_spent(row, moment)
        raise TokenError(f"enrolment token {token_id} cannot be used")


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
    used_at: str | None
    used_by: str | None

    def state(self, now: str) -> str:
        """``used``, ``revoked``, ``expired`` or ``active`` at ``now`` (RFC 3339)."""
        if self.used_at:
            return "used"
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= now:
            return "expired"
        return "active"


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
            tokens.c.used_at,
            tokens.c.used_by,
        ).order_by(tokens.c.created_at, tokens.c.token_id)
    )
    return [TokenInfo(*row) for row in rows]


def revoke(connection: Connection, token_id: str, now: datetime | None = None) -> bool:
    """Revoke a token; False when it does not exist, was already revoked or was spent."""
    result = connection.execute(
        tokens.update()
        .where(
            (tokens.c.token_id == token_id)
            & tokens.c.revoked_at.is_(None)
            & tokens.c.used_at.is_(None)
        )
        .values(revoked_at=(now or datetime.now(UTC)).isoformat())
    )
    return bool(result.rowcount)
