"""Store commands: ``tillsyn serve``, ``tillsyn store token create|list|revoke``, retention."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tillsyn.agent.config import default_state_dir
from tillsyn.checks._spec import parse_duration
from tillsyn.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from tillsyn.store import audit, tokens
from tillsyn.store.database import open_engine, url_for, write_transaction
from tillsyn.store.schema import migrate


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tillsyn.agent.catalog import Catalog
    from tillsyn.store.app import create_app
    from tillsyn.store.asgi import DATABASE_ENV

    if bool(args.tls_cert) != bool(args.tls_key):
        print("tillsyn: --tls-cert and --tls-key go together", file=sys.stderr)
        return EXIT_USAGE
    url = url_for(args.database, args.state_dir or default_state_dir())
    try:
        engine = open_engine(url)
        version = migrate(engine)
    except SQLAlchemyError as exc:
        print(f"tillsyn: cannot open the store database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"tillsyn store: schema version {version} at {engine.url.render_as_string()}",
        file=sys.stderr,
    )
    certfile = str(args.tls_cert) if args.tls_cert else None
    keyfile = str(args.tls_key) if args.tls_key else None
    if args.workers > 1:
        engine.dispose()
        os.environ[DATABASE_ENV] = url
        uvicorn.run(
            "tillsyn.store.asgi:create",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level="info",
            proxy_headers=False,
            timeout_graceful_shutdown=10,  # then open keep-alive connections are closed
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
    else:
        uvicorn.run(
            create_app(engine, Catalog.load()),
            host=args.host,
            port=args.port,
            log_level="info",
            proxy_headers=False,
            timeout_graceful_shutdown=10,  # then open keep-alive connections are closed
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
    return EXIT_OK


def _migrated_engine(args: argparse.Namespace) -> Engine:
    """The store database the admin command names, its schema brought up to date."""
    engine = open_engine(url_for(args.database, args.state_dir or default_state_dir()))
    migrate(engine)
    return engine


def token_create(args: argparse.Namespace) -> int:
    """Print a new token straight from the database (for the first admin, or scripts)."""
    # "agent" is what an operator asks for; the token itself may only enrol one agent,
    # which then gets its own agent credential.
    role = "enrol" if args.role == "agent" else args.role
    try:
        expires = (
            datetime.now(UTC) + timedelta(seconds=parse_duration(args.expires))
            if args.expires
            else None
        )
    except ValueError as exc:
        print(f"tillsyn: --expires: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        engine = _migrated_engine(args)
        with engine.begin() as connection:
            token = tokens.create(connection, tokens.Role(role), expires_at=expires, note=args.note)
        audit.record(engine, "cli", "token_created", role=role, token_id=token.split("_")[1])
    except SQLAlchemyError as exc:
        print(f"tillsyn: cannot open the store database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(token)
    return EXIT_OK


def token_list(args: argparse.Namespace) -> int:
    """Show every token an admin manages; secrets and their hashes never leave the store."""
    try:
        engine = _migrated_engine(args)
        with engine.connect() as connection:
            found = tokens.listing(connection)
    except SQLAlchemyError as exc:
        print(f"tillsyn: cannot open the store database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    now = datetime.now(UTC).isoformat()
    for info in found:
        state = info.state(now)
        when = {"used": info.used_at, "revoked": info.revoked_at, "expired": info.expires_at}
        if args.json:
            print(json.dumps({**info.__dict__, "state": state}, sort_keys=True))
            continue
        shown = f"{state} {when.get(state) or ''}".strip()
        if state == "used":
            shown += f" by {info.used_by}"
        print(
            f"{info.token_id}  {info.role:<7}  {shown:<40}  "
            f"agent={info.agent_id or '-'}  expires={info.expires_at or 'never'}  {info.note}"
        )
    return EXIT_OK


def token_revoke(args: argparse.Namespace) -> int:
    """Revoke one token; an agent whose credential is revoked must enrol again."""
    try:
        engine = _migrated_engine(args)
        with write_transaction(engine) as connection:
            done = tokens.revoke(connection, args.token_id)
        if done:
            audit.record(engine, "cli", "token_revoked", token_id=args.token_id)
    except SQLAlchemyError as exc:
        print(f"tillsyn: cannot open the store database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not done:
        print(
            f"tillsyn: no active token {args.token_id!r} (unknown or already revoked)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"token {args.token_id} revoked")
    return EXIT_OK


def retention(args: argparse.Namespace) -> int:
    """Remove evidence older than --older-than, writing what was removed as a record."""
    from tillsyn.store import retention as retention_module

    try:
        cutoff = datetime.now(UTC) - timedelta(seconds=parse_duration(args.older_than))
    except ValueError as exc:
        print(f"tillsyn: --older-than: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        engine = _migrated_engine(args)
        with write_transaction(engine) as connection:
            removed = retention_module.apply(connection, cutoff, actor="cli")
        audit.record(
            engine,
            "cli",
            "retention",
            cutoff=cutoff.isoformat(),
            agents=len(removed),
            records=sum(r.count for r in removed),
        )
    except SQLAlchemyError as exc:
        print(f"tillsyn: retention failed, nothing removed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for item in removed:
        print(
            f"agent {item.agent_id}: removed records {item.from_seq}-{item.to_seq} ({item.count})"
        )
    print(f"{sum(r.count for r in removed)} records older than {cutoff.isoformat()} removed")
    return EXIT_OK


def store_admin(args: argparse.Namespace) -> int:
    if args.store_command == "retention":
        return retention(args)
    actions = {"list": token_list, "revoke": token_revoke, "create": token_create}
    return actions[args.token_command](args)
