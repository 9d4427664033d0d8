"""The agent's commands: run, checks, controls, verify, config check, enroll.

Each takes the parsed arguments and returns an exit code (see :mod:`tillsyn.exitcodes`).
Heavy imports happen inside the command that needs them, so ``tillsyn --version`` and
``tillsyn checks`` stay quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tillsyn.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

log = logging.getLogger("tillsyn")


def _registry() -> Any:
    from tillsyn.agent import registry
    from tillsyn.agent.catalog import Catalog

    catalog = Catalog.load()
    return catalog, registry.load(catalog)


def _console() -> Any:
    from rich.console import Console

    return Console()


def run(args: argparse.Namespace) -> int:
    from tillsyn.agent import config as config_module
    from tillsyn.agent import identity as identity_module
    from tillsyn.agent.evidence import canonical
    from tillsyn.agent.localstore import LocalEvidence
    from tillsyn.agent.session import facts_factory, run_once
    from tillsyn.collectors.memory import MEMORY_FILE, FactMemory

    _, registry = _registry()
    config = config_module.load(registry, args.config)
    unknown = [c for c in args.check if c not in registry.checks]
    if unknown:
        print(
            f"tillsyn: unknown check id(s): {', '.join(unknown)} (see `tillsyn checks`)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    families = {c.spec.family for c in registry.checks.values()}
    bad_families = [f for f in args.family if f not in families]
    if bad_families:
        print(
            f"tillsyn: unknown family: {', '.join(bad_families)} "
            f"(known: {', '.join(sorted(families))})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    selected = registry.select(args.check, args.family)
    state_dir = args.state_dir or config.state_dir()
    identity = identity_module.load_or_create(state_dir)
    store = LocalEvidence(state_dir)
    memory = FactMemory(state_dir / MEMORY_FILE)

    reader_gone = False

    def print_json(record: dict[str, Any]) -> None:
        """Each record exactly as hashed (RFC 8785), so a reader can recompute the hash."""
        nonlocal reader_gone
        if reader_gone:
            return
        try:
            sys.stdout.write(canonical(record).decode("utf-8") + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: stop printing, but finish and seal the run
            reader_gone = True
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    try:
        summary = run_once(
            registry,
            config,
            identity,
            store,
            facts_factory(config, memory),
            selected=selected,
            include_problems=not (args.check or args.family),
            sink=print_json if args.json else None,
        )
    finally:
        store.close()
        memory.close()
    if not args.json:
        from tillsyn.agent.render import run_report

        run_report(
            summary.records,
            _console(),
            remediation={c.spec.id: c.spec.remediation for c in registry.checks.values()},
            evidence=str(store.path),
            seal=summary.seal,
            details=args.details,
        )
    if args.push and _push(state_dir, config) != EXIT_OK:
        return EXIT_FAILED
    if summary.store_error:
        print(f"tillsyn: evidence was NOT stored: {summary.store_error}", file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


def checks(args: argparse.Namespace) -> int:
    from tillsyn.agent._typed import describe

    _, registry = _registry()
    rows = [
        {
            "id": c.spec.id,
            "title": c.spec.title,
            "family": c.spec.family,
            "target": c.spec.target,
            "severity": c.spec.severity,
            "controls": list(c.spec.controls),
            "interval": c.spec.interval,
            "params": describe(c.spec.params),
            "facts": list(c.spec.facts),
            "needs": list(c.spec.needs),
            "remediation": c.spec.remediation,
            "version": c.spec.version,
            "source": c.source,
        }
        for c in registry.select()
    ]
    problems = [{"name": p.name, "source": p.source, "reason": p.reason} for p in registry.problems]
    if args.json:
        print(json.dumps({"checks": rows, "problems": problems}, indent=2))
    else:
        from tillsyn.agent.render import checks_table

        console = _console()
        checks_table(rows, console)
        for problem in problems:
            console.print(
                f"[bold red]not loaded[/] {problem['name']} ({problem['source']}): "
                f"{problem['reason']}"
            )
    return EXIT_FAILED if problems else EXIT_OK


def controls(args: argparse.Namespace) -> int:
    from tillsyn.agent.catalog import FRAMEWORKS

    catalog, registry = _registry()
    direct: dict[str, list[str]] = {}
    for check in registry.checks.values():
        for control in check.spec.controls:
            direct.setdefault(control, []).append(check.spec.id)
    frameworks = [args.framework] if args.framework else list(FRAMEWORKS)
    output: dict[str, Any] = {}
    for framework in frameworks:
        rows = []
        for control in catalog.framework(framework):
            via = sorted({c for d in catalog.descendants(control.id) for c in direct.get(d, [])})
            rows.append(
                {
                    "id": control.id,
                    "title": control.title,
                    "depth": control.depth,
                    "assessable": control.assessable,
                    "checks": sorted(direct.get(control.id, [])),
                    "covered_by_subpoints": via,
                }
            )
        assessable = [r for r in rows if r["assessable"]]
        covered = [r for r in assessable if r["checks"]]
        output[framework] = {
            "name": FRAMEWORKS[framework],
            "controls": rows,
            "summary": {
                "assessable": len(assessable),
                "with_automated_check": len(covered),
                "without_automated_check": [r["id"] for r in assessable if not r["checks"]],
            },
        }
    if args.json:
        print(json.dumps(output, indent=2))
        return EXIT_OK
    from tillsyn.agent.render import controls_table

    console = _console()
    for data in output.values():
        controls_table(data["controls"], console, data["name"])
        summary = data["summary"]
        console.print(
            f"{data['name']}: {summary['with_automated_check']} of "
            f"{summary['assessable']} assessable controls have an automated check; "
            f"{len(summary['without_automated_check'])} need other evidence.\n"
        )
    return EXIT_OK


def verify(args: argparse.Namespace) -> int:
    from tillsyn.agent.localstore import DB_FILE, verify_local

    if args.store:
        return _verify_store(args)
    if args.against_store:
        return _verify_against_store(args)
    state_dir = _state_dir(args)
    db = state_dir / DB_FILE
    if not db.exists():
        print(
            f"tillsyn: no evidence at {db}; run `tillsyn run` first",
            file=sys.stderr,
        )
        return EXIT_FAILED
    report = verify_local(state_dir)
    failed = not report.ok or (args.strict and report.unsealed > 0)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not failed,
                    "records": report.records,
                    "seals": report.seals,
                    "unsealed": report.unsealed,
                    "head_seq": report.head_seq,
                    "head_hash": report.head_hash,
                    "problem": str(report.problem) if report.problem else None,
                }
            )
        )
    elif report.problem:
        print(f"tillsyn: evidence does NOT verify: {report.problem}", file=sys.stderr)
        print(f"  {report.records} records before it verified ({db})", file=sys.stderr)
    else:
        print(
            f"verified {report.records} records and {report.seals} seals in {db}; "
            f"chain head {report.head_seq} {report.head_hash[:16]}…"
        )
        if report.unsealed:
            print(
                f"warning: the newest {report.unsealed} records are not sealed yet (a run "
                "in progress or interrupted; the next run's seal covers them)",
                file=sys.stderr,
            )
    return EXIT_FAILED if failed else EXIT_OK


def _state_dir(args: argparse.Namespace) -> Path:
    """--state-dir, else the configuration's, else the platform default."""
    from tillsyn.agent import config as config_module

    if getattr(args, "state_dir", None):
        return Path(args.state_dir)
    _, registry = _registry()
    return config_module.load(registry, getattr(args, "config", None)).state_dir()


def _verify_store(args: argparse.Namespace) -> int:
    """Recompute what a store's readers see from signed text (see agent/storeverify.py)."""
    from tillsyn.agent.catalog import Catalog
    from tillsyn.agent.storetrust import StoreTrustError
    from tillsyn.agent.storeverify import StoreReader, StoreReadError, load_pins, verify_store

    token = _token(args)
    reader = StoreReader(args.store, token, str(args.ca_file) if args.ca_file else None)
    try:
        pins = load_pins(args.pin) if args.pin else None
        verdict = verify_store(reader, Catalog.load(), pins=pins, receipt_files=args.receipts)
    except (StoreReadError, StoreTrustError, OSError) as exc:
        print(f"tillsyn: cannot verify {args.store}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        reader.close()
    if args.json:
        print(json.dumps({"ok": verdict.ok, **asdict(verdict)}, indent=2))
        return EXIT_OK if verdict.ok else EXIT_FAILED
    pinned = "pinned" if verdict.key_pinned else "as the store publishes it, not pinned"
    print(
        f"store key {verdict.store_key_id} ({pinned}); store chain: "
        f"{verdict.chain_entries} signed entries"
    )
    for problem in verdict.problems:
        print(f"tillsyn: store: {problem}", file=sys.stderr)
    bad = 0
    for agent in verdict.agents:
        if agent.problems:
            bad += 1
            for problem in agent.problems:
                print(
                    f"tillsyn: agent {agent.agent_id} ({agent.hostname}): {problem}",
                    file=sys.stderr,
                )
        else:
            waiting = (
                f" ({agent.unacknowledged} stored since the store's newest receipt)"
                if agent.unacknowledged
                else ""
            )
            print(
                f"agent {agent.agent_id} ({agent.hostname}): {agent.records} records and "
                f"{agent.seals} seals verified{waiting}"
            )
    records = sum(a.records for a in verdict.agents)
    receipts = f"; {verdict.receipts_checked} receipts checked" if args.receipts else ""
    print(
        f"{records} records checked in {args.store}{receipts}; {bad} chain(s) with problems"
        + (f"; {len(verdict.problems)} store problem(s)" if verdict.problems else "")
    )
    return EXIT_OK if verdict.ok else EXIT_FAILED


def _verify_against_store(args: argparse.Namespace) -> int:
    """On an agent: the store still holds everything its signed receipts acknowledged."""
    from tillsyn.agent import identity as identity_module
    from tillsyn.agent.storelink import StoreLink, StoreLinkError
    from tillsyn.agent.storetrust import StorePublicKey, StoreTrustError
    from tillsyn.agent.storeverify import StoreReader, StoreReadError, verify_against_store

    state_dir = _state_dir(args)
    try:
        link = StoreLink.load(state_dir)
        identity = identity_module.load(state_dir)
    except StoreLinkError as exc:
        print(f"tillsyn: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not link.store_key:
        print(
            "tillsyn: this agent holds no store key yet (enrolled before stores had keys; "
            "the next push learns it)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    reader = StoreReader(link.url, link.token, link.ca_file)
    try:
        found = verify_against_store(
            reader, StorePublicKey.from_b64(link.store_key), identity.agent_id, state_dir
        )
    except (StoreReadError, StoreTrustError) as exc:
        print(f"tillsyn: cannot verify against {link.url}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        reader.close()
    if args.json:
        print(json.dumps({"ok": not found.problems, **asdict(found)}, indent=2))
    for problem in found.problems:
        print(f"tillsyn: {link.url}: {problem}", file=sys.stderr)
    if not found.problems and not args.json:
        print(
            f"{link.url} holds everything it acknowledged: {found.receipts} receipts, records "
            f"to {found.acknowledged_to} ({found.compared} compared, "
            f"{found.retained_to} removed by signed retention)"
        )
    return EXIT_FAILED if found.problems else EXIT_OK


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        return Path(args.token_file).read_text().strip()
    token = os.environ.get("TILLSYN_TOKEN", "")
    if not token:
        raise SystemExit("tillsyn: give --token-file or set TILLSYN_TOKEN (auditor or admin)")
    return token


def enroll(args: argparse.Namespace) -> int:
    import socket

    from tillsyn.agent import identity as identity_module
    from tillsyn.agent.storeclient import PushRefusedError
    from tillsyn.agent.storeclient import enroll as enroll_with

    state_dir = _state_dir(args)
    identity = identity_module.load_or_create(state_dir)
    try:
        link = enroll_with(
            args.url,
            args.token,
            identity,
            socket.gethostname(),
            str(args.ca_file) if args.ca_file else None,
        )
    except (PushRefusedError, OSError) as exc:
        print(f"tillsyn: enrolment failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    link.save(state_dir)
    print(f"enrolled agent {identity.agent_id} with {link.url}")
    return EXIT_OK


def push(args: argparse.Namespace) -> int:
    from tillsyn.agent import config as config_module

    _, registry = _registry()
    config = config_module.load(registry, args.config)
    return _push(args.state_dir or config.state_dir(), config)


def _push(state_dir: Path, config: Any) -> int:
    from tillsyn.agent.localstore import LocalEvidence
    from tillsyn.agent.storeclient import StoreLink, StoreLinkError
    from tillsyn.agent.storeclient import push as push_to

    try:
        link = StoreLink.load(state_dir)
    except StoreLinkError as exc:
        print(f"tillsyn: {exc}", file=sys.stderr)
        return EXIT_FAILED
    store = LocalEvidence(state_dir)
    try:
        report = push_to(
            store, link, batch_size=config.agent.push_batch, attempts=config.agent.push_attempts
        )
    finally:
        store.close()
    if report.error:
        print(
            f"tillsyn: push incomplete: {report.error}; {report.remaining} records wait in "
            "the outbox and will be sent again",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(
        f"pushed {report.delivered} records to {link.url} in {report.batches} batches "
        f"({report.duplicates} already there); {report.remaining} not yet sealed"
    )
    return EXIT_OK


def daemon(args: argparse.Namespace) -> int:
    from tillsyn.agent.daemon import Daemon

    worker = Daemon(args.config, args.state_dir)
    worker.install_signals()
    print(
        f"tillsyn daemon: {sum(1 for c in worker.config.checks.values() if c.enabled)} checks, "
        f"state in {worker.state_dir}",
        file=sys.stderr,
    )
    worker.run_forever()
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    from tillsyn.agent.daemon import read_status

    state_dir = _state_dir(args)
    current = read_status(state_dir)
    if current is None:
        print(
            f"tillsyn: no daemon status in {state_dir} (is `tillsyn daemon` running there?)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if args.json:
        print(json.dumps(current, indent=2))
        return EXIT_OK
    print(
        f"daemon pid {current['pid']} since {current['started_at']}, "
        f"updated {current['updated_at']}"
    )
    print(
        f"store: {current['store'] or 'not enrolled'}; outbox: {current['outbox_records']} "
        f"records; last successful push: {current['last_push_ok'] or 'never'}"
    )
    if current["last_push_error"]:
        print(f"last push error: {current['last_push_error']}")
    for check_id, run in sorted(current["checks"].items()):
        counts = ", ".join(f"{n} {s}" for s, n in sorted(run["statuses"].items()))
        print(f"  {check_id}: last run {run['at']} ({counts})")
    return EXIT_OK


def config_check(args: argparse.Namespace) -> int:
    from tillsyn.agent import config as config_module

    _, registry = _registry()
    config = config_module.load(registry, args.file)
    enabled = sum(1 for c in config.checks.values() if c.enabled)
    print(f"{args.file}: valid ({enabled} of {len(config.checks)} checks enabled)")
    return EXIT_OK
