"""The publish API (FastAPI): the organisation's decisions and the public statistics.

- `POST /v1/leveringen/{id}/goedkeuring`, `POST /v1/leveringen/{id}/intrekking` (optional JSON
  body `{"reden": "..."}`), with the organisation's token: `200` with the new state; `401`
  without a valid token; `403` for anyone else (the supplier too: it submits, it does not
  decide); `404` unknown; `409` when the state does not allow it. Asking again for a decision
  already taken answers `200` with the current state. Every refusal is in the audit log
  (`ddas.api.Gate.refuse`), every decision too (`ddas.lifecycle.transition`, or `dubbel`).
- `GET /v1/statistieken?periode=<start>/<eind>[&gemeentecode=...][&formaat=csv]`: the period's
  published statistics (disclosure-protected), JSON or CSV (also by `Accept: text/csv`). No
  token: this is public output. `GET /v1/statistieken/perioden`: the periods published.
- `/healthz`, `/readyz`, `/metrics` (ddas.api.install).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import asyncpg
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from ddas.api import ERRORS, Gate, ReadyCheck, Refused, install, levering, problem
from ddas.registry import Registry

from . import metrics, store
from .statistiek import TABELLEN

_UNKNOWN = Refused(404, "onbekend", "Levering onbekend", "Er is geen levering met deze id.")


class Besluit(BaseModel):
    id: uuid.UUID
    state: str = Field(description="De toestand van de levering na het besluit.")
    nieuw: bool = Field(description="false: dit besluit was al eerder genomen (herhaling).")


class Reden(BaseModel):
    reden: str | None = Field(default=None, max_length=1000)


_OPTIONAL_BODY: Final = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": Reden.model_json_schema()}},
    }
}


def parse_periode(value: str) -> tuple[dt.date, dt.date]:
    """`YYYY-MM-DD/YYYY-MM-DD` (both ends included); raises Refused 400."""
    start, sep, eind = value.partition("/")
    try:
        if not sep:
            raise ValueError
        a, b = dt.date.fromisoformat(start.strip()), dt.date.fromisoformat(eind.strip())
    except ValueError:
        raise Refused(
            400,
            "ongeldige-periode",
            "Ongeldige periode",
            "Geef de periode als begin/eind, bijvoorbeeld 2025-01-01/2025-06-30.",
        ) from None
    if b < a:
        raise Refused(
            400, "ongeldige-periode", "Ongeldige periode", "Het einde ligt voor het begin."
        )
    return a, b


def _waarde(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def create_app(
    registry: Registry,
    pool: asyncpg.Pool,
    *,
    ready: dict[str, ReadyCheck] | None = None,
    on_decision: Callable[[], None] = lambda: None,
    base_url: Callable[[], str] = lambda: "",
) -> FastAPI:
    app = FastAPI(
        title="DDAS publish",
        version="1",
        description=(
            "Goedkeuren of intrekken van een levering door de aanleverende organisatie, en de "
            "gepubliceerde, beveiligde statistieken."
        ),
    )
    install(app, ready)
    gate = Gate(registry, pool)

    async def decide(request: Request, ident: str, soort: store.Soort) -> Response:
        try:
            principal = await gate.principal(request)
        except Refused as refused:
            metrics.BESLUITEN.labels(soort, "geweigerd").inc()
            return await gate.refuse(request, refused, "anoniem", besluit=soort)
        found = await levering(pool, ident)
        levering_id = found.id if found is not None else None
        try:
            reden = await _reden(request)
            if found is None:
                raise _UNKNOWN
            if not found.decidable_by(principal):
                raise Refused(
                    403,
                    "geen-toegang",
                    "Geen toegang",
                    "Alleen de organisatie waarvoor de levering is, kan haar goedkeuren of "
                    "intrekken.",
                )
            link = f"{base_url() or str(request.base_url).rstrip('/')}/v1/statistieken"
            try:
                besluit = await _decide(pool, found.id, soort, principal.actor, reden, link)
            except store.Conflict as exc:
                raise Refused(
                    409,
                    "toestand",
                    "Niet in deze toestand",
                    _conflict_detail(soort, exc.huidig),
                ) from None
            except LookupError:
                raise _UNKNOWN from None
        except Refused as refused:
            metrics.BESLUITEN.labels(soort, "geweigerd").inc()
            return await gate.refuse(request, refused, principal.actor, levering_id, besluit=soort)
        metrics.BESLUITEN.labels(soort, "ok" if besluit.nieuw else "dubbel").inc()
        if besluit.nieuw:
            on_decision()
        return JSONResponse(
            Besluit(id=found.id, state=besluit.state, nieuw=besluit.nieuw).model_dump(mode="json")
        )

    @app.post(
        "/v1/leveringen/{levering_id}/goedkeuring",
        response_model=Besluit,
        responses=ERRORS,
        summary="Een levering goedkeuren",
        description=(
            "Door de organisatie waarvoor de levering is, na het op-orde-rapport "
            "(toestand rapport_gereed). Daarna worden de cijfers gepubliceerd. Nogmaals "
            "goedkeuren geeft hetzelfde antwoord."
        ),
        openapi_extra=_OPTIONAL_BODY,
    )
    async def goedkeuring(levering_id: str, request: Request) -> Response:
        return await decide(request, levering_id, "goedkeuring")

    @app.post(
        "/v1/leveringen/{levering_id}/intrekking",
        response_model=Besluit,
        responses=ERRORS,
        summary="Een levering intrekken",
        description=(
            "Door de organisatie waarvoor de levering is, zolang zij niet is gepubliceerd "
            "(rapport_gereed of goedgekeurd). Haar gegevens worden dan nergens gepubliceerd; "
            "het rapport en de bevindingen blijven bewaard."
        ),
        openapi_extra=_OPTIONAL_BODY,
    )
    async def intrekking(levering_id: str, request: Request) -> Response:
        return await decide(request, levering_id, "intrekking")

    @app.get(
        "/v1/statistieken",
        responses={
            200: {"content": {"text/csv": {}}, "description": "JSON of CSV"},
            **{k: v for k, v in ERRORS.items() if k in (400, 404)},
        },
        summary="Gepubliceerde statistieken van een periode",
        description=(
            "Beveiligd: cellen onder 10 onderdrukt (en waar nodig aanvullend onderdrukt), "
            "aantallen afgerond op 5, geen aandeel op een basis onder 10. Elke cel heeft een "
            "status. Geen token nodig."
        ),
    )
    async def statistieken(
        request: Request,
        periode: str = Query(description="begin/eind, bijvoorbeeld 2025-01-01/2025-06-30"),
        gemeentecode: str | None = Query(default=None, pattern=r"^([0-9]{4}|onbekend|totaal)$"),
        formaat: str | None = Query(default=None, pattern="^(json|csv)$"),
    ) -> Response:
        start, eind = parse_periode(periode)
        found = await store.statistieken(pool, start, eind, gemeentecode)
        if found is None or not found[1]:
            return problem(
                Refused(
                    404,
                    "geen-statistieken",
                    "Geen statistieken",
                    f"Er zijn geen gepubliceerde cijfers voor {periode}"
                    + (f" en gemeente {gemeentecode}." if gemeentecode else "."),
                ),
                request.url.path,
            )
        versie, cellen = found
        csv_wanted = formaat == "csv" or (
            formaat is None and "text/csv" in request.headers.get("accept", "")
        )
        if csv_wanted:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(
                ["periode", "versie", "gemeentecode", "tabel", "kolom", "waarde", "status"]
            )
            for c in cellen:
                w = _waarde(c["waarde"])
                writer.writerow(
                    [periode, versie["versie"], c["gemeentecode"], c["tabel"], c["kolom"],
                     "" if w is None else w, c["status"]]
                )  # fmt: skip
            return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
        gemeenten: dict[str, dict[str, dict[str, Any]]] = {}
        for c in cellen:
            tabellen = gemeenten.setdefault(c["gemeentecode"], {})
            tabellen.setdefault(c["tabel"], {})[c["kolom"]] = {
                "waarde": _waarde(c["waarde"]),
                "status": c["status"],
            }
        order = {name: i for i, name in enumerate(TABELLEN)}
        return JSONResponse(
            {
                "periode": {"start": start.isoformat(), "eind": eind.isoformat()},
                "versie": versie["versie"],
                "gepubliceerd_op": versie["gepubliceerd_op"].isoformat(),
                "gemeenten": [
                    {
                        "gemeentecode": code,
                        "tabellen": dict(
                            sorted(tabellen.items(), key=lambda kv: order.get(kv[0], len(order)))
                        ),
                    }
                    for code, tabellen in gemeenten.items()
                ],
            }
        )

    @app.get("/v1/statistieken/perioden", summary="De perioden met gepubliceerde statistieken")
    async def perioden() -> Response:
        rows = await store.perioden(pool)
        return JSONResponse(
            [
                {
                    "periode": f"{r['periode_start'].isoformat()}/{r['periode_eind'].isoformat()}",
                    "versie": r["versie"],
                }
                for r in rows
            ]
        )

    return app


async def _decide(
    pool: asyncpg.Pool,
    levering_id: uuid.UUID,
    soort: store.Soort,
    actor: str,
    reden: str | None,
    link: str,
) -> store.Besluit:
    async with pool.acquire() as conn:
        return await store.decide(conn, levering_id, soort, actor=actor, reden=reden, link=link)


_ONGELDIG: Final = Refused(
    400,
    "ongeldig-besluit",
    "Ongeldig verzoek",
    'De body is leeg of JSON van de vorm {"reden": "..."} (hoogstens 1000 tekens).',
)


async def _reden(request: Request) -> str | None:
    """The optional reason of a decision: no body, or {"reden": "..."}; else Refused 400."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        body = Reden.model_validate_json(raw)
    except ValueError:
        raise _ONGELDIG from None
    return body.reden or None


def _conflict_detail(soort: str, huidig: str) -> str:
    if soort == "goedkeuring":
        if huidig in ("ontvangen", "gevalideerd", "afgekeurd"):
            return f"De levering is {huidig}: goedkeuren kan pas als het op-orde-rapport er is."
        return f"De levering is {huidig} en kan niet meer worden goedgekeurd."
    if huidig in ("ontvangen", "gevalideerd", "afgekeurd"):
        return f"De levering is {huidig}: intrekken kan zodra het op-orde-rapport er is."
    return f"De levering is {huidig} en kan niet meer worden ingetrokken."


__all__ = ["create_app", "parse_periode"]
