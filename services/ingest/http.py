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
from typing import Any

import asyncpg
import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from ddas.api import ERRORS, Gate, ReadyCheck, Refused, install, problem
from ddas.registry import Registry

from . import metrics
from .intake import Intake, too_large

log = logging.getLogger("services.ingest.http")


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
    install(app, ready)
    gate = Gate(registry, pool)
    max_bytes = intake.limits.max_bytes

    async def refuse(request: Request, refused: Refused, actor: str, via: str = "http") -> Response:
        metrics.REFUSED.labels(via=via, status=str(refused.status)).inc()
        return await gate.refuse(request, refused, actor, via=via)

    def status_url(request: Request, levering_id: uuid.UUID) -> str:
        base = base_url.rstrip("/") or str(request.base_url).rstrip("/")
        return f"{base}/v1/leveringen/{levering_id}"

    @app.post(
        "/v1/leveringen",
        status_code=202,
        response_model=Ontvangst,
        responses={200: {"model": Ontvangst, "description": "Al geleverd"}, **ERRORS},
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
            principal = await gate.principal(request)
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
        responses=ERRORS,
        summary="De toestand van een levering",
        description="Voor de leverancier die haar leverde en de organisaties waarvoor zij is.",
    )
    async def status(levering_id: str, request: Request) -> Response:
        try:
            principal = await gate.principal(request)
        except Refused as refused:
            return await refuse(request, refused, "anoniem")
        try:
            await gate.readable(request, principal, levering_id)
        except Refused as refused:
            if refused.status == 404:
                return problem(refused, request.url.path)
            return await refuse(request, refused, principal.actor)
        row = await _status_row(pool, uuid.UUID(levering_id))
        if row is None:  # removed in between
            return problem(
                Refused(404, "onbekend", "Levering onbekend", "Er is geen levering met deze id."),
                request.url.path,
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
