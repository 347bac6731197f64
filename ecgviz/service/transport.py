"""What one connection may cost the service: body size, stalled bodies and slow request heads, bounded.

Uvicorn keeps a connection open for as long as its client likes while the request head (method, path, headers)
or the body trickles in; a few hundred such half-sent requests hold the server's connections for good. Here a
request head must be complete within `Limits.head_timeout_s` of the connection opening (or of the previous
answer on a kept-alive connection), and a body may pause at most `Limits.body_idle_s` between two pieces.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import HTTPException
from fastapi.responses import JSONResponse


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; each bound keeps one client from taking the server's memory or connections."""

    max_beats: int = 10_000  # beats per request: 1.4 M samples at ECG5000's 140, a few MB as float32
    # 10,000 beats of 140 samples as JSON: ~14 MB with 8 significant digits, ~28 MB as full float64 reprs
    max_body_bytes: int = 32 * 2**20
    head_timeout_s: float = 10.0  # request line and headers, from the connection's start or the last answer
    body_idle_s: float = 20.0  # longest pause between two pieces of a body
    max_head_bytes: int = 16 * 2**10  # request line and headers together


class BodyLimit:
    """ASGI middleware: refuse a body over `max_bytes` (by its Content-Length, or as soon as a streamed one passes
    it) and one that stalls for `idle_s`."""

    def __init__(self, app, max_bytes: int, idle_s: float):
        self.app, self.max_bytes, self.idle_s = app, max_bytes, idle_s

    def _too_large(self) -> str:
        return f"request body is larger than {self.max_bytes:,} bytes; send fewer beats per request"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await JSONResponse({"detail": "Content-Length is not a number"}, 400)(scope, receive, send)
            if int(length) > self.max_bytes:
                return await JSONResponse({"detail": self._too_large()}, 413)(scope, receive, send)
        seen, done = 0, False

        async def limited_receive():
            nonlocal seen, done
            if done:  # the body is in: what follows is a wait for the client to go, which has no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.idle_s)
            except TimeoutError:
                raise HTTPException(408, f"request body stalled: nothing arrived for {self.idle_s:g} s",
                                    headers={"connection": "close"}) from None
            seen += len(message.get("body", b""))
            done = message.get("type") != "http.request" or not message.get("more_body", False)
            if seen > self.max_bytes:  # chunked bodies carry no length: count what arrives
                raise HTTPException(413, self._too_large(), headers={"connection": "close"})
            return message

        await self.app(scope, limited_receive, send)


def _protocol_class(head_timeout_s: float) -> type:
    """Uvicorn's h11 protocol, closing a connection whose request head is not complete in time."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadline(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _arm(self) -> None:
            self._disarm()
            if self.cycle is None or self.cycle.response_complete:  # else a pipelined request is being answered
                self._head_timer = self.loop.call_later(head_timeout_s, self._head_late, self.cycle)

        def _head_late(self, cycle) -> None:
            # a request whose head arrived made a new cycle; the same one means the head is still missing
            if self.cycle is cycle and not self.transport.is_closing():
                self.transport.close()

    return HeadDeadline


def server(app, host: str, port: int, limits: Limits, log_level: str = "info"):
    """A uvicorn server for `app` (h11, whose request-head size limit applies) with the time limits above."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, http=_protocol_class(limits.head_timeout_s),
                            h11_max_incomplete_event_size=limits.max_head_bytes, timeout_keep_alive=5)
    return uvicorn.Server(config)


def run(app, host: str, port: int, limits: Limits, log_level: str = "info") -> None:
    """Serve `app` until interrupted."""
    server(app, host, port, limits, log_level).run()
