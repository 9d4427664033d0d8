"""The ``tillsyn`` command line: parses arguments and hands each command to its package.

This module is the composition root: agent commands live in ``tillsyn.agent.commands``,
store commands in ``tillsyn.store.commands``; both are imported only when used, so a
laptop agent never loads the web stack. Exit codes: see :mod:`tillsyn.exitcodes`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tillsyn import __version__
from tillsyn.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

#: command -> "module:function" that runs it
HANDLERS = {
    "run": "tillsyn.agent.commands:run",
    "checks": "tillsyn.agent.commands:checks",
    "controls": "tillsyn.agent.commands:controls",
    "verify": "tillsyn.agent.commands:verify",
    "config": "tillsyn.agent.commands:config_check",
    "enroll": "tillsyn.agent.commands:enroll",
    "push": "tillsyn.agent.commands:push",
    "daemon": "tillsyn.agent.commands:daemon",
    "status": "tillsyn.agent.commands:status",
    "serve": "tillsyn.store.commands:serve",
    "store": "tillsyn.store.commands:store_admin",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tillsyn",
        description="Continuous technical control monitoring "
        "(ISO/IEC 27001:2022 Annex A, NIS2 (EU) 2024/2690).",
    )
    parser.add_argument("--version", action="version", version=f"tillsyn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run every enabled check once against this host")
    run.add_argument("--json", action="store_true", help="one JSON evidence record per line")
    run.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="ID",
        help="run only this check (repeatable)",
    )
    run.add_argument(
        "--family",
        action="append",
        default=[],
        metavar="NAME",
        help="run only checks of this family (repeatable)",
    )
    run.add_argument(
        "-v",
        "--details",
        action="store_true",
        help="also every result, resource by resource (`tillsyn -v run` is --verbose)",
    )
    run.add_argument(
        "--push",
        action="store_true",
        help="then push the evidence to the store this agent is enrolled with",
    )
    _common(run)

    checks = commands.add_parser("checks", help="list installed checks and their parameters")
    checks.add_argument("--json", action="store_true")

    controls = commands.add_parser("controls", help="list controls and which checks evidence them")
    controls.add_argument("--framework", choices=["iso27001:2022", "nis2"])
    controls.add_argument("--json", action="store_true")

    verify = commands.add_parser("verify", help="recompute evidence chains and seals")
    verify.add_argument(
        "--strict", action="store_true", help="also fail when the newest records are not sealed yet"
    )
    verify.add_argument(
        "--store", metavar="URL", help="verify every chain in this store instead of the local one"
    )
    verify.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="auditor or admin token for --store (default: $TILLSYN_TOKEN)",
    )
    verify.add_argument(
        "--pin",
        type=Path,
        metavar="FILE",
        help="with --store: keys from `tillsyn store export-keys`, kept away from the store",
    )
    verify.add_argument(
        "--receipts",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="with --store: an agent's receipts.jsonl, or a folder searched for them "
        "(repeatable): the store must still hold what it acknowledged",
    )
    verify.add_argument(
        "--against-store",
        action="store_true",
        help="on an agent: prove the store it is enrolled with still holds everything it "
        "acknowledged (its signed receipts)",
    )
    verify.add_argument("--ca-file", type=Path, metavar="FILE", help="CA bundle for --store")
    verify.add_argument("--json", action="store_true")
    _common(verify)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_check = config_commands.add_parser("check", help="validate a configuration file")
    config_check.add_argument("file", type=Path)

    enroll = commands.add_parser("enroll", help="register this agent with a store")
    enroll.add_argument("url", help="the store's base URL, e.g. https://tillsyn.example.eu")
    enroll.add_argument("token", help="a one-time enrolment token from the store's admin")
    enroll.add_argument(
        "--ca-file",
        type=Path,
        metavar="FILE",
        help="CA bundle that signs the store's TLS certificate",
    )
    _common(enroll)

    push = commands.add_parser("push", help="deliver evidence waiting in the outbox")
    _common(push)

    daemon = commands.add_parser("daemon", help="run checks on their intervals and push")
    _common(daemon)

    status = commands.add_parser("status", help="what the daemon last did")
    status.add_argument("--json", action="store_true")
    _common(status)

    serve = commands.add_parser("serve", help="run the central store (HTTP API)")
    serve.add_argument(
        "--database",
        metavar="URL",
        help="SQLAlchemy URL, e.g. postgresql://user@host/db "
        "(default: a SQLite file in the state directory)",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--tls-cert", type=Path, metavar="FILE")
    serve.add_argument("--tls-key", type=Path, metavar="FILE")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (use the cores; each has its own pool)",
    )
    serve.add_argument("--state-dir", type=Path, metavar="DIR")
    serve.add_argument(
        "--auth-failure-limit",
        type=int,
        default=30,
        metavar="N",
        help="failed authentications per client address and minute before 429 (default 30)",
    )
    serve.add_argument(
        "--auth-failures-audited",
        type=int,
        default=5,
        metavar="N",
        help="of those, audited one by one; the rest as one row per minute (default 5)",
    )
    _key_file(serve)

    store = commands.add_parser("store", help="store administration")
    store_commands = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    token = store_commands.add_parser("token", help="tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="print a new token (shown only once)")
    create.add_argument(
        "--role",
        required=True,
        choices=["agent", "enrol", "auditor", "admin"],
        help="agent (or enrol): a one-time token one agent enrols with; auditor: reads "
        "everything; admin: manages tokens and agents",
    )
    create.add_argument("--expires", metavar="DURATION", help="e.g. 24h, 30d (default: never)")
    create.add_argument("--note", default="")
    _store_location(create)
    listed = token_commands.add_parser(
        "list", help="every token: id, role, agent, expiry, revocation (never secrets)"
    )
    listed.add_argument("--json", action="store_true", help="one JSON object per token")
    _store_location(listed)
    revoke = token_commands.add_parser("revoke", help="revoke a token or an agent credential")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the id `token list` shows")
    _store_location(revoke)
    init_db = store_commands.add_parser(
        "init-db",
        help="create or migrate the schema as its owner; on PostgreSQL also set up the "
        "least-privileged role `tillsyn serve` logs in as",
    )
    init_db.add_argument("--database", metavar="URL", help="the owner's login")
    init_db.add_argument("--state-dir", type=Path, metavar="DIR")
    init_db.add_argument(
        "--app-role",
        default="tillsyn_app",
        metavar="NAME",
        help="the application role (default tillsyn_app; created with LOGIN if missing)",
    )
    init_db.add_argument(
        "--app-password-file",
        type=Path,
        metavar="FILE",
        help="set the application role's password from this file (never printed)",
    )
    keep = store_commands.add_parser(
        "retention", help="remove evidence older than an age (and record what was removed)"
    )
    keep.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 400d")
    _store_location(keep)
    key = store_commands.add_parser(
        "key", help="print the store's public key (what receipts and its chain are signed with)"
    )
    key.add_argument("--json", action="store_true")
    _store_location(key)
    export = store_commands.add_parser(
        "export-keys",
        help="write the store key and every agent's enrolled key, checked against the "
        "store's signed enrolments, for auditors to pin (verify --store --pin FILE)",
    )
    _store_location(export)
    return parser


def _key_file(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="the store's Ed25519 signing key (default: $TILLSYN_STORE_KEY_FILE, else "
        "store.key in the state directory, made on first start)",
    )


def _store_location(command: argparse.ArgumentParser) -> None:
    """Where an admin command finds the store: its database and its signing key."""
    command.add_argument("--database", metavar="URL")
    command.add_argument("--state-dir", type=Path, metavar="DIR")
    _key_file(command)


def _common(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--config", type=Path, metavar="FILE", help="YAML merged over the defaults"
    )
    command.add_argument("--state-dir", type=Path, metavar="DIR", help="where evidence is kept")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="tillsyn: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    module_name, _, function_name = HANDLERS[args.command].partition(":")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except ModuleNotFoundError as exc:  # the store's web stack is an extra
        print(
            f"tillsyn: `{args.command}` needs {exc.name}, which is not installed; "
            "install the store extra: pip install 'tillsyn[store]' (or [postgres])",
            file=sys.stderr,
        )
        return EXIT_USAGE

    from tillsyn.agent.config import ConfigError
    from tillsyn.agent.identity import IdentityError
    from tillsyn.agent.localstore import LocalStoreError
    from tillsyn.collectors.memory import FactMemoryError

    try:
        return int(handler(args))
    except ConfigError as exc:
        print("tillsyn: configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except (IdentityError, LocalStoreError, FactMemoryError) as exc:
        print(f"tillsyn: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `tillsyn run --json | head`
        return EXIT_OK
    except OSError as exc:  # a state directory or file the OS refuses: say which, plainly
        print(f"tillsyn: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
