"""uvicorn's HTTP/1.1 protocol with a deadline for each request's headers.

uvicorn's own keep-alive timer stops at the first byte a client sends, so a client that
connects and sends nothing, or sends its headers a byte at a time, holds a connection for as
long as it likes. nginx in front cuts such clients after 10 s (config/nginx/); `serve` reached
directly does the same with this: from a connection's start, and from the end of each
answer, the next request's headers must be complete within HEADER_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0


class HeadersOnTime(H11Protocol):
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._late, self.cycle)

    def _late(self, cycle_then: object) -> None:
        """No request began since the deadline was set: the headers are late; cut it."""
        if self.cycle is cycle_then and (self.cycle is None or self.cycle.response_complete):
            if not self.transport.is_closing():
                self.transport.close()
