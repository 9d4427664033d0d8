"""Tables for people (rich), imported only when output goes to a person, not ``--json``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "error": "bold magenta",
    "skip": "dim",
    "not_applicable": "cyan",
}


def short_control(control_id: str) -> str:
    """``iso27001:2022/A.8.13`` -> ``A.8.13``; ``nis2/4.2.1`` -> ``NIS 4.2.1``."""
    framework, _, ref = control_id.partition("/")
    return ref if framework.startswith("iso") else f"NIS {ref}"


def results_table(records: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="tillsyn run", show_lines=False, expand=True)
    table.add_column("Check", no_wrap=True, ratio=3)
    table.add_column("Status", no_wrap=True, min_width=14)
    table.add_column("Resource", ratio=2, overflow="fold")
    table.add_column("Observed", ratio=6)
    table.add_column("Controls", ratio=2)
    by_family: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["kind"] == "result":
            by_family.setdefault(record["check"]["family"] or "(load errors)", []).append(record)
    for family in sorted(by_family):
        table.add_row(Text(family, style="bold underline"), "", "", "", "")
        for record in by_family[family]:
            status = record["status"]
            if record.get("exception"):
                status += (
                    " (expired exception)" if record["exception"]["expired"] else " (excepted)"
                )
            table.add_row(
                record["check"]["id"],
                Text(status, style=STATUS_STYLE.get(record["status"], "")),
                f"{record['resource']['type']}:{record['resource']['id']}",
                record["message"],
                "\n".join(short_control(c) for c in record["controls"]),
            )
        table.add_section()
    console.print(table)


def checks_table(rows: Iterable[dict[str, Any]], console: Console) -> None:
    table = Table(title="installed checks", expand=True)
    table.add_column("Check", no_wrap=True)
    for name in ("Family", "Target", "Controls", "Interval", "Parameters", "Source"):
        table.add_column(name, overflow="fold")
    for row in rows:
        params = "\n".join(f"{k}={v['default']!r} ({v['type']})" for k, v in row["params"].items())
        table.add_row(
            row["id"],
            row["family"],
            row["target"],
            "\n".join(short_control(c) for c in row["controls"]),
            row["interval"],
            params or "-",
            row["source"],
        )
    console.print(table)


def controls_table(rows: Iterable[dict[str, Any]], console: Console, title: str) -> None:
    table = Table(title=title, expand=True)
    table.add_column("Control", no_wrap=True)
    table.add_column("Title", ratio=3)
    table.add_column("Automated checks", ratio=2, overflow="fold")
    for row in rows:
        indent = "  " * max(0, row["depth"] - 1)
        checks = ", ".join(row["checks"]) or ""
        if not checks and row["covered_by_subpoints"]:
            checks = "via " + ", ".join(row["covered_by_subpoints"])
        style = "" if row["checks"] or row["covered_by_subpoints"] else "dim"
        table.add_row(
            Text(indent + short_control(row["id"]), style=style),
            Text(row["title"], style=style),
            checks or Text("none", style="dim"),
        )
    console.print(table)
