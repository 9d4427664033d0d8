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
from tillsyn.store import audit, chain, storekey, tokens
from tillsyn.store.database import open_engine, url_for, write_transaction
from tillsyn.store.schema import migrate
from tillsyn.store.storekey import KEY_ENV, StoreKey, StoreKeyError

PINNED_KEYS_SCHEMA = "tillsyn.pinned-keys/v1"


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tillsyn.agent.catalog import Catalog
    from tillsyn.store.app import StoreSettings, create_app
    from tillsyn.store.asgi import DATABASE_ENV, SETTINGS_ENV

    if bool(args.tls_cert) != bool(args.tls_key):
        print("tillsyn: --tls-cert and --tls-key go together", file=sys.stderr)
        return EXIT_USAGE
    url = url_for(args.database, args.state_dir or default_state_dir())
    try:
        engine, key, version = _open_store(args, url)
    except SQLAlchemyError as exc:
        print(f"tillsyn: cannot open the store database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except StoreKeyError as exc:
        print(f"tillsyn: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"tillsyn store: schema version {version} at {engine.url.render_as_string()}; "
        f"signing with {key.key_id} ({key.path})",
        file=sys.stderr,
    )
    if args.auth_failure_limit < 1 or args.auth_failures_audited < 0:
        print(
            "tillsyn: --auth-failure-limit must be at least 1 and "
            "--auth-failures-audited at least 0",
            file=sys.stderr,
        )
        return EXIT_USAGE
    settings = StoreSettings(
        failure_limit=args.auth_failure_limit, failures_recorded=args.auth_failures_audited
    )
    certfile = str(args.tls_cert) if args.tls_cert else None
    keyfile = str(args.tls_key) if args.tls_key else None
    if args.workers > 1:
        engine.dispose()
        os.environ[DATABASE_ENV] = url
        os.environ[KEY_ENV] = str(key.path)
        os.environ[SETTINGS_ENV] = settings.to_env()
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
            create_app(engine, Catalog.load(), key, settings),
            host=args.host,
            port=args.port,
            log_level="info",
            proxy_headers=False,
            timeout_graceful_shutdown=10,  # then open keep-alive connections are closed
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
    return EXIT_OK


def _open_store(args: argparse.Namespace, url: str) -> tuple[Engine, StoreKey, int]:
    """The store's database (schema brought up to date) and its signing key.

    The key is made on first use; a key other than the one the store's chain is signed
    with is refused. What a store made before it had a key holds is vouched for once.
    """
    engine = open_engine(url)
    version = migrate(engine)
    state_dir = args.state_dir or default_state_dir()
    path = storekey.key_path(state_dir, getattr(args, "key_file", None))
    with engine.connect() as connection:
        signed_with = chain.signing_key_id(connection)
    # A store whose chain is already signed never gets a fresh key by accident: a
    # missing file is an error naming the key the chain needs.
    key = storekey.load_or_create(path, create=signed_with is None, needed=signed_with)
    with write_transaction(engine) as connection:
        storekey.check_matches(key, chain.signing_key_id(connection))
        chain.adopt_unsigned(connection, key)
    return engine, key, version


def _admin_store(args: argparse.Namespace) -> tuple[Engine, StoreKey]:
    """The store an admin command names; :class:`SQLAlchemyError` or StoreKeyError."""
    engine, key, _ = _open_store(
        args, url_for(args.database, args.state_dir or default_state_dir())
    )
    return engine, key


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
        engine, key = _admin_store(args)
        with write_transaction(engine) as connection:
            token = tokens.create(connection, tokens.Role(role), expires_at=expires, note=args.note)
            audit.append(
                connection, key, "cli", "token_created", role=role, token_id=token.split("_")[1]
            )
    except (SQLAlchemyError, StoreKeyError) as exc:
        print(f"tillsyn: cannot open the store database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(token)
    return EXIT_OK


def token_list(args: argparse.Namespace) -> int:
    """Show every token an admin manages; secrets and their hashes never leave the store."""
    try:
        engine, _ = _admin_store(args)
        with engine.connect() as connection:
            found = tokens.listing(connection)
    except (SQLAlchemyError, StoreKeyError) as exc:
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
        engine, key = _admin_store(args)
        with write_transaction(engine) as connection:
            done = tokens.revoke(connection, args.token_id)
            if done:
                audit.append(connection, key, "cli", "token_revoked", token_id=args.token_id)
    except (SQLAlchemyError, StoreKeyError) as exc:
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
        engine, key = _admin_store(args)
        with write_transaction(engine) as connection:
            removed = retention_module.apply(connection, key, cutoff, actor="cli")
            audit.append(
                connection,
                key,
                "cli",
                "retention",
                cutoff=cutoff.isoformat(),
                agents=len(removed),
                records=sum(r.count for r in removed),
            )
    except (SQLAlchemyError, StoreKeyError) as exc:
        print(f"tillsyn: retention failed, nothing removed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for item in removed:
        print(
            f"agent {item.agent_id}: removed records {item.from_seq}-{item.to_seq} ({item.count})"
        )
    print(f"{sum(r.count for r in removed)} records older than {cutoff.isoformat()} removed")
    return EXIT_OK


def show_key(args: argparse.Namespace) -> int:
    """The store's public key, for agents and auditors to pin out of band."""
    try:
        _, key = _admin_store(args)
    except (SQLAlchemyError, StoreKeyError) as exc:
        print(f"tillsyn: {exc}", file=sys.stderr)
        return EXIT_FAILED
    public = key.public()
    if args.json:
        print(json.dumps(public, sort_keys=True))
    else:
        print(f"{public['key_id']}  {public['public_key']}  ({key.path})")
    return EXIT_OK


def export_keys(args: argparse.Namespace) -> int:
    """Every agent's enrolled key as the store's signed enrolment entries vouch for it.

    An auditor keeps this file away from the store; ``tillsyn verify --store URL --pin
    FILE`` then catches a key substituted later, even by someone who also holds the
    store's key. An agent whose ``agents`` row disagrees with its signed enrolment is
    refused here rather than pinned.
    """
    from tillsyn.agent.storetrust import ENROLMENT, StorePublicKey, check_entry
    from tillsyn.store.queries import list_agents

    try:
        engine, key = _admin_store(args)
        with engine.connect() as connection:
            listed = list_agents(connection)
            entries = {
                a["agent_id"]: chain.latest(connection, ENROLMENT, a["agent_id"]) for a in listed
            }
    except (SQLAlchemyError, StoreKeyError) as exc:
        print(f"tillsyn: {exc}", file=sys.stderr)
        return EXIT_FAILED
    public = StorePublicKey(key.public_key_raw)
    pinned, bad = [], 0
    for agent in listed:
        entry = entries[agent["agent_id"]]
        problem = "no signed enrolment" if entry is None else check_entry(entry, public)
        if (
            problem is None
            and entry is not None
            and entry["data"]["public_key"] != agent["public_key"]
        ):
            problem = "its key differs from the one its signed enrolment names"
        if problem:
            print(f"tillsyn: agent {agent['agent_id']} not exported: {problem}", file=sys.stderr)
            bad += 1
            continue
        pinned.append(
            {
                "agent_id": agent["agent_id"],
                "key_id": agent["key_id"],
                "public_key": agent["public_key"],
                "enrolled_at": agent["enrolled_at"],
                "hostname": agent["hostname"],
            }
        )
    document = {
        "schema": PINNED_KEYS_SCHEMA,
        "exported_at": datetime.now(UTC).isoformat(),
        "store_key": key.public(),
        "agents": pinned,
    }
    print(json.dumps(document, indent=2, sort_keys=True))
    return EXIT_FAILED if bad else EXIT_OK


def init_db(args: argparse.Namespace) -> int:
    """Create or migrate the store's schema as its owner, and on PostgreSQL give the
    application role ``tillsyn serve`` logs in as exactly what it needs (store/roles.py)."""
    from tillsyn.store.roles import RoleError, grant_application_role

    password = None
    if args.app_password_file:
        try:
            password = args.app_password_file.read_text().strip()
        except OSError as exc:
            print(f"tillsyn: --app-password-file: {exc}", file=sys.stderr)
            return EXIT_USAGE
    url = url_for(args.database, args.state_dir or default_state_dir())
    try:
        engine = open_engine(url)
        version = migrate(engine)
        if engine.dialect.name != "postgresql":
            print(
                f"store schema version {version} at {engine.url.render_as_string()}\n"
                "SQLite has no database roles: whoever can write this file can change it. "
                "Keep the store's key (store.key) and the agents' receipts elsewhere; "
                "`tillsyn verify --store` with them detects any change."
            )
            return EXIT_OK
        with engine.begin() as connection:
            granted = grant_application_role(connection, args.app_role, password)
    except RoleError as exc:
        print(f"tillsyn: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SQLAlchemyError as exc:
        print(f"tillsyn: cannot set up the store database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"store schema version {version} at {engine.url.render_as_string()}")
    print(f"application role {args.app_role} may:")
    for line in granted:
        print(f"  {line}")
    print(
        f"run `tillsyn serve --database postgresql://{args.app_role}@HOST/DB`; run "
        "`tillsyn store retention` and later `tillsyn store init-db` as the owner"
    )
    return EXIT_OK


def store_admin(args: argparse.Namespace) -> int:
    if args.store_command == "init-db":
        return init_db(args)
    if args.store_command == "retention":
        return retention(args)
    if args.store_command == "key":
        return show_key(args)
    if args.store_command == "export-keys":
        return export_keys(args)
    actions = {"list": token_list, "revoke": token_revoke, "create": token_create}
    return actions[args.token_command](args)
