"""What the store's HTTP API takes and answers, as pydantic models: the published OpenAPI
document is generated from these, and schemathesis holds the responses to it
(tests/store/test_fuzz.py). The error responses every route shares are declared here
once: what the request guard answers before any route (400, 413, 414, 431), what a
bearer token can get (401, 403, 429), the database being down (503) and refused input
(422).
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from tillsyn.store import tokens

AWARE_TIME = "an RFC 3339 time with an offset, such as 2026-11-01T00:00:00Z"


def aware_time(value: Any) -> datetime:
    """``value`` as an instant, when it is :data:`AWARE_TIME`: not a number of seconds
    (which pydantic would read as Unix time), nor a time without an offset (which would
    be the server's local time); ValueError otherwise."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(AWARE_TIME)
    return moment


class EnrolRequest(BaseModel):
    agent_id: str = Field(
        description="the agent's UUID (agent.id in its state directory), lower-case and "
        "hyphenated: one spelling, so that one agent cannot enrol twice under two",
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    )
    public_key: str = Field(description="raw Ed25519 public key, base64")
    hostname: str = ""


class StorePublicKey(BaseModel):
    """The store's public key (``/.well-known/tillsyn-store-key``, and at enrolment)."""

    algorithm: Literal["ed25519"]
    key_id: str
    public_key: str = Field(description="raw Ed25519 public key, base64")


class EnrolResponse(BaseModel):
    agent_id: str
    token: str = Field(description="the agent's own credential; shown only here")
    store_key: StorePublicKey = Field(
        description="the store's public key, which signs receipts: keep it to check them"
    )
    enrolment: dict[str, Any] = Field(
        description="the store's signed chain entry vouching for this agent's key"
    )


class EvidenceBatch(BaseModel):
    records: list[dict[str, Any]] = Field(description="consecutive chain records, ending at a seal")


class IngestResponse(BaseModel):
    stored: int
    duplicates: int
    held_back: int = Field(description="records after the batch's last seal, not stored yet")
    rejected: int
    reason: str | None
    head_seq: int
    receipt: dict[str, Any] | None = Field(
        default=None,
        description="the store's signed acknowledgement of this agent's chain up to head_seq",
    )


class TokenRequest(BaseModel):
    role: tokens.Role
    expires_at: AwareDatetime | None = Field(default=None, description="RFC 3339, with an offset")
    note: str = ""

    @field_validator("expires_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        return None if value is None else aware_time(value)


class TokenResponse(BaseModel):
    token: str


#: A free-text query parameter: bounded, so that no filter value is larger than any
#: stored one can be.
Text = Annotated[str | None, Query(max_length=256)]


class Subject(BaseModel):
    """The newest result for one (agent, target, check, resource)."""

    agent_id: str
    target: dict[str, Any]
    check: str
    resource: dict[str, Any]
    controls: list[str]
    status: str
    state: Literal["fresh", "stale"]
    observed_at: str
    message: str
    excepted: bool


class Compliance(BaseModel):
    subject_count: int = Field(description="subjects mapped to the control or a sub-point")
    counted: int = Field(description="subjects that count (not skip or not_applicable)")
    compliant: int = Field(description="of those, a fresh pass")
    stale: int
    failing: int
    errors: int
    ratio: float | None = Field(description="compliant / counted; null when nothing counts")


class ControlSummary(Compliance):
    id: str
    title: str
    assessable: bool


class ControlDetail(Compliance):
    id: str
    title: str
    subjects: list[Subject]


class EvidencePage(BaseModel):
    records: list[dict[str, Any]]
    positions: list[int] = Field(description="where each record is stored in its agent's chain")
    next_cursor: str | None
    columns: list[dict[str, Any]] | None = Field(
        default=None, description="with columns=true: each record's stored searchable columns"
    )


class ChainPage(BaseModel):
    entries: list[dict[str, Any]] = Field(description="signed store chain entries, in order")
    next_after: int | None = Field(description="pass as `after` for the next page")


class ChainPoint(BaseModel):
    seq: int
    hash: str


class AgentRow(BaseModel):
    """One enrolled agent as the ``agents`` table holds it, with what the store has of it."""

    agent_id: str
    hostname: str
    key_id: str
    public_key: str
    enrolled_at: str
    last_seen_at: str | None
    agent_version: str | None
    head_seq: int = Field(description="the last chain position stored")
    head_hash: str
    records: int = Field(description="records the store holds")
    resumes_at: ChainPoint | None = Field(
        description="where the stored chain resumes after retention; null: at its start"
    )


class AlertRow(BaseModel):
    id: int
    at: str
    agent_id: str | None
    kind: str = Field(description="chain_break, bad_signature, ...")
    detail: str


class RetentionRow(BaseModel):
    """What one retention run removed from one agent's chain."""

    id: int
    at: str
    actor: str
    agent_id: str
    cutoff: str
    from_seq: int
    to_seq: int
    first_hash: str
    last_hash: str
    removed: int
    record_ids: list[str]
    chain_seq: int | None = Field(description="the signed store chain entry it derives from")


class AuditRow(BaseModel):
    id: int
    at: str
    actor: str = Field(description='a token id, or "anonymous"')
    action: str
    detail: dict[str, Any]
    chain_seq: int | None = Field(description="the signed store chain entry it derives from")


class Problem(BaseModel):
    """A refusal in the store's own words: from the request guard, a route, or the database."""

    detail: str
    code: str | None = Field(
        default=None,
        description="POST /api/v1/evidence only: what kind of refusal (such as chain_conflict)",
    )


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationProblem(BaseModel):
    """FastAPI's answer to a request that does not fit this document: one issue per field."""

    detail: list[ValidationIssue]


def refusal(
    description: str, model: Any = Problem, headers: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An error response for ``responses=``, with the headers it always carries."""
    response: dict[str, Any] = {"model": model, "description": description}
    if headers:
        response["headers"] = {name: {"required": True, **h} for name, h in headers.items()}
    return response


#: What the request guard (store/guard.py) answers before any route: every operation.
GUARDED: dict[int | str, dict[str, Any]] = {
    400: refusal("a control character or invalid UTF-8 in the path or query"),
    413: refusal("the request body exceeds the store's limit"),
    414: refusal("the request target is too long"),
    431: refusal("the request headers are too large"),
}
#: What every operation that reads the database can answer.
DATABASE: dict[int | str, dict[str, Any]] = {
    503: refusal("the store's database is unavailable; retry later"),
}
#: What every operation that takes a bearer token can answer (checking one needs the
#: database).
AUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: refusal(
        "no bearer token, or an invalid, expired or revoked one",
        headers={"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
    ),
    403: refusal("this token's role may not do this"),
    429: refusal(
        "too many failed authentications from this address; retry later",
        headers={
            "Retry-After": {"description": "seconds", "schema": {"type": "integer", "minimum": 1}}
        },
    ),
    **DATABASE,
}
#: An operation with parameters or a body: FastAPI's validation, or the store's own check.
INVALID: dict[int | str, dict[str, Any]] = {
    422: refusal(
        "the request does not fit this document, or a value in it is refused",
        ValidationProblem | Problem,
    ),
}
