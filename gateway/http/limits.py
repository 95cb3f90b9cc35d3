"""Limits at the HTTP edge: body size per route, validation errors without echo, a time
limit for a request to arrive, proxies trusted only when named (issue 21, item 6).

- **Body size.** JSON bodies are small (a note, a login): BODY_MAX. Only the routes that
  carry a rules file take RULES_BODY_MAX. A Content-Length over the limit is answered
  413 before a byte of the body is read; a chunked body is counted as it arrives and
  refused with 413 at the first byte over, so no body is ever held whole beyond its limit.
- **No echo.** FastAPI answers a validation error with each offending input inside the
  422 (a 50 MB password came back whole). Here the 422 names the key path and the
  reason only.
- **Time to arrive.** A connection must deliver a whole request (headers and body) within
  `[http] request_timeout_s` of opening, or of the previous answer; else it is closed
  (uvicorn has no header timeout: 1,000 slow connections were all held). Idle keep-alive
  connections close after `[http] idle_timeout_s`; at most `[http] max_connections`
  requests are served at once (503 beyond, from uvicorn).
- **Proxies.** `X-Forwarded-For` (and `X-Forwarded-Proto`) is believed only from the
  addresses in `[http] trusted_proxies`; by default from nobody, so the client address
  (login throttle, audit table) is the TCP peer's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("stationgw.http")

BODY_MAX = 64 * 1024  # bytes of a JSON body (notes are at most 4,000 characters)
# a rules file is at most 200,000 characters (http_dashboard.MAX_RULE_FILE), up to 6 bytes
# each once JSON-escaped
RULES_BODY_MAX = 1_300_000
RULES_ROUTES = ("/api/rules/check", "/api/rules/replay", "/api/rules/files/")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def body_limit(path: str) -> int:
    return RULES_BODY_MAX if path.startswith(RULES_ROUTES) else BODY_MAX


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body over {limit} bytes")


class BodyLimit:
    """ASGI middleware: 413 for a body over its route's limit, before it is read whole."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(str(scope.get("path", "")))
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _answer(send, 413, f"request body over {limit} bytes")
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # chunked: refused at the first byte over
                    raise _too_large(limit)
            return message

        await self.app(scope, counted, send)


async def _answer(send: Send, status: int, detail: str) -> None:
    body = JSONResponse({"detail": detail}).body
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with where and why, never the input itself (nor pydantic's context)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:200], "type": e.get("type")}
        for e in exc.errors()[:20]
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_middleware(BodyLimit)
    app.add_exception_handler(RequestValidationError, _validation_error)


def protocol(request_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a time limit for a whole request to arrive."""

    class Guarded(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle
            if cycle is not None and not cycle.more_body and not cycle.response_complete:
                self._disarm()  # the request is in whole: the app's time is its own

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection has the same time

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._timer = self.loop.call_later(request_timeout_s, self._late)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _late(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                self.transport.close()  # a request that did not arrive in time

    return Guarded


def server_options(
    *,
    request_timeout_s: float,
    idle_timeout_s: float,
    max_connections: int,
    trusted_proxies: list[str],
) -> dict[str, Any]:
    """Keyword arguments for uvicorn.Config."""
    return {
        "http": protocol(request_timeout_s),
        "timeout_keep_alive": idle_timeout_s,
        "limit_concurrency": max_connections,
        "proxy_headers": bool(trusted_proxies),
        "forwarded_allow_ips": list(trusted_proxies) if trusted_proxies else [],
        "h11_max_incomplete_event_size": 16 * 1024,  # the request line and headers
    }
