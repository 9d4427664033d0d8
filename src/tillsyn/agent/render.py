"""What people read (rich), imported only when output goes to a person, not ``--json``.

``tillsyn run`` prints a summary: one line per check with its counts, then every failure
and error with its resource, message and the check's remediation, then a closing line;
``--details`` puts every result, resource by resource, before it. Those lines are laid
out here rather than by a rich ``Table``: a table shares the width out by ratio and folds
whatever does not fit, which at 80 columns cut check ids, resources and control ids into
fragments. Here an id or a resource is never cut (unless it alone is wider than the
terminal), long text wraps with a hanging indent, and controls are shown only when the
terminal is wide enough to hold them beside the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.cells import chop_cells
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tillsyn.agent.exceptions import is_excepted

STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "error": "bold magenta",
    "excepted": "yellow",
    "skip": "dim",
    "not_applicable": "cyan",
}

#: How a status reads in the status column: words, so that a pipe or a printout without
#: colour still says it, in capitals so that the eye finds them down the column.
STATUS_LABEL = {
    "pass": "PASS",
    "fail": "FAIL",
    "error": "ERROR",
    "excepted": "EXCEPTED",
    "not_applicable": "N/A",
    "skip": "SKIP",
}

#: A check's line shows the first of these its results have: anything to act on wins.
WORST_FIRST = ("fail", "error", "excepted", "pass", "not_applicable", "skip")
#: The order counts are written in, on a check's line and on the closing line.
COUNT_ORDER = ("pass", "fail", "excepted", "error", "not_applicable", "skip")
#: What makes the run exit 1 and goes in "Failures and errors" with its remediation.
ACTIONABLE = ("fail", "error")

#: From this many columns on, controls get a column of their own; below it they would
#: squeeze the counts and messages that a person reads first.
WIDE = 120
INDENT = 2
STATUS_WIDTH = len("EXCEPTED") + 2
#: Where resources, messages and remediation start: right of the status column.
BODY = INDENT + STATUS_WIDTH

Cell = tuple[Sequence[Text], int]  # a cell's wrapped lines and its width


def short_control(control_id: str) -> str:
    """``iso27001:2022/A.8.13`` -> ``A.8.13``; ``nis2/4.2.1`` -> ``NIS 4.2.1``."""
    framework, _, ref = control_id.partition("/")
    return ref if framework.startswith("iso") else f"NIS {ref}"


def shown_status(record: Mapping[str, Any]) -> str:
    """The status a person is shown: a fail under an approved exception still in force is
    ``excepted`` (accepted risk, nothing to fix now), anything else as recorded."""
    if record["status"] == "fail" and is_excepted(dict(record)):
        return "excepted"
    return str(record["status"])


def count_words(counts: Mapping[str, int]) -> list[tuple[str, str]]:
    """``[("pass", "3 pass"), ("not_applicable", "2 not applicable")]``: in
    :data:`COUNT_ORDER`, without zeros, each with its status so that it can be styled."""
    return [(s, f"{counts[s]} {s.replace('_', ' ')}") for s in COUNT_ORDER if counts.get(s)]


def closing_line(
    records: Sequence[Mapping[str, Any]], evidence: str, seal: Mapping[str, Any] | None
) -> str:
    """``5 results: 3 pass, 1 fail, 1 excepted. Evidence in ... (sealed as record 6).``"""
    results = [r for r in records if r["kind"] == "result"]
    counts = ", ".join(words for _, words in count_words(Counter(map(shown_status, results))))
    sealed = f"sealed as record {seal['seq']}" if seal else "not sealed"
    return f"{len(results)} results: {counts}. Evidence in {evidence} ({sealed})."


@dataclass
class _Check:
    """One check's results in this run, in the order the check gave them."""

    id: str
    family: str
    title: str
    controls: tuple[str, ...]
    records: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(shown_status(r) for r in self.records)

    @property
    def status(self) -> str:
        counts = self.counts
        return next((s for s in WORST_FIRST if counts.get(s)), "error")  # "error": unknown

    @property
    def to_report(self) -> list[Mapping[str, Any]]:
        """Failures and errors, then accepted risk: shown as such, so nobody mistakes it."""
        first = [r for r in self.records if shown_status(r) in ACTIONABLE]
        return first + [r for r in self.records if shown_status(r) == "excepted"]


def _by_family(records: Iterable[Mapping[str, Any]]) -> dict[str, list[_Check]]:
    """Results grouped by family, then by check, both sorted: every run reads alike."""
    checks: dict[str, _Check] = {}
    for record in records:
        if record["kind"] != "result":
            continue
        ref = record["check"]
        if ref["id"] not in checks:
            family = ref["family"] or "(load errors)"
            checks[ref["id"]] = _Check(
                ref["id"], family, ref.get("title") or "", tuple(record["controls"])
            )
        checks[ref["id"]].records.append(record)
    families: dict[str, list[_Check]] = {}
    for check in sorted(checks.values(), key=lambda c: (c.family, c.id)):
        families.setdefault(check.family, []).append(check)
    return families


def _words(text: str, style: str = "") -> list[Text]:
    return [Text(word, style=style) for word in text.split()]


def _items(items: Sequence[Text]) -> list[Text]:
    """Comma-separated items as atoms that keep their comma, so ``NIS 6.6.1.a`` or
    ``1 not applicable`` is never split at its own space."""
    return [item + "," if n < len(items) - 1 else item for n, item in enumerate(items)]


def _wrap(atoms: Sequence[Text], width: int, hang: int = 0) -> list[Text]:
    """Greedy fill of whole atoms, a space apart; lines after the first are indented by
    ``hang``. An atom is cut only when it alone is wider than the line it starts: the one
    case where no line can hold it whole."""
    narrow = max(width - hang, 1)
    lines: list[Text] = []
    line = Text()
    for atom in atoms:
        room = narrow if lines else max(width, 1)
        if line.plain and line.cell_len + 1 + atom.cell_len <= room:
            line.append(" ")
            line.append_text(atom)
            continue
        if line.plain:
            lines.append(line)
            room = narrow
        while atom.cell_len > room:
            head, atom = atom.divide([len(chop_cells(atom.plain, room)[0])])
            lines.append(head)
            room = narrow
        line = atom.copy()
    lines.append(line)
    return [lines[0], *(Text(" " * hang) + line for line in lines[1:])]


def _row(cells: Sequence[Cell]) -> list[Text]:
    """Cells side by side, as many lines as the tallest; each cell padded to its width
    so that the next starts in its column, trailing space dropped."""
    out: list[Text] = []
    for n in range(max(len(lines) for lines, _ in cells)):
        line = Text()
        for lines, width in cells:
            piece = lines[n] if n < len(lines) else Text()
            line.append_text(piece)
            line.append(" " * max(0, width - piece.cell_len))
        line.rstrip()
        out.append(line)
    return out


def _label(status: str) -> Text:
    return Text(STATUS_LABEL.get(status, status.upper()), style=STATUS_STYLE.get(status, ""))


def _counts(check: _Check) -> list[Text]:
    """``1 pass, 1 fail``: what needs acting on in its colour, the rest plain."""
    return _items(
        [
            Text(words, style=STATUS_STYLE[s] if s in ACTIONABLE else "")
            for s, words in count_words(check.counts)
        ]
    )


def _controls(check: _Check) -> list[Text]:
    return _items([Text(short_control(c), style="dim") for c in check.controls])


def _resource(record: Mapping[str, Any]) -> str:
    return f"{record['resource']['type']}:{record['resource']['id']}"


class _Report:
    """One run's output at one terminal width: column widths are fixed once for all lines."""

    def __init__(self, records: Sequence[Mapping[str, Any]], console: Console) -> None:
        self.console = console
        self.width = console.width
        self.wide = self.width >= WIDE
        self.families = _by_family(records)
        checks = [c for group in self.families.values() for c in group]
        self.checks = checks
        longest = max((len(c.id) for c in checks), default=0)
        # room for the longest id, but never more than half the line: a very long plugin
        # id then goes on a line of its own rather than pushing every count aside
        self.id_width = min(longest + 2, max(20, (self.width - BODY) // 2))
        rest = self.width - BODY - self.id_width
        longest_counts = max((sum(a.cell_len + 1 for a in _counts(c)) for c in checks), default=0)
        self.counts_width = min(longest_counts + 1, rest // 2) if self.wide else rest
        self.controls_width = rest - self.counts_width

    def print(self, lines: Iterable[Text]) -> None:
        for line in lines:
            self.console.print(line, soft_wrap=True)

    def heading(self, title: str) -> None:
        self.console.print(Text(title, style="bold underline"), soft_wrap=True)

    def check_line(self, check: _Check) -> list[Text]:
        """``  FAIL      host.backup.recency  1 pass, 1 fail  A.8.13, NIS 4.2.1``"""
        name = Text(check.id, style="bold" if check.status in ACTIONABLE else "")
        lead: list[Cell] = [([Text()], INDENT), ([_label(check.status)], STATUS_WIDTH)]
        if self.wide:  # two spaces between the counts and the controls, however they wrap
            columns: list[Cell] = [
                (_wrap(_counts(check), self.counts_width - 2), self.counts_width),
                (_wrap(_controls(check), self.controls_width), self.controls_width),
            ]
        else:
            columns = [(_wrap(_counts(check), self.counts_width), self.counts_width)]
        if name.cell_len < self.id_width and self.counts_width >= 16:
            return _row([*lead, ([name], self.id_width), *columns])
        # an id too long for its column, or a terminal too narrow for columns: the id on a
        # line of its own, whole if the line can hold it, and the counts under it
        below = self.width - BODY
        if name.cell_len <= below:
            lines = _row([*lead, ([name], below)])
        else:
            lines = _row(lead) + _row([([Text()], INDENT), (_wrap([name], self.width - INDENT), 0)])
        return lines + _row([([Text()], BODY), (_wrap(_counts(check), below), below)])

    def check_header(self, check: _Check, *, controls: bool = False) -> list[Text]:
        """A check's id and title above its results, the title wrapped under itself; and,
        when asked for and the line is wide, the check's controls under them."""
        atoms = [Text(check.id + (":" if check.title else ""), style="bold")]
        atoms += _words(check.title, "italic")
        lines = _wrap(atoms, self.width, hang=BODY)
        if controls and self.wide and check.controls:
            body = self.width - BODY
            lines += _row([([Text()], BODY), (_wrap(_controls(check), body), body)])
        return lines

    def result(self, record: Mapping[str, Any]) -> list[Text]:
        """Status, then the resource whole and the message under it, both at :data:`BODY`."""
        body = self.width - BODY
        lines = _wrap(_words(_resource(record), "bold"), body)
        lines += _wrap(_words(record["message"]), body)
        return _row(
            [([Text()], INDENT), ([_label(shown_status(record))], STATUS_WIDTH), (lines, body)]
        )

    def remediation(self, text: str) -> list[Text]:
        body = self.width - BODY
        return _row(
            [
                ([Text()], INDENT),
                ([Text("Fix:", style="bold")], STATUS_WIDTH),
                (_wrap(_words(text), body), body),
            ]
        )

    def summary(self) -> None:
        self.heading("Checks")
        for family, checks in self.families.items():
            self.console.print(Text(family, style="bold"), soft_wrap=True)
            for check in checks:
                self.print(self.check_line(check))

    def failures(self, remediation: Mapping[str, str]) -> None:
        reported = [c for c in self.checks if c.to_report]
        if not reported:
            return
        self.console.print()
        self.heading("Failures and errors")
        for n, check in enumerate(reported):
            if n:
                self.console.print()
            self.print(self.check_header(check))
            for record in check.to_report:
                self.print(self.result(record))
            fix = remediation.get(check.id)
            if fix and check.status in ACTIONABLE:
                self.print(self.remediation(fix))

    def details(self) -> None:
        self.heading("Results")
        for check in self.checks:
            self.print(self.check_header(check, controls=True))
            for record in check.records:
                self.print(self.result(record))
        self.console.print()


def run_report(
    records: Sequence[Mapping[str, Any]],
    console: Console,
    *,
    remediation: Mapping[str, str],
    evidence: str,
    seal: Mapping[str, Any] | None,
    details: bool = False,
) -> None:
    """``tillsyn run`` for a person: with ``details`` every result first, then one line
    per check, then the failures and errors with their fix, then the closing line; so
    what to act on is what the screen ends on, as with ``apt`` or a test runner.

    ``remediation`` maps check ids to their spec's remediation text: the caller has the
    registry, and this module never loads it."""
    report = _Report(records, console)
    if details:
        report.details()
    report.summary()
    report.failures(remediation)
    console.print()
    report.print(_wrap(_words(closing_line(records, evidence, seal)), report.width))


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
