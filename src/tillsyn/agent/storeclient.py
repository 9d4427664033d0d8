"""Talking to the central store: enrolment, pushing the outbox, reading chains back.

The outbox is the local evidence file itself: everything after the position the store
last acknowledged. Pushing sends whole sealed runs, oldest first, and moves the
acknowledged position only on the store's answer, so a crash, a SIGKILL or a reboot
mid-push loses nothing and a resend is acknowledged as duplicates. Every answer carries
the store's signed receipt, which is checked against the store key received at
enrolment and kept (:mod:`tillsyn.agent.receipts`) before the acknowledged position
moves. Network faults, 5xx, 429 and a 409 that is not a rewritten chain are retried with
exponential backoff and jitter; a refusal stops the push and is reported, with the
records still waiting; a rewritten chain (``chain_conflict``) is reported as the alert
it is, and the outbox is kept whole.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import requests

from tillsyn.agent import receipts
from tillsyn.agent.evidence import b64
from tillsyn.agent.identity import AgentIdentity
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.agent.storelink import StoreLink, StoreLinkError
from tillsyn.agent.storetrust import StorePublicKey, StoreTrustError, check_entry, verify_receipt

__all__ = [
    "PushRefusedError",
    "PushReport",
    "StoreLink",
    "StoreLinkError",
    "enroll",
    "push",
]

log = logging.getLogger("tillsyn.push")


class PushRefusedError(Exception):
    """The store refused a batch (4xx); retrying the same batch would not help."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


#: The store's code for a batch that contradicts what it already holds for this agent:
#: the local chain was rewritten (or the store's was). Never retried, never dropped.
CHAIN_CONFLICT = "chain_conflict"


@dataclass
class PushReport:
    delivered: int = 0
    duplicates: int = 0
    batches: int = 0
    remaining: int = 0
    error: str | None = None
    conflict: bool = False  # the store holds another chain for this agent: an alert


def enroll(
    url: str,
    enrolment_token: str,
    identity: AgentIdentity,
    hostname: str,
    ca_file: str | None = None,
    timeout: float = 30.0,
) -> StoreLink:
    answer = requests.post(
        url.rstrip("/") + "/api/v1/enroll",
        timeout=timeout,
        verify=ca_file or True,
        headers={"Authorization": f"Bearer {enrolment_token}"},
        json={
            "agent_id": identity.agent_id,
            "public_key": b64(identity.public_key_raw),
            "hostname": hostname,
        },
    )
    if answer.status_code != 200:
        raise PushRefusedError(f"enrolment refused ({answer.status_code}): {_detail(answer)}")
    body = answer.json()
    store_key = StorePublicKey.from_b64(str(body["store_key"]["public_key"]))
    entry = body["enrolment"]
    problem = check_entry(entry, store_key)
    if problem is None and entry["data"].get("public_key") != b64(identity.public_key_raw):
        problem = "it names another public key than this agent's"
    if problem is not None:
        raise PushRefusedError(f"the store's enrolment entry does not verify: {problem}")
    return StoreLink(
        url.rstrip("/"), str(body["token"]), ca_file, str(body["store_key"]["public_key"])
    )


def _code(answer: requests.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return str(body.get("code")) if isinstance(body, dict) and body.get("code") else None


def _detail(answer: requests.Response) -> str:
    try:
        return str(answer.json().get("detail") or answer.json().get("reason") or answer.text)
    except ValueError:
        return answer.text[:200]


def push(
    store: LocalEvidence,
    link: StoreLink,
    *,
    batch_size: int = 500,
    timeout: float = 30.0,
    attempts: int = 6,
    backoff: float = 1.0,
    max_backoff: float = 300.0,
    sleep: Callable[[float], None] = time.sleep,
) -> PushReport:
    """Deliver the outbox to ``link``'s store; returns what happened, never raises on I/O."""
    report = PushReport()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {link.token}"
    try:
        store_key = _store_key(session, link, store.state_dir, timeout)
        while batch := store.pending(link.url, batch_size):
            answer = _send(session, link, batch, timeout, attempts, backoff, max_backoff, sleep)
            body = answer.json()
            head = _acknowledged(body, store_key, batch[0]["agent_id"], store.state_dir)
            store.ack(link.url, head)
            report.batches += 1
            report.delivered += int(body["stored"])
            report.duplicates += int(body["duplicates"])
            if answer.status_code != 200:
                raise PushRefusedError(f"store refused part of a batch: {body.get('reason')}")
    except PushRefusedError as exc:
        report.conflict = exc.code == CHAIN_CONFLICT
        report.error = f"ALERT: {exc}" if report.conflict else str(exc)
        if report.conflict:
            log.error("ALERT: %s; the outbox is kept, nothing is dropped", exc)
    except StoreTrustError as exc:
        report.error = str(exc)
        log.error("ALERT: %s; the outbox is kept and sent again", exc)
    except requests.RequestException as exc:
        report.error = f"store unreachable after {attempts} attempts: {exc}"
    finally:
        session.close()
    report.remaining = store.undelivered(link.url)
    return report


def _store_key(
    session: requests.Session, link: StoreLink, state_dir: Path, timeout: float
) -> StorePublicKey:
    """The store key from enrolment; an agent enrolled before stores had keys learns it
    once from the store (trust on first use) and keeps it in its link file."""
    if link.store_key:
        return StorePublicKey.from_b64(link.store_key)
    answer = session.get(
        link.url + "/.well-known/tillsyn-store-key", timeout=timeout, verify=link.verify
    )
    if answer.status_code != 200:
        raise PushRefusedError(f"the store published no key ({answer.status_code})")
    text = str(answer.json()["public_key"])
    key = StorePublicKey.from_b64(text)
    replace(link, store_key=text).save(state_dir)
    log.warning("learnt the store's key %s from the store itself (first use)", key.key_id)
    return key


def _acknowledged(body: dict[str, Any], key: StorePublicKey, agent_id: str, state_dir: Path) -> int:
    """The head the store acknowledged, from its signed receipt, once that is kept.

    A stored batch whose receipt does not verify is not acknowledged: it is sent again
    (the store counts duplicates) and the failure is an alert, since either the answer
    was forged or the store signs with a key other than the one it enrolled us with.
    """
    head = int(body["head_seq"])
    entry = body.get("receipt")
    if entry is None:
        if head == 0:
            return 0
        raise StoreTrustError(f"the store acknowledged record {head} without a receipt")
    data = verify_receipt(entry, key, agent_id)
    if int(data["head_seq"]) != head:
        raise StoreTrustError(
            f"the store's receipt is for record {data['head_seq']}, its answer says {head}"
        )
    if int(body["stored"]):
        receipts.keep(state_dir, entry)
    return head


def _send(
    session: requests.Session,
    link: StoreLink,
    batch: list[dict[str, Any]],
    timeout: float,
    attempts: int,
    backoff: float,
    max_backoff: float,
    sleep: Callable[[float], None],
) -> requests.Response:
    """POST one batch, retrying what may pass later; a 4xx other than 413/429 is final."""
    url = link.url + "/api/v1/evidence"
    for attempt in range(attempts):
        try:
            answer = session.post(url, json={"records": batch}, timeout=timeout, verify=link.verify)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if attempt == attempts - 1:
                raise
            log.warning("store unreachable (%s); retrying", exc)
        else:
            if answer.status_code == 200 or (answer.status_code == 422 and "stored" in answer.text):
                return answer
            code = _code(answer)
            retryable = answer.status_code in (429, 500, 502, 503, 504) or (
                answer.status_code == 409 and code != CHAIN_CONFLICT
            )
            if not retryable:
                raise PushRefusedError(
                    f"store refused the batch ({answer.status_code}): {_detail(answer)}", code
                )
            if attempt == attempts - 1:
                raise PushRefusedError(
                    f"store kept failing ({answer.status_code}): {_detail(answer)}"
                )
            log.warning("store answered %s; retrying", answer.status_code)
        delay = min(max_backoff, backoff * 2**attempt)
        sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not cryptography
    raise AssertionError("unreachable")  # pragma: no cover
