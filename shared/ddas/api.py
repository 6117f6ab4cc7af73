"""What every HTTP API of the pipeline shares (FastAPI): RFC 7807 problem documents, bearer
authentication against the registry, who may see a delivery, and /healthz, /readyz, /metrics.

- `Refused` is an answer that is not a success: `status`, a stable `slug` (the problem type
  `urn:ddas:probleem:<slug>`), a Dutch `title` and a `detail` that says what to fix (never a
  personal value). `problem()` renders it as `application/problem+json`.
- `Gate` authenticates a request (`principal`), writes refused attempts to the audit log
  (`refuse`), and answers whether a principal may read a delivery (the supplier that delivered
  it and the organisations it is for) or decide on it (those organisations only).
- `install(app, ready)` turns every framework error and every crash into a problem document
  (no tracebacks for users) and adds the health, readiness and metrics endpoints.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ddas.audit import audit
from ddas.registry import Principal, Registry

__all__ = [
    "ERRORS",
    "PROBLEM",
    "Gate",
    "Levering",
    "Problem",
    "ReadyCheck",
    "Refused",
    "bearer",
    "install",
    "levering",
    "problem",
]

log = logging.getLogger(__name__)

PROBLEM: Final = "application/problem+json"
ReadyCheck = Callable[[], Awaitable[bool]]


class Refused(Exception):
    """An answer that is not a success, as an RFC 7807 problem."""

    def __init__(self, status: int, slug: str, title: str, detail: str) -> None:
        super().__init__(f"{status} {slug}: {detail}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail

    @property
    def type(self) -> str:
        return f"urn:ddas:probleem:{self.slug}"

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        return doc


class Problem(BaseModel):
    """RFC 7807 problem details."""

    type: str = Field(examples=["urn:ddas:probleem:geen-json"])
    title: str
    status: int
    detail: str
    instance: str | None = None


ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": Problem, "content": {PROBLEM: {}}, "description": text}
    for status, text in (
        (400, "Geen JSON of geen DDAS-document (met de reden)"),
        (401, "Geen of een onbekend token"),
        (403, "Geen recht voor deze organisatie of levering"),
        (404, "Levering onbekend"),
        (409, "De toestand van de levering staat dit niet toe"),
        (413, "Te groot (bytes of trajecten)"),
        (415, "Geen application/json"),
    )
}
"""The problem answers, for the `responses` of a route's OpenAPI description."""


def problem(refused: Refused, instance: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="ddas"'} if refused.status == 401 else None
    return JSONResponse(
        refused.problem(instance), status_code=refused.status, media_type=PROBLEM, headers=headers
    )


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


UNKNOWN: Final = Refused(404, "onbekend", "Levering onbekend", "Er is geen levering met deze id.")


@dataclass(frozen=True, slots=True)
class Levering:
    """Who a delivery belongs to: the supplier that delivered it and the organisations it is
    for (KvK numbers or gemeentecodes), with its state."""

    id: uuid.UUID
    state: str
    leverancier: str | None
    organisaties: tuple[str, ...]

    def readable_by(self, principal: Principal) -> bool:
        if principal.is_leverancier:
            return self.leverancier == principal.code
        return principal.code in self.organisaties

    def decidable_by(self, principal: Principal) -> bool:
        """Approving and withdrawing is for the organisations concerned, not the supplier."""
        return not principal.is_leverancier and principal.code in self.organisaties


async def levering(conn: asyncpg.Connection | asyncpg.Pool, ident: str) -> Levering | None:
    """The delivery with id `ident` (any string: a malformed id is simply unknown)."""
    try:
        levering_id = uuid.UUID(ident)
    except ValueError:
        return None
    row = await conn.fetchrow(
        """
        SELECT l.id, l.state, l.leverancier,
               COALESCE(array_agg(o.organisatie ORDER BY o.organisatie)
                        FILTER (WHERE o.organisatie IS NOT NULL), '{}') AS organisaties
          FROM leveringen l
          LEFT JOIN levering_organisaties o ON o.levering_id = l.id
         WHERE l.id = $1
         GROUP BY l.id
        """,
        levering_id,
    )
    if row is None:
        return None
    return Levering(row["id"], row["state"], row["leverancier"], tuple(row["organisaties"]))


class Gate:
    """Authentication and access for one service's API, with refusals audit-logged."""

    def __init__(self, registry: Registry, pool: asyncpg.Pool) -> None:
        self.registry = registry
        self.pool = pool

    async def principal(self, request: Request) -> Principal:
        """The caller, or `Refused` 401."""
        token = bearer(request)
        if token is None:
            raise Refused(
                401,
                "niet-geauthenticeerd",
                "Niet geauthenticeerd",
                "Geef een token mee: 'Authorization: Bearer <token>'.",
            )
        found = await self.registry.authenticate(token)
        if found is None:
            raise Refused(
                401,
                "niet-geauthenticeerd",
                "Niet geauthenticeerd",
                "Het token is onbekend of ingetrokken.",
            )
        return found

    async def readable(self, request: Request, principal: Principal, ident: str) -> Levering:
        """The delivery when `principal` may read it; else `Refused` 404 or 403."""
        found = await levering(self.pool, ident)
        if found is None:
            raise UNKNOWN
        if not found.readable_by(principal):
            raise Refused(
                403,
                "geen-toegang",
                "Geen toegang",
                "Alleen de leverancier en de organisaties van deze levering zien haar.",
            )
        return found

    async def refuse(
        self,
        request: Request,
        refused: Refused,
        actor: str,
        levering_id: uuid.UUID | None = None,
        **details: Any,
    ) -> Response:
        """The problem answer, with the refused attempt in the audit log."""
        try:
            await audit(
                self.pool,
                actor,
                f"{request.method} {request.scope.get('route_path', request.url.path)}",
                "geweigerd",
                levering_id,
                status=refused.status,
                probleem=refused.slug,
                **details,
            )
        except Exception:  # the refusal stands even when the audit log is unreachable
            log.exception("audit log unreachable")
        return problem(refused, request.url.path)


def install(app: FastAPI, ready: Mapping[str, ReadyCheck] | None = None) -> None:
    """Problem documents for every error, and /healthz, /readyz, /metrics (no token needed)."""
    checks = dict(ready or {})

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return problem(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Niet gevonden", 405: "Methode niet toegestaan"}
        return problem(
            Refused(
                exc.status_code,
                f"http-{exc.status_code}",
                titles.get(exc.status_code, "Fout"),
                str(exc.detail),
            ),
            request.url.path,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return problem(
            Refused(400, "ongeldig-verzoek", "Ongeldig verzoek", "Het verzoek is ongeldig."),
            request.url.path,
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(
            Refused(500, "interne-fout", "Interne fout", "Er ging iets mis; probeer het later."),
            request.url.path,
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        results = {}
        for name, check in checks.items():
            try:
                results[name] = bool(await check())
            except Exception:
                results[name] = False
        ok = all(results.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": results},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
