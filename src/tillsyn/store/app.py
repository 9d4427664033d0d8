"""The store's HTTP API (FastAPI). Every route names the roles that may call it.

Roles: an ``enrol`` token registers one agent; an ``agent`` credential writes and reads
only its own evidence; an ``auditor`` reads everything and writes nothing; an ``admin``
manages tokens and agents. Every authentication failure and admin action lands in the
audit log. Request bodies are capped (413 beyond), and so is the batch length.
"""

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import Engine, select
from sqlalchemy.exc import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from tillsyn import __version__
from tillsyn.agent import recordschema
from tillsyn.agent.catalog import Catalog, UnknownControlError
from tillsyn.agent.evidence import timestamp
from tillsyn.checks._result import Status
from tillsyn.store import (
    audit,
    chain,
    enrolment,
    ingest,
    metrics,
    queries,
    receipts,
    tokens,
)
from tillsyn.store.api_models import (
    AUTHENTICATED,
    AWARE_TIME,
    DATABASE,
    GUARDED,
    INVALID,
    AgentRow,
    AlertRow,
    AuditRow,
    ChainPage,
    ControlDetail,
    ControlSummary,
    EnrolRequest,
    EnrolResponse,
    EvidenceBatch,
    EvidencePage,
    IngestResponse,
    Problem,
    RetentionRow,
    StorePublicKey,
    Text,
    TokenRequest,
    TokenResponse,
    ValidationProblem,
    aware_time,
    refusal,
)
from tillsyn.store.database import write_transaction
from tillsyn.store.guard import RequestGuard
from tillsyn.store.schema import alerts, audit_log, retention_log
from tillsyn.store.storekey import StoreKey
from tillsyn.store.throttle import FailureThrottle

logger = logging.getLogger("tillsyn.store")


@dataclass(frozen=True)
class StoreSettings:
    max_request_bytes: int = 8 * 1024 * 1024
    max_batch: int = 5000
    page_limit: int = 1000
    public_metrics: bool = False  # /metrics without a token (a scraper on a private network)
    failure_limit: int = 30  # failed authentications per address and minute before 429
    failures_recorded: int = 5  # of those, audited one by one; the rest as one aggregate
    ingest_concurrency: int = 4  # pushes per worker process checked and stored at once

    def to_env(self) -> str:
        """These settings for worker processes, which get only their environment."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls, text: str) -> "StoreSettings":
        return cls(**json.loads(text))


async def _pushed_records(request: Request) -> list[Any]:
    """The records of a push, parsed with orjson: a compiled parser, and no model copying
    every record (FastAPI's json.loads and pydantic's pass over ``list[dict]`` were a
    fifth of a push's time in bench/store_ingest.py). The record schema checks each one
    at ingest; here only the envelope is checked."""
    raw = await request.body()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(422, f"the body is not JSON: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("records"), list):
        raise HTTPException(422, 'the body must be a JSON object {"records": [...]}')
    records: list[Any] = parsed["records"]
    return records


def create_app(
    engine: Engine, catalog: Catalog, key: StoreKey, settings: StoreSettings | None = None
) -> Any:
    """The ASGI application over ``engine`` (migrated by the caller), signing with ``key``."""
    conf = settings or StoreSettings()
    registry, ingested = metrics.build_registry(engine, catalog)
    throttle = FailureThrottle(conf.failure_limit, conf.failures_recorded)
    receipt_writer = receipts.ReceiptWriter(engine, key)
    ingest_slots = threading.BoundedSemaphore(conf.ingest_concurrency)
    app = FastAPI(
        title="tillsyn store",
        version=__version__,
        description="Tamper-evident compliance evidence from tillsyn agents.",
        responses=GUARDED,
    )

    @app.exception_handler(SQLAlchemyError)
    def database_error(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        """A database that is down, full or read-only is the store's problem, not the
        client's: 503, so agents keep their outbox and retry later. Anything else the
        database refuses is a value no validation caught: never reported as an outage."""
        if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
            logger.error("database unavailable: %s", exc)
            return JSONResponse(
                {
                    "detail": f"the store's database is unavailable ({type(exc).__name__}); "
                    "retry later"
                },
                status_code=503,
            )
        if isinstance(exc, DataError) or isinstance(getattr(exc, "orig", None), UnicodeEncodeError):
            logger.warning("a request value the database refused: %s", exc)
            return JSONResponse(
                {"detail": "a value in this request cannot be used by the store's database"},
                status_code=422,
            )
        if isinstance(exc, IntegrityError):
            # Every constraint a request can break is handled where it is written; one that
            # breaks anyway means the tables disagree (the store chain's head row edited,
            # say). Nothing is lost: agents keep their outbox and retry.
            logger.error("a write broke a database constraint: %s", exc)
            return JSONResponse(
                {
                    "detail": "the store's database refused a write it should take (its "
                    "tables disagree: run tillsyn verify --store); retry later"
                },
                status_code=503,
            )
        logger.exception("database error", exc_info=exc)
        return JSONResponse({"detail": "internal error in the store"}, status_code=500)

    @app.exception_handler(UnicodeEncodeError)
    def unencodable_text(_request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        """JSON may escape a lone surrogate (\\ud800); no database can store one."""
        return JSONResponse(
            {"detail": f"a text in this request holds a lone surrogate ({exc.reason})"},
            status_code=422,
        )

    def principal(request: Request) -> tokens.Principal:
        now = time.time()
        for aggregate in throttle.due(now):
            audit.record(
                engine,
                key,
                "anonymous",
                "auth_failed_repeated",
                client=aggregate.client,
                failures=aggregate.failures,
                minute_from=datetime.fromtimestamp(aggregate.window_start, UTC).isoformat(),
                paths=list(aggregate.paths),
            )
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        client = request.client.host if request.client else "?"
        if scheme.lower() != "bearer" or not token.strip():
            raise failed(client, request.url.path, "no bearer token", now)
        try:
            with engine.begin() as connection:
                return tokens.authenticate(connection, token.strip())
        except tokens.TokenError as exc:
            raise failed(client, request.url.path, str(exc), now) from exc

    def failed(client: str, path: str, reason: str, now: float) -> HTTPException:
        """401, audited; 429 once an address fails too often (see store/throttle.py)."""
        decision = throttle.failure(client, path, now)
        if decision.record:
            audit.record(
                engine, key, "anonymous", "auth_failed", path=path, client=client, reason=reason
            )
        if decision.limited:
            return HTTPException(
                429,
                "too many failed authentications from this address; retry later",
                headers={"Retry-After": str(decision.retry_after)},
            )
        return HTTPException(
            401,
            "a bearer token is required"
            if reason == "no bearer token"
            else "invalid, expired or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )

    Who = Annotated[tokens.Principal, Depends(principal)]  # noqa: N806 - a type alias

    def no_longer_valid(who: tokens.Principal, exc: tokens.TokenError) -> HTTPException:
        """The 401 for a token revoked or expired between authentication and the write
        transaction's own re-check (audited after that transaction has ended: on SQLite
        the audit write would otherwise wait for the lock the transaction holds)."""
        audit.record(engine, key, who.token_id, "auth_failed", reason=str(exc), stage="write")
        return HTTPException(
            401, "invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"}
        )

    def require(who: tokens.Principal, *roles: tokens.Role) -> None:
        if who.role not in roles:
            audit.record(
                engine,
                key,
                who.token_id,
                "forbidden",
                role=str(who.role),
                needed=[str(r) for r in roles],
            )
            raise HTTPException(403, f"a {who.role} token may not do this")

    @app.post(
        "/api/v1/enroll",
        response_model=EnrolResponse,
        tags=["agents"],
        responses={
            **AUTHENTICATED,
            **INVALID,
            409: refusal("this agent id is already enrolled"),
        },
    )
    def enroll(body: EnrolRequest, who: Who) -> EnrolResponse:
        try:
            with write_transaction(engine) as connection:
                token, entry = enrolment.enrol(
                    connection, key, who, body.agent_id, body.public_key, body.hostname
                )
        except enrolment.EnrolmentError as exc:
            audit.record(
                engine,
                key,
                who.token_id,
                "enrol_refused",
                agent_id=body.agent_id[:64],
                status=exc.status,
                reason=exc.reason,
            )
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            raise HTTPException(exc.status, exc.reason, headers=headers) from exc
        audit.record(engine, key, who.token_id, "agent_enrolled", agent_id=body.agent_id)
        return EnrolResponse(
            agent_id=body.agent_id,
            token=token,
            store_key=StorePublicKey.model_validate(key.public()),
            enrolment=entry,
        )

    @app.post(
        "/api/v1/evidence",
        response_model=IngestResponse,
        tags=["evidence"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": EvidenceBatch.model_json_schema()}},
            }
        },
        responses={
            **AUTHENTICATED,
            413: refusal("body or batch too large"),
            409: refusal("the batch rewrites stored evidence"),
            422: refusal(
                "malformed, or refused by the chain check (a refused record: IngestResponse)",
                ValidationProblem | Problem | IngestResponse,
            ),
        },
    )
    def push(who: Who, records: Annotated[list[Any], Depends(_pushed_records)]) -> Any:
        require(who, tokens.Role.AGENT)
        if len(records) > conf.max_batch:
            raise HTTPException(413, f"a batch holds at most {conf.max_batch} records")
        if who.agent_id is None:  # agent tokens are bound at enrolment; never true
            raise HTTPException(403, "this agent token is bound to no agent")
        try:
            moment = datetime.now(UTC)
            result = ingest.store_batch(
                engine,
                receipt_writer,
                who.agent_id,
                records,
                catalog,
                moment,
                within=lambda connection: tokens.still_valid(connection, who, moment),
                slots=ingest_slots,
            )
        except tokens.TokenError as exc:
            raise no_longer_valid(who, exc) from exc
        except TimeoutError as exc:  # the batch is stored; its replay gets the receipt
            raise HTTPException(
                503, "the store could not sign a receipt in time; retry later"
            ) from exc
        except ingest.IngestError as exc:
            if exc.alert:
                with engine.begin() as connection:
                    ingest.record_alert(connection, who.agent_id, *exc.alert)
            if exc.status == 403:
                audit.record(engine, key, who.token_id, "forbidden", reason=exc.reason)
            code = exc.alert[0] if exc.alert else "refused"
            return JSONResponse({"detail": exc.reason, "code": code}, status_code=exc.status)
        ingested.inc(result.stored)
        if result.alerts:
            with engine.begin() as connection:
                for kind, detail in result.alerts:
                    ingest.record_alert(connection, who.agent_id, kind, detail)
        payload = IngestResponse(
            stored=result.stored,
            duplicates=result.duplicates,
            held_back=result.held_back,
            rejected=result.rejected,
            reason=result.reason,
            head_seq=result.head_seq,
            receipt=result.receipt,
        )
        return JSONResponse(payload.model_dump(), status_code=422 if result.rejected else 200)

    @app.get(
        "/api/v1/evidence",
        response_model=EvidencePage,
        tags=["evidence"],
        responses={**AUTHENTICATED, **INVALID},
    )
    def read_evidence(
        who: Who,
        control: Text = None,
        check: Text = None,
        agent: Text = None,
        target: Text = None,
        status: Status | None = None,
        since: Annotated[str | None, Query(max_length=64, description="RFC 3339")] = None,
        until: Annotated[str | None, Query(max_length=64, description="RFC 3339")] = None,
        cursor: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        columns: Annotated[
            bool, Query(description="also the stored searchable columns (for verify)")
        ] = False,
    ) -> EvidencePage:
        require(who, tokens.Role.AGENT, tokens.Role.AUDITOR, tokens.Role.ADMIN)
        if who.role is tokens.Role.AGENT:
            if agent and agent != who.agent_id:
                raise HTTPException(403, "an agent credential reads only its own evidence")
            agent = who.agent_id
        flt = queries.EvidenceFilter(
            _with_subpoints(catalog, _control(catalog, control)),
            check,
            agent,
            target,
            status,
            _instant(since, "since"),
            _instant(until, "until"),
        )
        try:
            with engine.connect() as connection:
                rows, following = queries.list_evidence(
                    connection,
                    flt,
                    limit=min(limit, conf.page_limit),
                    cursor=cursor,
                    with_columns=columns,
                )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return EvidencePage(
            records=[r["record"] for r in rows],
            positions=[r["position"] for r in rows],
            next_cursor=following,
            columns=[{**r["columns"], "controls": r["controls"]} for r in rows]
            if columns
            else None,
        )

    @app.get(
        "/api/v1/controls",
        response_model=list[ControlSummary],
        tags=["controls"],
        responses={**AUTHENTICATED, **INVALID},
    )
    def controls(who: Who, framework: Text = None) -> list[dict[str, Any]]:
        require(who, tokens.Role.AUDITOR, tokens.Role.ADMIN)
        with engine.connect() as connection:
            subjects = queries.latest_per_subject(connection)
        by_control: dict[str, list[dict[str, Any]]] = {}
        for subject in subjects:
            for control in _rolled_up(catalog, subject["controls"]):
                by_control.setdefault(control, []).append(subject)
        rows = []
        for entry in catalog.controls.values():
            if framework and entry.framework != framework:
                continue
            found = by_control.get(entry.id, [])
            rows.append(
                {
                    "id": entry.id,
                    "title": entry.title,
                    "assessable": entry.assessable,
                    **queries.compliance(found),
                }
            )
        return rows

    @app.get(
        "/api/v1/controls/{control_id:path}",
        response_model=ControlDetail,
        tags=["controls"],
        responses={**AUTHENTICATED, **INVALID, 404: refusal("no control id given")},
    )
    def control_detail(control_id: str, who: Who) -> dict[str, Any]:
        """One control: the newest result of every subject mapped to it or a sub-point."""
        require(who, tokens.Role.AUDITOR, tokens.Role.ADMIN)
        canonical = _control(catalog, control_id)
        if canonical is None:
            raise HTTPException(404, "name a control, as in /api/v1/controls/iso27001:2022/A.8.13")
        with engine.connect() as connection:
            subjects = queries.latest_per_subject(connection, _with_subpoints(catalog, canonical))
        return {
            "id": canonical,
            "title": catalog[canonical].title,
            **queries.compliance(subjects),
            "subjects": subjects,
        }

    @app.get(
        "/api/v1/agents", response_model=list[AgentRow], tags=["agents"], responses=AUTHENTICATED
    )
    def list_agents(who: Who) -> list[dict[str, Any]]:
        require(who, tokens.Role.AUDITOR, tokens.Role.ADMIN)
        with engine.connect() as connection:
            return queries.list_agents(connection)

    @app.post(
        "/api/v1/tokens",
        response_model=TokenResponse,
        tags=["admin"],
        responses={**AUTHENTICATED, **INVALID},
    )
    def create_token(body: TokenRequest, who: Who) -> TokenResponse:
        require(who, tokens.Role.ADMIN)
        if body.role is tokens.Role.AGENT:
            raise HTTPException(422, "agent credentials are issued by enrolment")
        try:
            with write_transaction(engine) as connection:
                tokens.still_valid(connection, who, datetime.now(UTC))
                token = tokens.create(
                    connection, body.role, expires_at=body.expires_at, note=body.note
                )
        except tokens.TokenError as exc:
            raise no_longer_valid(who, exc) from exc
        audit.record(
            engine,
            key,
            who.token_id,
            "token_created",
            role=str(body.role),
            token_id=token.split("_")[1],
        )
        return TokenResponse(token=token)

    @app.delete(
        "/api/v1/tokens/{token_id}",
        status_code=204,
        tags=["admin"],
        responses={
            **AUTHENTICATED,
            **INVALID,
            404: refusal("no active token with this id"),
        },
    )
    def revoke_token(token_id: str, who: Who) -> None:
        require(who, tokens.Role.ADMIN)
        try:
            with write_transaction(engine) as connection:
                tokens.still_valid(connection, who, datetime.now(UTC))
                if not tokens.revoke(connection, token_id):
                    raise HTTPException(404, f"no active token {token_id}")
        except tokens.TokenError as exc:
            raise no_longer_valid(who, exc) from exc
        audit.record(engine, key, who.token_id, "token_revoked", token_id=token_id)

    @app.get(
        "/api/v1/alerts", response_model=list[AlertRow], tags=["admin"], responses=AUTHENTICATED
    )
    def list_alerts(who: Who) -> list[dict[str, Any]]:
        require(who, tokens.Role.AUDITOR, tokens.Role.ADMIN)
        with engine.connect() as connection:
            return [
                dict(row._mapping)
                for row in connection.execute(
                    select(alerts).order_by(alerts.c.id.desc()).limit(1000)
                )
            ]

    @app.get("/.well-known/tillsyn-store-key", response_model=StorePublicKey, tags=["trust"])
    def store_public_key() -> dict[str, str]:
        """The store's public key (receipts and its chain are signed with it). Fetching it
        from the store itself is trust on first use: pin it out of band
        (`tillsyn store key`, `tillsyn store export-keys`) to catch a rewritten store."""
        return key.public()

    @app.get("/api/v1/schema/evidence", tags=["evidence"])
    def evidence_schema() -> dict[str, Any]:
        """The JSON Schema every pushed record must meet (`tillsyn.evidence/v1`): the
        same document the agent's writer takes its limits from. Public, like the key."""
        return recordschema.document()

    @app.get(
        "/api/v1/store/chain",
        response_model=ChainPage,
        tags=["trust"],
        responses={**AUTHENTICATED, **INVALID},
    )
    def store_chain(
        who: Who,
        after: Annotated[int, Query(ge=0, le=2**53)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
        agent: Text = None,
    ) -> ChainPage:
        """The store's signed chain: enrolments, receipts, retention, audit events. An
        agent credential reads only the entries about its own agent."""
        require(who, tokens.Role.AGENT, tokens.Role.AUDITOR, tokens.Role.ADMIN)
        if who.role is tokens.Role.AGENT:
            agent = who.agent_id
        with engine.connect() as connection:
            found = chain.entries(connection, after=after, limit=limit + 1, agent_id=agent)
        page = found[:limit]
        return ChainPage(entries=page, next_after=page[-1]["seq"] if len(found) > limit else None)

    @app.get(
        "/api/v1/retention",
        response_model=list[RetentionRow],
        tags=["trust"],
        responses=AUTHENTICATED,
    )
    def retention_rows(who: Who) -> list[dict[str, Any]]:
        """What retention removed, per agent, as the store's tables hold it."""
        require(who, tokens.Role.AUDITOR, tokens.Role.ADMIN)
        with engine.connect() as connection:
            return [
                {**row._mapping, "record_ids": json.loads(row.record_ids)}
                for row in connection.execute(select(retention_log).order_by(retention_log.c.id))
            ]

    @app.get(
        "/api/v1/audit",
        response_model=list[AuditRow],
        tags=["admin"],
        responses={**AUTHENTICATED, **INVALID},
    )
    def audit_rows(
        who: Who,
        after_id: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # audit_log.id: INTEGER
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    ) -> list[dict[str, Any]]:
        """The audit log, oldest first, each row with the chain entry it derives from."""
        require(who, tokens.Role.AUDITOR, tokens.Role.ADMIN)
        with engine.connect() as connection:
            return [
                {**row._mapping, "detail": json.loads(row.detail)}
                for row in connection.execute(
                    select(audit_log)
                    .where(audit_log.c.id > after_id)
                    .order_by(audit_log.c.id)
                    .limit(limit)
                )
            ]

    @app.get(
        "/metrics",
        response_class=Response,  # documented below: text, and JSON only for refusals
        tags=["metrics"],
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **(DATABASE if conf.public_metrics else AUTHENTICATED),
        },
    )
    def prometheus(request: Request) -> PlainTextResponse:
        if not conf.public_metrics:
            require(principal(request), tokens.Role.AUDITOR, tokens.Role.ADMIN)
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", response_class=PlainTextResponse, include_in_schema=False)
    def healthz() -> str:
        return f"ok {datetime.now(UTC).isoformat()}\n"

    return RequestGuard(app, conf.max_request_bytes)


def _with_subpoints(catalog: Catalog, control: str | None) -> tuple[str, ...]:
    """A control and every sub-point under it: what a query on it must find."""
    return (control, *catalog.descendants(control)) if control else ()


def _instant(text: str | None, name: str) -> str | None:
    """``text`` (RFC 3339 with an offset) as the store writes times, so that comparing
    the stored text compares instants; a value that is not one is the client's 422."""
    if not text:
        return None
    try:
        moment = aware_time(text)
    except ValueError as exc:
        raise HTTPException(422, f"{name} must be {AWARE_TIME}") from exc
    return timestamp(moment.astimezone(UTC))


def _control(catalog: Catalog, text: str | None) -> str | None:
    if not text:
        return None
    try:
        return catalog.parse(text)
    except UnknownControlError as exc:
        raise HTTPException(422, str(exc)) from exc


def _rolled_up(catalog: Catalog, controls: list[str]) -> set[str]:
    """The controls a record names, with every heading they roll up to."""
    out: set[str] = set()
    for control in controls:
        if control in catalog:
            out.add(control)
            out.update(catalog.ancestors(control))
    return out
