"""Enrolment: a one-time token becomes an agent's own identity and credential.

The agent sends its id and Ed25519 public key with an ``enrol`` token. The store
records the key (every later seal is verified against it, never against the key a
seal carries), consumes the enrolment token, and returns an ``agent`` token bound to
that agent id: from then on the credential can only write that agent's evidence.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from tillsyn.agent.evidence import GENESIS_HASH, key_id, unb64
from tillsyn.store import tokens
from tillsyn.store.schema import agents


class EnrolmentError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def enrol(
    connection: Connection,
    principal: tokens.Principal,
    agent_id: str,
    public_key: str,
    hostname: str = "",
    now: datetime | None = None,
) -> str:
    """Register ``agent_id`` with ``public_key`` (base64 raw Ed25519); return its agent token."""
    if principal.role not in (tokens.Role.ENROL, tokens.Role.ADMIN):
        raise EnrolmentError(403, f"a {principal.role} token cannot enrol agents")
    try:
        uuid.UUID(agent_id)
        raw = unb64(public_key)
    except ValueError as exc:
        raise EnrolmentError(422, f"agent_id must be a UUID and public_key base64: {exc}") from exc
    if len(raw) != 32:
        raise EnrolmentError(422, "public_key must be a raw 32-byte Ed25519 key in base64")
    if connection.execute(select(agents.c.agent_id).where(agents.c.agent_id == agent_id)).first():
        raise EnrolmentError(409, f"agent {agent_id} is already enrolled")
    moment = now or datetime.now(UTC)
    connection.execute(
        agents.insert().values(
            agent_id=agent_id,
            public_key=public_key,
            key_id=key_id(raw),
            hostname=hostname[:255],
            enrolled_at=moment.isoformat(),
            head_seq=0,
            head_hash=GENESIS_HASH,
        )
    )
    if principal.role is tokens.Role.ENROL:
        tokens.revoke(connection, principal.token_id, moment)
    return tokens.create(
        connection,
        tokens.Role.AGENT,
        agent_id=agent_id,
        note=f"agent credential for {hostname or agent_id}",
        now=moment,
    )
