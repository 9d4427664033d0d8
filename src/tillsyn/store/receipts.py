"""The store's receipts: signed acknowledgements of how far it holds each agent's chain,
written for many pushes at once.

A receipt is an entry of the store's one signed chain, and appending to that chain
locks its head: every push would wait for every other push's receipt, each a
transaction with its own commit. Instead a push, once its batch has committed, asks
the :class:`ReceiptWriter` of its worker process; one thread there signs a receipt for
every agent asked about since its last round, in one transaction under one lock of
the chain (group commit, as databases do for their own log), and answers each push.
A push that arrives while a round is being written waits for the next round.

A receipt vouches for the agent's stored head as read under the chain's lock, so
receipts follow each other in head order whichever process writes them; an agent
whose newest receipt already vouches for its head gets that one again. If the store
stops after a batch committed and before its receipt did, the agent got no receipt,
keeps the records in its outbox and sends them again; that replay gets the receipt.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from tillsyn.agent.storetrust import RECEIPT
from tillsyn.store import chain
from tillsyn.store.database import write_transaction
from tillsyn.store.schema import agents
from tillsyn.store.storekey import StoreKey

#: How long a push waits for its receipt before it answers 503 (the agent retries).
WAIT_SECONDS = 60.0


def covers(receipt: dict[str, Any] | None, head_seq: int, head_hash: str) -> bool:
    """Whether ``receipt`` vouches for exactly this head."""
    return receipt is not None and (
        receipt["data"]["head_seq"],
        receipt["data"]["head_hash"],
    ) == (head_seq, head_hash)


def acknowledge(
    connection: Connection, key: StoreKey, agent_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The receipt for each agent's stored head (in the caller's write transaction):
    its newest one when that vouches for the head, else a new one, all new ones signed
    under one lock of the chain. Agents with nothing stored get none."""
    locked = chain.lock(connection)  # first: heads are read under it
    heads = connection.execute(
        select(
            agents.c.agent_id,
            agents.c.head_seq,
            agents.c.head_hash,
            agents.c.agent_version,
            agents.c.last_seen_at,
        )
        .where(agents.c.agent_id.in_(agent_ids))
        .order_by(agents.c.agent_id)
    ).all()
    newest = chain.newest_of(connection, RECEIPT, agent_ids)
    found: dict[str, dict[str, Any]] = {}
    wanted: list[tuple[str | None, dict[str, Any], datetime | None]] = []
    for head in heads:
        previous = newest.get(head.agent_id)
        if covers(previous, head.head_seq, head.head_hash):
            found[head.agent_id] = previous  # type: ignore[assignment]
        elif head.head_seq > 0:
            since = int(previous["data"]["head_seq"]) if previous else 0
            data = chain.receipt_data(
                head.head_seq, head.head_hash, head.agent_version, head.head_seq - since
            )
            # the receipt's time is when the store took in the head it vouches for
            seen = datetime.fromisoformat(head.last_seen_at) if head.last_seen_at else None
            wanted.append((head.agent_id, data, seen))
    for entry in chain.append_many(connection, key, RECEIPT, wanted, head=locked):
        found[entry["agent_id"]] = entry
    return found


class ReceiptWriter:
    """Receipts for the pushes of one worker process, a round at a time (module docstring)."""

    def __init__(self, engine: Engine, key: StoreKey) -> None:
        self.engine, self.key = engine, key
        self._wake = threading.Condition()
        self._asked: dict[str, list[Future[dict[str, Any] | None]]] = {}
        self._thread: threading.Thread | None = None

    def receipt(self, agent_id: str) -> dict[str, Any] | None:
        """The receipt for ``agent_id``'s stored head, signed in the next round. Raises
        what the round's transaction raised (a database error: the caller answers 503),
        or TimeoutError."""
        asked: Future[dict[str, Any] | None] = Future()
        with self._wake:
            self._asked.setdefault(agent_id, []).append(asked)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._rounds, name="tillsyn-receipts", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        return asked.result(timeout=WAIT_SECONDS)

    def _rounds(self) -> None:
        while True:
            with self._wake:
                while not self._asked:
                    self._wake.wait()
                round_, self._asked = self._asked, {}
            try:
                with write_transaction(self.engine) as connection:
                    found = acknowledge(connection, self.key, sorted(round_))
            except Exception as exc:  # noqa: BLE001 - every push of this round gets it
                for futures in round_.values():
                    for future in futures:
                        future.set_exception(exc)
                continue
            for agent_id, futures in round_.items():
                for future in futures:
                    future.set_result(found.get(agent_id))
