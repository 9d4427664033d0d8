"""Where this agent's store is and the credential enrolment gave it (``store.json``, 0600).

Kept apart from the HTTP client so that reading it (the daemon does every tick) does
not load the HTTP stack on an agent that is not enrolled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

LINK_FILE = "store.json"


class StoreLinkError(Exception):
    """Not enrolled, or the enrolment file cannot be read."""


@dataclass(frozen=True)
class StoreLink:
    """Where this agent's store is and the credential it got at enrolment."""

    url: str
    token: str
    ca_file: str | None = None
    #: the store's public key (base64), received at enrolment: what receipts must verify
    #: against. None for an agent enrolled before stores had keys; its first push learns it.
    store_key: str | None = None

    @property
    def verify(self) -> str | bool:
        return self.ca_file or True

    def save(self, state_dir: Path) -> None:
        path = state_dir / LINK_FILE
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(
                {
                    "url": self.url,
                    "token": self.token,
                    "ca_file": self.ca_file,
                    "store_key": self.store_key,
                },
                handle,
            )
        temporary.replace(path)

    @classmethod
    def load(cls, state_dir: Path) -> StoreLink:
        path = state_dir / LINK_FILE
        try:
            data = json.loads(path.read_text())
            return cls(
                str(data["url"]), str(data["token"]), data.get("ca_file"), data.get("store_key")
            )
        except FileNotFoundError:
            raise StoreLinkError(
                f"not enrolled with a store (no {path}); run `tillsyn enroll URL TOKEN`"
            ) from None
        except (OSError, ValueError, KeyError) as exc:
            raise StoreLinkError(f"{path} is unreadable: {exc}") from exc
