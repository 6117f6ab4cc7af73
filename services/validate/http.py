"""/healthz, /readyz and /metrics on a small HTTP port, with nothing but asyncio.

- `GET /healthz`: 200 while the process serves (liveness);
- `GET /readyz`: 200 when the broker answers and the database answers, else 503 with which of
  the two does not (readiness: take no traffic, but do not restart);
- `GET /metrics`: the Prometheus text format of the process's registry.

FastStream's ASGI app would need an ASGI server (uvicorn) that the pinned stack does not have;
three read-only endpoints do not need one. Requests are read with a size limit and a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]

_REASONS: Final = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        checks: dict[str, Check],
        *,
        registry: CollectorRegistry = REGISTRY,
        timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.checks = checks
        self.registry = registry
        self.timeout = timeout
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def readiness(self) -> dict[str, bool]:
        async def one(check: Check) -> bool:
            try:
                return bool(await asyncio.wait_for(check(), self.timeout))
            except Exception:
                return False

        results = await asyncio.gather(*(one(c) for c in self.checks.values()))
        return dict(zip(self.checks, results, strict=True))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status, ctype, body = await self._route(method, path.split("?", 1)[0])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            writer.close()
            return
        writer.write(
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + (body if method != "HEAD" else b"")
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _route(self, method: str, path: str) -> tuple[int, str, bytes]:
        text = "text/plain; charset=utf-8"
        if path not in ("/healthz", "/readyz", "/metrics"):
            return 404, text, b"not found\n"
        if method not in ("GET", "HEAD"):
            return 405, text, b"GET only\n"
        if path == "/healthz":
            return 200, text, b"ok\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        results = await self.readiness()
        lines = "".join(
            f"{name}: {'ok' if ok else 'unavailable'}\n" for name, ok in results.items()
        )
        return (200 if all(results.values()) else 503), text, lines.encode()
