"""Enrolment: a one-time token becomes an agent's own identity and credential.

The agent sends its id and Ed25519 public key with an ``enrol`` token. The store
records the key (every later seal is verified against it, never against the key a
seal carries), consumes the enrolment token, and returns an ``agent`` token bound to
that agent id: from then on the credential can only write that agent's evidence.

Spending the token, inserting the agent and issuing its credential are one transaction
(the caller's, a :func:`~tillsyn.store.database.write_transaction`): a leaked token
enrols one agent however many requests race with it, and a refused enrolment (the
agent id is taken) leaves the token unspent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from tillsyn.agent.evidence import GENESIS_HASH, key_id, unb64
from tillsyn.agent.storetrust import ENROLMENT
from tillsyn.store import chain, tokens
from tillsyn.store.schema import agents
from tillsyn.store.storekey import StoreKey


class EnrolmentError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def enrol(
    connection: Connection,
    key: StoreKey,
    principal: tokens.Principal,
    agent_id: str,
    public_key: str,
    hostname: str = "",
    now: datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """Register ``agent_id`` with ``public_key`` (base64 raw Ed25519); return its agent
    token and the store's signed enrolment entry (what ``verify --store`` checks the
    ``agents`` table against)."""
    if principal.role not in (tokens.Role.ENROL, tokens.Role.ADMIN):
        raise EnrolmentError(403, f"a {principal.role} token cannot enrol agents")
    try:
        uuid.UUID(agent_id)
        raw = unb64(public_key)
    except ValueError as exc:
        raise EnrolmentError(422, f"agent_id must be a UUID and public_key base64: {exc}") from exc
    if len(raw) != 32:
        raise EnrolmentError(422, "public_key must be a raw 32-byte Ed25519 key in base64")
    moment = now or datetime.now(UTC)
    try:
        if principal.role is tokens.Role.ENROL:
            tokens.consume(connection, principal.token_id, agent_id, moment)
        else:  # an admin: revoked since the request was authenticated?
            tokens.still_valid(connection, principal, moment)
    except tokens.TokenError as exc:
        raise EnrolmentError(401, str(exc)) from exc
    taken = f"agent {agent_id} is already enrolled; an agent id enrols once"
    if connection.execute(select(agents.c.agent_id).where(agents.c.agent_id == agent_id)).first():
        raise EnrolmentError(409, taken)
    try:
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
    except IntegrityError as exc:  # PostgreSQL: another enrolment of this id committed first
        raise EnrolmentError(409, taken) from exc
    credential = tokens.create(
        connection,
        tokens.Role.AGENT,
        agent_id=agent_id,
        note=f"agent credential for {hostname or agent_id}",
        now=moment,
    )
    row = connection.execute(select(agents).where(agents.c.agent_id == agent_id)).one()
    entry = chain.append(
        connection, key, ENROLMENT, chain.enrolment_data(row), agent_id=agent_id, now=moment
    )
    return credential, entry
