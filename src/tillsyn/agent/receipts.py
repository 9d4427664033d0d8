"""The store's receipts, kept by the agent: proof of what the store acknowledged.

Each answer to a push carries the store's signed receipt (agent id, chain head, time).
The agent checks it against the store key it received at enrolment and appends it to
``receipts.jsonl`` in its state directory, outside the store's reach. Later,
``tillsyn verify --against-store`` (or an auditor's ``verify --store --receipts DIR``)
shows the store still holds everything it acknowledged: a store whose database was
rewritten, truncated or rewound cannot produce a receipt the agent does not have, nor
deny one it does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tillsyn.agent.storetrust import StorePublicKey, StoreTrustError, verify_receipt

RECEIPTS_FILE = "receipts.jsonl"


def keep(state_dir: Path, entry: dict[str, Any]) -> None:
    """Append one verified receipt, durably (one line, fsync'd) before the ack moves on."""
    line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
    descriptor = os.open(state_dir / RECEIPTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, line.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load(path: Path) -> list[dict[str, Any]]:
    """Every receipt in ``path`` (a receipts file or a state directory holding one).

    A torn last line (a crash mid-write) is left out; any other line that is not JSON
    is an error, since a receipts file is evidence too.
    """
    file = path / RECEIPTS_FILE if path.is_dir() else path
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    found: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise StoreTrustError(f"{file}:{number}: not a receipt ({exc.msg})") from exc
        if not isinstance(entry, dict):
            raise StoreTrustError(f"{file}:{number}: not a receipt")
        found.append(entry)
    return found


def newest(
    receipts: list[dict[str, Any]], key: StorePublicKey, agent_id: str
) -> dict[str, Any] | None:
    """The receipt for the furthest head among ``receipts``, each verified first."""
    best: dict[str, Any] | None = None
    for entry in receipts:
        data = verify_receipt(entry, key, agent_id)
        if best is None or data["head_seq"] > best["data"]["head_seq"]:
            best = entry
    return best
