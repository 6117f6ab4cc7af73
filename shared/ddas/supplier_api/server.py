"""The reference supplier server: one DDAS file served per the official pull API (DDAS-SHV.yaml).

- `POST /token`: OAuth2 client credentials (RFC 6749 section 4.4): `grant_type=
  client_credentials`, the client authenticated by HTTP Basic or by `client_id`/`client_secret`
  in the form; answers a bearer token for scope `read` that expires after `token_ttl` seconds.
- `POST /gegevens`: a `GegevensRequest` (period, optional organisation, `page`, `pageSize` of at
  most 25,000) answers one page: `{"gegevens": <Uitwisselmodel>, "paginering": {...}}` with the
  `Digest` and `nlgov-adr-payload-sig` headers (ddas.supplier_api.signing). A request with a
  `Digest` header must match its body.
- Errors: 400/422 as RFC 7807 problem documents; 401 (token missing, invalid, expired), 404 and
  405 as FSC errors with the `Fsc-Error-Code` header, as the spec says.

The file is served for every requested period that overlaps its own (`startdatumLevering` to
`einddatumLevering`); the reference server does not filter trajectories by period. `Faults` lets
a test (or a supplier comparing its own implementation) make the server misbehave on purpose:
tampered pages, wrong digests, pages that fail a number of times, pages held back.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import parse_qs

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ddas.api import PROBLEM, Refused, install

from .pages import MAX_PAGE_SIZE, Pager
from .signing import DIGEST_HEADER, SIGNATURE_HEADER, Signer, digest

__all__ = ["Faults", "SupplierApi", "create_app"]

log = logging.getLogger("ddas.supplier_api")

FscCode = Literal[
    "ERROR_CODE_ACCESS_TOKEN_MISSING",
    "ERROR_CODE_ACCESS_TOKEN_INVALID",
    "ERROR_CODE_ACCESS_TOKEN_EXPIRED",
    "ERROR_CODE_WRONG_GROUP_ID_IN_TOKEN",
    "ERROR_CODE_SERVICE_NOT_FOUND",
    "ERROR_CODE_SERVICE_UNREACHABLE",
    "ERROR_CODE_METHOD_UNSUPPORTED",
]
SCOPE: Final = "read"


class GegevensRequest(BaseModel):
    """The request body of POST /gegevens (components.schemas.GegevensRequest)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    aanleverperiodeStartdatum: dt.date | None = None
    aanleverperiodeEinddatum: dt.date | None = None
    aanleverende_organisatie: str | None = None
    page: int = Field(default=1, ge=1)
    pageSize: int = Field(default=MAX_PAGE_SIZE, ge=1)


@dataclass
class Faults:
    """Misbehaviour on purpose, per page number."""

    tamper: set[int] = field(default_factory=set)
    """The body is changed after signing (and its Digest recomputed): the signature breaks."""
    wrong_digest: set[int] = field(default_factory=set)
    """The Digest header does not match the body."""
    unreachable: dict[int, int] = field(default_factory=dict)
    """Page -> how many times it answers 502 (FSC ERROR_CODE_SERVICE_UNREACHABLE) first."""
    hold: dict[int, asyncio.Event] = field(default_factory=dict)
    """Page -> an event the answer waits for (a test holds a page back)."""
    down: bool = False
    """Every /gegevens request answers 502."""


@dataclass
class SupplierApi:
    """The server's state: the file in pages, the signer, the clients and the issued tokens."""

    pager: Pager
    signer: Signer
    clients: dict[str, str]  # client_id -> client_secret
    token_ttl: float = 3600.0
    faults: Faults = field(default_factory=Faults)
    clock: Callable[[], float] = time.time
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> client, expiry
    served: list[tuple[int, int]] = field(default_factory=list)  # (page, pageSize) answered 200
    requested: list[int] = field(default_factory=list)  # every page asked for, in order


def fsc_error(status: int, code: FscCode, title: str, detail: str) -> JSONResponse:
    headers: dict[str, str] = {"Fsc-Error-Code": code}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return JSONResponse(
        {
            "code": code,
            "domain": "ERROR_DOMAIN_INWAY",
            "title": title,
            "detail": detail,
            "status": status,
        },
        status_code=status,
        headers=headers,
        media_type=PROBLEM,
    )


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="ddas"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def create_app(api: SupplierApi) -> FastAPI:
    app = FastAPI(
        title="DDAS referentie-leveranciersserver",
        description="Levert één DDAS-bestand volgens DDAS-SHV.yaml (API v1.0).",
        docs_url=None,
        redoc_url=None,
    )
    install(app)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            return fsc_error(405, "ERROR_CODE_METHOD_UNSUPPORTED", "Methode niet ondersteund",
                             f"{request.method} wordt op {request.url.path} niet ondersteund.")  # fmt: skip
        if exc.status_code == 404:
            return fsc_error(404, "ERROR_CODE_SERVICE_NOT_FOUND", "Service niet gevonden",
                             f"Er is geen service op {request.url.path}.")  # fmt: skip
        refused = Refused(exc.status_code, "http", "Fout in het verzoek", str(exc.detail))
        return JSONResponse(refused.problem(), status_code=exc.status_code, media_type=PROBLEM)

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = {
            k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
        }
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type",
                                "Alleen grant_type=client_credentials wordt ondersteund.")  # fmt: skip
        credentials = _basic(request) or (form.get("client_id", ""), form.get("client_secret", ""))
        client_id, secret = credentials
        expected = api.clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            return _oauth_error(401, "invalid_client", "Onbekende client of onjuist geheim.")
        scope = form.get("scope", SCOPE)
        if scope.split() != [SCOPE]:
            return _oauth_error(400, "invalid_scope", "Alleen scope 'read' bestaat.")
        value = secrets.token_urlsafe(32)
        api.tokens[value] = (client_id, api.clock() + api.token_ttl)
        return JSONResponse(
            {
                "access_token": value,
                "token_type": "Bearer",
                "expires_in": int(api.token_ttl),
                "scope": SCOPE,
            },  # fmt: skip
            headers={"Cache-Control": "no-store"},
        )

    @app.post("/gegevens")
    async def gegevens(request: Request) -> Response:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return fsc_error(401, "ERROR_CODE_ACCESS_TOKEN_MISSING", "Toegangstoken ontbreekt",
                             "Het verzoek heeft geen Authorization: Bearer-header.")  # fmt: skip
        issued = api.tokens.get(value.strip())
        if issued is None:
            return fsc_error(401, "ERROR_CODE_ACCESS_TOKEN_INVALID", "Ongeldige access token",
                             "Het toegangstoken is onbekend.")  # fmt: skip
        if issued[1] <= api.clock():
            return fsc_error(401, "ERROR_CODE_ACCESS_TOKEN_EXPIRED", "Verlopen access token",
                             "Het toegangstoken is verlopen; vraag een nieuw token aan.")  # fmt: skip
        body = await request.body()
        sent_digest = request.headers.get(DIGEST_HEADER)
        if sent_digest is not None and not hmac.compare_digest(sent_digest.strip(), digest(body)):
            raise Refused(400, "digest-onjuist", "Digest klopt niet",
                          "De Digest-header van het verzoek past niet bij de body.")  # fmt: skip
        try:
            req = GegevensRequest.model_validate_json(body or b"{}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise Refused(400, "ongeldig-verzoek", "Ongeldig verzoek",
                          f"{where}: {first['msg']}.") from None  # fmt: skip
        if req.pageSize > MAX_PAGE_SIZE:
            raise Refused(400, "ongeldig-verzoek", "Ongeldig verzoek",
                          f"pageSize is hooguit {MAX_PAGE_SIZE}.")  # fmt: skip
        _check_period(api.pager, req)
        total_pages = api.pager.total_pages(req.pageSize)
        if req.page > total_pages:
            raise Refused(400, "pagina-bestaat-niet", "Pagina bestaat niet",
                          f"Er zijn {total_pages} pagina's bij pageSize {req.pageSize}.")  # fmt: skip
        api.requested.append(req.page)
        faults = api.faults
        if req.page in faults.hold:
            await faults.hold[req.page].wait()
        if faults.down or faults.unreachable.get(req.page, 0) > 0:
            if not faults.down:
                faults.unreachable[req.page] -= 1
            return fsc_error(502, "ERROR_CODE_SERVICE_UNREACHABLE", "Service niet bereikbaar",
                             "De achterliggende service is tijdelijk niet bereikbaar.")  # fmt: skip
        page = api.pager.page(req.page, req.pageSize)
        out = msgspec.json.encode(
            {
                "gegevens": page,
                "paginering": {
                    "pageSize": req.pageSize,
                    "currentPage": req.page,
                    "totalPages": total_pages,
                    "totalRecords": api.pager.total_records,
                },
            }
        )
        page_digest = digest(out)
        signature = await asyncio.to_thread(api.signer.sign, page_digest)
        if req.page in faults.tamper:
            out = out.replace(b'"gegevens":{', b'"gegevens":{"gewijzigd":true,', 1)
            page_digest = digest(out)
        if req.page in faults.wrong_digest:
            page_digest = digest(out + b" ")
        api.served.append((req.page, req.pageSize))
        return Response(
            out,
            media_type="application/json",
            headers={DIGEST_HEADER: page_digest, SIGNATURE_HEADER: signature},
        )

    return app


def _check_period(pager: Pager, req: GegevensRequest) -> None:
    start, eind = req.aanleverperiodeStartdatum, req.aanleverperiodeEinddatum
    if start and eind and eind < start:
        raise Refused(422, "periode-omgekeerd", "Periode omgekeerd",
                      "aanleverperiodeEinddatum ligt voor aanleverperiodeStartdatum.")  # fmt: skip
    try:
        f_start = dt.date.fromisoformat(str(pager.periode[0]))
        f_eind = dt.date.fromisoformat(str(pager.periode[1]))
    except ValueError:
        return  # the file has no usable period: serve it for any
    if (start and start > f_eind) or (eind and eind < f_start):
        raise Refused(422, "geen-gegevens-voor-periode", "Geen gegevens voor deze periode",
                      f"Deze server heeft gegevens over {f_start} tot en met {f_eind}.")  # fmt: skip
    org = req.aanleverende_organisatie
    if org:
        known: set[Any] = set()
        for lev in pager.leveringen:
            o = lev.members.get("aanleverende_organisatie")
            if isinstance(o, dict):
                known.update(o.get(k) for k in ("KvK-nummer", "gemeentecode", "(Statutaire) Naam"))
        if org not in known:
            raise Refused(422, "organisatie-onbekend", "Organisatie onbekend",
                          "Deze server levert niet voor de gevraagde aanleverende organisatie.")  # fmt: skip
