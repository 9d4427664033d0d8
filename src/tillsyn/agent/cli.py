"""The ``tillsyn`` command line.

Exit codes: 0 nothing failed, 1 a check failed or errored (or evidence did not
verify), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tillsyn import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("tillsyn")


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
    run.add_argument("--config", type=Path, metavar="FILE", help="YAML merged over the defaults")
    run.add_argument("--state-dir", type=Path, metavar="DIR", help="where evidence is kept")

    checks = commands.add_parser("checks", help="list installed checks and their parameters")
    checks.add_argument("--json", action="store_true")

    controls = commands.add_parser("controls", help="list controls and which checks evidence them")
    controls.add_argument("--framework", choices=["iso27001:2022", "nis2"])
    controls.add_argument("--json", action="store_true")

    verify = commands.add_parser("verify", help="recompute the evidence chain and seals")
    verify.add_argument("--state-dir", type=Path, metavar="DIR")
    verify.add_argument("--config", type=Path, metavar="FILE")
    verify.add_argument(
        "--strict", action="store_true", help="also fail when the newest records are not sealed yet"
    )
    verify.add_argument("--json", action="store_true")

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_check = config_commands.add_parser("check", help="validate a configuration file")
    config_check.add_argument("file", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="tillsyn: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": _run,
        "checks": _checks,
        "controls": _controls,
        "verify": _verify,
        "config": _config_check,
    }
    from tillsyn.agent.config import ConfigError
    from tillsyn.agent.identity import IdentityError
    from tillsyn.agent.localstore import LocalStoreError
    from tillsyn.collectors.memory import FactMemoryError

    try:
        return handlers[args.command](args)
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


def _registry() -> Any:
    from tillsyn.agent import registry
    from tillsyn.agent.catalog import Catalog

    catalog = Catalog.load()
    return catalog, registry.load(catalog)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _facts_factory(config: Any, memory: Any) -> Callable[[str], Any]:
    """One collector per target kind for this run, built when first asked for."""
    built: dict[str, Any] = {}

    def facts_for(kind: str) -> Any:
        if kind not in built:
            if kind != "host":
                raise RuntimeError(f"no {kind} target is configured in this version")
            from tillsyn.collectors.host import HostFacts

            built[kind] = HostFacts(
                command_timeout=config.agent.command_timeout,
                memory=memory,
                command_cache_ttl=config.agent.command_cache,
            )
        return built[kind]

    return facts_for


def _run(args: argparse.Namespace) -> int:
    from tillsyn.agent import config as config_module
    from tillsyn.agent import identity as identity_module
    from tillsyn.agent.evidence import canonical
    from tillsyn.agent.localstore import LocalEvidence
    from tillsyn.agent.session import run_once
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
            _facts_factory(config, memory),
            selected=selected,
            include_problems=not (args.check or args.family),
            sink=print_json if args.json else None,
        )
    finally:
        store.close()
        memory.close()
    if not args.json:
        from tillsyn.agent.render import results_table

        console = _console()
        results_table(summary.records, console)
        counts = ", ".join(
            f"{summary.count(s)} {s.replace('_', ' ')}"
            for s in ("pass", "fail", "error", "not_applicable", "skip")
            if summary.count(s)
        )
        sealed = f"sealed as record {summary.seal['seq']}" if summary.seal else "not sealed"
        console.print(
            f"{len(summary.records)} results: {counts}. Evidence in {store.path} ({sealed})."
        )
    if summary.store_error:
        print(f"tillsyn: evidence was NOT stored: {summary.store_error}", file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _checks(args: argparse.Namespace) -> int:
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


def _controls(args: argparse.Namespace) -> int:
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


def _verify(args: argparse.Namespace) -> int:
    from tillsyn.agent import config as config_module
    from tillsyn.agent.localstore import DB_FILE, verify_local

    if args.state_dir is None:
        _, registry = _registry()
        state_dir = config_module.load(registry, args.config).state_dir()
    else:
        state_dir = args.state_dir
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


def _config_check(args: argparse.Namespace) -> int:
    from tillsyn.agent import config as config_module

    _, registry = _registry()
    config = config_module.load(registry, args.file)
    enabled = sum(1 for c in config.checks.values() if c.enabled)
    print(f"{args.file}: valid ({enabled} of {len(config.checks)} checks enabled)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
