"""Talking to the central store: enrolment, pushing the outbox, reading chains back.

The outbox is the local evidence file itself: everything after the position the store
last acknowledged. Pushing sends whole sealed runs, oldest first, and moves the
acknowledged position only on the store's answer, so a crash, a SIGKILL or a reboot
mid-push loses nothing and a resend is acknowledged as duplicates. Network faults and
5xx answers are retried with exponential backoff and jitter; a refusal (4xx) stops the
push and is reported, with the records still waiting.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from tillsyn.agent.evidence import b64
from tillsyn.agent.identity import AgentIdentity
from tillsyn.agent.localstore import LocalEvidence
from tillsyn.agent.storelink import StoreLink, StoreLinkError

__all__ = [
    "PushRefusedError",
    "PushReport",
    "StoreLink",
    "StoreLinkError",
    "enroll",
    "fetch_chains",
    "push",
]

log = logging.getLogger("tillsyn.push")


class PushRefusedError(Exception):
    """The store refused a batch (4xx); retrying the same batch would not help."""


@dataclass
class PushReport:
    delivered: int = 0
    duplicates: int = 0
    batches: int = 0
    remaining: int = 0
    error: str | None = None


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
    return StoreLink(url.rstrip("/"), str(answer.json()["token"]), ca_file)


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
        while batch := store.pending(link.url, batch_size):
            answer = _send(session, link, batch, timeout, attempts, backoff, max_backoff, sleep)
            body = answer.json()
            store.ack(link.url, int(body["head_seq"]))
            report.batches += 1
            report.delivered += int(body["stored"])
            report.duplicates += int(body["duplicates"])
            if answer.status_code != 200:
                raise PushRefusedError(f"store refused part of a batch: {body.get('reason')}")
    except PushRefusedError as exc:
        report.error = str(exc)
    except requests.RequestException as exc:
        report.error = f"store unreachable after {attempts} attempts: {exc}"
    finally:
        session.close()
    report.remaining = store.undelivered(link.url)
    return report


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
            if answer.status_code not in (429, 500, 502, 503, 504):
                raise PushRefusedError(
                    f"store refused the batch ({answer.status_code}): {_detail(answer)}"
                )
            if attempt == attempts - 1:
                raise PushRefusedError(
                    f"store kept failing ({answer.status_code}): {_detail(answer)}"
                )
            log.warning("store answered %s; retrying", answer.status_code)
        delay = min(max_backoff, backoff * 2**attempt)
        sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not cryptography
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_chains(
    url: str, token: str, ca_file: str | None = None, timeout: float = 60.0
) -> Iterator[tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]]:
    """Every agent in the store with its chain as (stored position, record), in order."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    base = url.rstrip("/")
    try:
        agents = session.get(base + "/api/v1/agents", timeout=timeout, verify=ca_file or True)
        if agents.status_code != 200:
            raise PushRefusedError(f"store refused ({agents.status_code}): {_detail(agents)}")
        for agent in agents.json():
            records: list[tuple[int, dict[str, Any]]] = []
            cursor: str | None = None
            while True:
                params = {"agent": agent["agent_id"], "limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                page = session.get(
                    base + "/api/v1/evidence",
                    params=params,
                    timeout=timeout,
                    verify=ca_file or True,
                )
                if page.status_code != 200:
                    raise PushRefusedError(f"store refused ({page.status_code}): {_detail(page)}")
                data = page.json()
                records.extend(zip(data["positions"], data["records"], strict=True))
                cursor = data["next_cursor"]
                if not cursor:
                    break
            yield agent, records
    finally:
        session.close()
