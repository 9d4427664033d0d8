"""Refusing hostile requests before any route, any token check or any database sees them.

Everything here is decided from the request line and headers alone, in constant memory:

- headers over :data:`MAX_HEADER_BYTES` in all (or one over :data:`MAX_FIELD_BYTES`)
  → 431, so a megabyte of header is never parsed into an audit row or a query;
- a request target (path and query) over :data:`MAX_TARGET_BYTES` → 414;
- a path or query that, percent-decoded, is not UTF-8 or holds a control character
  (a NUL byte, which PostgreSQL refuses in text, or a line break) → 400, naming which;
- a body over the configured limit → 413, without reading it into memory.

Each answer is JSON with a ``detail`` like FastAPI's own, so clients parse one shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_HEADER_BYTES = 16 * 1024  # what nginx and Node accept by default
MAX_FIELD_BYTES = 8 * 1024
MAX_TARGET_BYTES = 8 * 1024

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def refusal(value: bytes, what: str) -> str | None:
    """Why ``value`` (a raw path or query string) is refused, or None."""
    decoded = unquote_to_bytes(value.replace(b"+", b" "))
    if _CONTROL.search(decoded):
        return f"the {what} holds a control character (such as a NUL byte)"
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return f"the {what} is not valid UTF-8 once percent-decoded"
    return None


class RequestGuard:
    """ASGI middleware in front of the whole application; see the module docstring."""

    def __init__(self, app: App, body_limit: int) -> None:
        self.app, self.body_limit = app, body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        sizes = [len(name) + len(value) for name, value in headers]
        if sum(sizes) > MAX_HEADER_BYTES or any(size > MAX_FIELD_BYTES for size in sizes):
            await answer(
                send,
                431,
                f"request headers exceed {MAX_HEADER_BYTES} bytes in all "
                f"or {MAX_FIELD_BYTES} bytes in one field",
            )
            return
        path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
        query: bytes = scope.get("query_string") or b""
        if len(path) + len(query) > MAX_TARGET_BYTES:
            await answer(send, 414, f"the request target exceeds {MAX_TARGET_BYTES} bytes")
            return
        problem = refusal(path, "path") or refusal(query, "query string")
        if problem:
            await answer(send, 400, problem)
            return
        declared = dict(headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.body_limit:
            await answer(send, 413, f"request body exceeds {self.body_limit} bytes")
            return
        seen = 0

        async def counted() -> Message:
            # A body without Content-Length (chunked) is counted as it arrives. The
            # refusal is raised where the application reads the body, as the HTTP error
            # it is, so the application's own error handling answers 413 (an exception
            # of another kind would have it answer 500 first).
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.body_limit:
                raise HTTPException(413, f"request body exceeds {self.body_limit} bytes")
            return message

        await self.app(scope, counted, send)


async def answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
