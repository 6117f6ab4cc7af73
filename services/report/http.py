"""The report API (FastAPI): GET /v1/leveringen/{id}/rapport, health and metrics.

The format is chosen by `?formaat=json|csv|html` or, without it, by the `Accept` header
(text/html, text/csv or application/zip, application/json; anything else, or nothing: JSON).
CSV comes as one zip with a CSV file per figure (render.py).

Every answer that is not a success is an RFC 7807 problem document:
- 400: an unknown `formaat`;
- 401: no bearer token, or an unknown or revoked one;
- 403: the caller is neither the supplier of the delivery nor one of its organisations;
- 404: no such delivery;
- 406: an `Accept` header that allows none of the formats;
- 409: the report is not ready yet (the detail says the delivery's state).
Refused attempts (401 with a token, 403) are written to the audit log.
"""

from __future__ import annotations

import uuid
from typing import Final

import asyncpg
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response

from ddas.api import ERRORS, Gate, ReadyCheck, Refused, install, problem
from ddas.registry import Registry

from . import metrics
from .render import to_csv_zip, to_html, to_json
from .store import latest

FORMATEN: Final = ("json", "csv", "html")
_MEDIA: Final = {
    "json": "application/json",
    "csv": "application/zip",
    "html": "text/html; charset=utf-8",
}
_ACCEPT: Final = {
    "application/json": "json",
    "application/*": "json",
    "*/*": "json",
    "text/html": "html",
    "text/*": "html",
    "text/csv": "csv",
    "application/zip": "csv",
}


def choose(formaat: str | None, accept: str | None) -> str:
    """The format to answer in; `Refused` 400 or 406."""
    if formaat is not None:
        if formaat.lower() not in FORMATEN:
            raise Refused(
                400,
                "onbekend-formaat",
                "Onbekend formaat",
                f"formaat moet json, csv of html zijn (niet {formaat!r}).",
            )
        return formaat.lower()
    if not accept or not accept.strip():
        return "json"
    ranked = []
    for n, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media.lower() in _ACCEPT and q > 0:
            ranked.append((-q, n, _ACCEPT[media.lower()]))
    if not ranked:
        raise Refused(
            406,
            "formaat-niet-beschikbaar",
            "Formaat niet beschikbaar",
            "Het rapport is er als application/json, text/html of text/csv (een zip).",
        )
    return min(ranked)[2]


def create_app(
    registry: Registry, pool: asyncpg.Pool, *, ready: dict[str, ReadyCheck] | None = None
) -> FastAPI:
    app = FastAPI(
        title="DDAS rapport",
        version="1",
        description="Het op-orde-rapport (OOR) van een levering, als JSON, CSV of HTML.",
    )
    install(app, ready)
    gate = Gate(registry, pool)

    @app.get(
        "/v1/leveringen/{levering_id}/rapport",
        responses={
            200: {
                "description": "Het rapport",
                "content": {"application/json": {}, "text/html": {}, "application/zip": {}},
            },
            **ERRORS,
            406: {"description": "Geen van de gevraagde formaten"},
        },
        summary="Het op-orde-rapport van een levering",
        description=(
            "Voor de leverancier die de levering deed en de organisaties waarvoor zij is. "
            "Formaat met `?formaat=json|csv|html` of de Accept-header; CSV is een zip met "
            "één CSV-bestand per tabel. 409 zolang het rapport nog niet klaar is."
        ),
    )
    async def rapport(
        levering_id: str,
        request: Request,
        formaat: str | None = Query(default=None, description="json, csv of html"),
    ) -> Response:
        try:
            principal = await gate.principal(request)
        except Refused as refused:
            metrics.REFUSED.labels(str(refused.status)).inc()
            if bearer_given(request):
                return await gate.refuse(request, refused, "anoniem")
            return problem(refused, request.url.path)
        try:
            levering = await gate.readable(request, principal, levering_id)
            gekozen = choose(formaat, request.headers.get("accept"))
        except Refused as refused:
            metrics.REFUSED.labels(str(refused.status)).inc()
            if refused.status == 403:
                return await gate.refuse(request, refused, principal.actor, uuid.UUID(levering_id))
            return problem(refused, request.url.path)
        found = await latest(pool, uuid.UUID(levering_id))
        if found is None:
            metrics.REFUSED.labels("409").inc()
            return problem(
                Refused(
                    409,
                    "rapport-nog-niet-klaar",
                    "Rapport nog niet klaar",
                    f"De levering is {levering.state}; het rapport volgt na de validatie. "
                    "Probeer het later opnieuw.",
                ),
                request.url.path,
            )
        versie, oor = found
        metrics.SERVED.labels(gekozen).inc()
        headers = {"X-Rapport-Versie": str(versie), "Vary": "Accept"}
        if gekozen == "html":
            return Response(to_html(oor, versie=versie), media_type=_MEDIA["html"], headers=headers)
        if gekozen == "csv":
            headers["Content-Disposition"] = (
                f'attachment; filename="oor-{levering_id}-v{versie}.zip"'
            )
            return Response(to_csv_zip(oor), media_type=_MEDIA["csv"], headers=headers)
        return Response(to_json(oor), media_type=_MEDIA["json"], headers=headers)

    return app


def bearer_given(request: Request) -> bool:
    return bool(request.headers.get("authorization"))
