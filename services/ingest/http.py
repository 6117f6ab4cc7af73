"""The upload API (FastAPI): POST /v1/leveringen, GET /v1/leveringen/{id}, health and metrics.

Every answer that is not a success is an RFC 7807 problem document (`application/problem+json`:
`type`, `title`, `status`, `detail`), never a traceback:

- 400: not JSON, or not a DDAS document (with the reason), nested too deep;
- 401: no bearer token, or an unknown or revoked one;
- 403: the supplier may not deliver for the levering's organisation (KvK or gemeentecode), or
  the caller may not read this delivery;
- 404: no such delivery;
- 413: more bytes than `max_bytes` (refused on Content-Length before the body is read, and
  while streaming it), or more trajectories than `max_trajecten`;
- 415: a content type other than application/json.

A refused attempt is written to the audit log. The OpenAPI document is at /openapi.json (and
/docs); /healthz (liveness), /readyz (broker and database answer) and /metrics (Prometheus) need
no token.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

import asyncpg
import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import metrics
from .intake import Intake, Refused, audit, too_large
from .registry import Principal, Registry

log = logging.getLogger("services.ingest.http")

PROBLEM: Final = "application/problem+json"
ReadyCheck = Callable[[], Awaitable[bool]]


class Problem(BaseModel):
    """RFC 7807 problem details."""

    type: str = Field(examples=["urn:ddas:probleem:geen-json"])
    title: str
    status: int
    detail: str
    instance: str | None = None


class Ontvangst(BaseModel):
    """The answer to a delivery: its id and where to follow it."""

    id: uuid.UUID
    state: str = Field(description="De toestand van de levering, eerst `ontvangen`.")
    status_url: str
    nieuw: bool = Field(description="false: dezelfde inhoud was al geleverd; dit is die levering")
    trajecten: int | None = None
    chunks: int | None = None


class Bevindingen(BaseModel):
    fouten: int
    waarschuwingen: int
    per_code: dict[str, int]


class Status(BaseModel):
    id: uuid.UUID
    state: str
    leverancier: str | None
    organisaties: list[str]
    ontvangen_op: str
    bijgewerkt_op: str
    trajecten: int | None
    chunks: int | None
    bevindingen: Bevindingen | None = Field(
        description="Samenvatting van de bevindingen zodra de levering is gevalideerd."
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM: {}}, "description": text}
    for status, text in (
        (400, "Geen JSON of geen DDAS-document (met de reden)"),
        (401, "Geen of een onbekend token"),
        (403, "Geen recht voor deze organisatie of levering"),
        (404, "Levering onbekend"),
        (413, "Te groot (bytes of trajecten)"),
        (415, "Geen application/json"),
    )
}


def problem(refused: Refused, instance: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="ddas"'} if refused.status == 401 else None
    return JSONResponse(
        refused.problem(instance), status_code=refused.status, media_type=PROBLEM, headers=headers
    )


def _unauthorised(detail: str) -> Refused:
    return Refused(401, "niet-geauthenticeerd", "Niet geauthenticeerd", detail)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def create_app(
    intake: Intake,
    registry: Registry,
    pool: asyncpg.Pool,
    *,
    ready: dict[str, ReadyCheck] | None = None,
    base_url: str = "",
) -> FastAPI:
    app = FastAPI(
        title="DDAS ingest",
        version="1",
        description="Leveringen aanbieden (SHV v1.0 JSON) en hun status volgen.",
    )
    checks = ready or {}
    max_bytes = intake.limits.max_bytes

    async def principal_or_refuse(request: Request) -> Principal:
        token = _bearer(request)
        if token is None:
            raise _unauthorised("Geef een token mee: 'Authorization: Bearer <token>'.")
        found = await registry.authenticate(token)
        if found is None:
            raise _unauthorised("Het token is onbekend of ingetrokken.")
        return found

    async def refuse(request: Request, refused: Refused, actor: str, via: str = "http") -> Response:
        metrics.REFUSED.labels(via=via, status=str(refused.status)).inc()
        try:
            await audit(
                pool,
                actor,
                f"{request.method} {request.scope.get('route_path', request.url.path)}",
                "geweigerd",
                status=refused.status,
                probleem=refused.slug,
                via=via,
            )
        except Exception:  # the refusal stands even when the audit log is unreachable
            log.exception("audit log unreachable")
        return problem(refused, request.url.path)

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

    def status_url(request: Request, levering_id: uuid.UUID) -> str:
        base = base_url.rstrip("/") or str(request.base_url).rstrip("/")
        return f"{base}/v1/leveringen/{levering_id}"

    @app.post(
        "/v1/leveringen",
        status_code=202,
        response_model=Ontvangst,
        responses={200: {"model": Ontvangst, "description": "Al geleverd"}, **_ERRORS},
        summary="Een levering aanbieden",
        description=(
            "De body is het SHV v1.0-bestand zelf (application/json). Dezelfde inhoud van "
            "dezelfde leverancier is dezelfde levering: opnieuw aanbieden (na een time-out) "
            "geeft dezelfde id terug (200)."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "description": "Een DDAS-levering schuldhulpverlening (SHV v1.0).",
                        }
                    }
                },
            }
        },
    )
    async def aanbieden(request: Request) -> Response:
        try:
            principal = await principal_or_refuse(request)
        except Refused as refused:
            return await refuse(request, refused, "anoniem")
        try:
            raw = await _read_body(request, max_bytes)
            accepted = await intake.submit(raw, principal, "http")
        except Refused as refused:
            return await refuse(request, refused, principal.actor)
        metrics.ACCEPTED.labels(via="http", nieuw=str(accepted.nieuw).lower()).inc()
        body = Ontvangst(
            id=accepted.levering_id,
            state=accepted.state,
            status_url=status_url(request, accepted.levering_id),
            nieuw=accepted.nieuw,
            trajecten=accepted.trajecten,
            chunks=accepted.chunks,
        )
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=202 if accepted.nieuw else 200,
            headers={"Location": body.status_url},
        )

    @app.get(
        "/v1/leveringen/{levering_id}",
        response_model=Status,
        responses=_ERRORS,
        summary="De toestand van een levering",
        description="Voor de leverancier die haar leverde en de organisaties waarvoor zij is.",
    )
    async def status(levering_id: str, request: Request) -> Response:
        try:
            principal = await principal_or_refuse(request)
        except Refused as refused:
            return await refuse(request, refused, "anoniem")
        try:
            ident = uuid.UUID(levering_id)
        except ValueError:
            ident = None
        row = None if ident is None else await _status_row(pool, ident)
        if row is None:
            return problem(
                Refused(404, "onbekend", "Levering onbekend", "Er is geen levering met deze id."),
                request.url.path,
            )
        allowed = (principal.is_leverancier and row["leverancier"] == principal.code) or (
            not principal.is_leverancier and principal.code in row["organisaties"]
        )
        if not allowed:
            return await refuse(
                request,
                Refused(
                    403,
                    "geen-toegang",
                    "Geen toegang",
                    "Alleen de leverancier en de organisaties van deze levering zien haar.",
                ),
                principal.actor,
            )
        bevindingen = msgspec.json.decode(row["bevindingen"]) if row["bevindingen"] else None
        body = Status(
            id=row["id"],
            state=row["state"],
            leverancier=row["leverancier"],
            organisaties=list(row["organisaties"]),
            ontvangen_op=row["ontvangen_op"].isoformat(),
            bijgewerkt_op=row["bijgewerkt_op"].isoformat(),
            trajecten=row["trajecten"],
            chunks=row["chunks"],
            bevindingen=Bevindingen(**bevindingen) if bevindingen else None,
        )
        return JSONResponse(body.model_dump(mode="json"))

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

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (415) unless JSON, and (413) beyond `limit` bytes: on the declared
    Content-Length before reading, and while streaming (no length, or a wrong one)."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise Refused(
            415,
            "geen-json-type",
            "Verkeerd inhoudstype",
            f"Lever met 'Content-Type: application/json' (niet {media or 'geen'}).",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise too_large(limit)
        chunks.append(part)
    return b"".join(chunks)


async def _status_row(pool: asyncpg.Pool, levering_id: uuid.UUID) -> Any:
    return await pool.fetchrow(
        """
        SELECT l.id, l.state, l.leverancier, l.ontvangen_op, l.bijgewerkt_op, l.trajecten,
               l.chunks, s.bevindingen::text AS bevindingen,
               COALESCE(array_agg(o.organisatie) FILTER (WHERE o.organisatie IS NOT NULL), '{}')
                   AS organisaties
          FROM leveringen l
          LEFT JOIN levering_status s ON s.levering_id = l.id
          LEFT JOIN levering_organisaties o ON o.levering_id = l.id
         WHERE l.id = $1
         GROUP BY l.id, s.bevindingen
        """,
        levering_id,
    )
