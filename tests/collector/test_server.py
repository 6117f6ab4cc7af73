"""The reference supplier server over real HTTP: every request and answer conforms to
DDAS-SHV.yaml (checked with openapi-core against the official document), the pages carry a
valid Digest and signature, and the refusals are the spec's (RFC 7807, FSC error codes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson

from ddas.supplier_api.pages import assemble, read_page
from ddas.supplier_api.pki import Pki
from ddas.supplier_api.signing import TrustStore, verify
from tests.collector.conftest import CLIENT_ID, CLIENT_SECRET, FILE_1500

PERIODE = {"aanleverperiodeStartdatum": "2025-01-01", "aanleverperiodeEinddatum": "2025-12-31"}


async def token(client: httpx.AsyncClient, url: str) -> str:
    r = await client.post(f"{url}/token", data={"grant_type": "client_credentials"},
                          auth=(CLIENT_ID, CLIENT_SECRET))  # fmt: skip
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"
    return str(r.json()["access_token"])


async def test_all_pages_conform_and_make_the_file(
    supplier_api: Any, openapi: Callable[..., None], pki: Pki
) -> None:
    async with supplier_api() as server, httpx.AsyncClient() as client:
        bearer = {"Authorization": f"Bearer {await token(client, server.url)}"}
        pages = []
        for n in range(1, 9):
            r = await client.post(f"{server.url}/gegevens", headers=bearer,
                                  json={**PERIODE, "page": n, "pageSize": 200})  # fmt: skip
            assert r.status_code == 200
            assert r.json()["paginering"] == {
                "pageSize": 200, "currentPage": n, "totalPages": 8, "totalRecords": 1500,
            }  # fmt: skip
            verify(r.content, r.headers["Digest"], r.headers["nlgov-adr-payload-sig"],
                   TrustStore([pki.root.cert]))  # fmt: skip
            pages.append(read_page(r.content, n))
        gegevens = [ex for ex in server.exchanges if ex.path == "/gegevens"]
        assert len(gegevens) == 8
        for ex in gegevens:
            openapi(ex)
    assert [p.records for p in pages] == [200] * 7 + [100]
    assert orjson.loads(assemble(pages).raw) == orjson.loads(FILE_1500.read_bytes())


async def test_refusals_are_the_specs(supplier_api: Any, openapi: Callable[..., None]) -> None:
    async with supplier_api(token_ttl=0) as server, httpx.AsyncClient() as client:
        url = f"{server.url}/gegevens"
        expired = {"Authorization": f"Bearer {await token(client, server.url)}"}
        cases = [
            (await client.post(url, json={"page": 1}), 401, "ERROR_CODE_ACCESS_TOKEN_MISSING"),
            (await client.post(url, json={"page": 1}, headers={"Authorization": "Bearer nep"}),
             401, "ERROR_CODE_ACCESS_TOKEN_INVALID"),
            (await client.post(url, json={"page": 1}, headers=expired), 401,
             "ERROR_CODE_ACCESS_TOKEN_EXPIRED"),
            (await client.get(url), 405, "ERROR_CODE_METHOD_UNSUPPORTED"),
        ]  # fmt: skip
        for response, status, code in cases:
            assert response.status_code == status
            assert response.headers["Fsc-Error-Code"] == code
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == code
        for ex in server.exchanges:
            if ex.path == "/gegevens" and ex.method == "POST":
                openapi(ex)


async def test_bad_requests_get_problem_documents(
    supplier_api: Any, openapi: Callable[..., None]
) -> None:
    async with supplier_api() as server, httpx.AsyncClient() as client:
        bearer = {"Authorization": f"Bearer {await token(client, server.url)}"}
        url = f"{server.url}/gegevens"
        cases = [
            ({"pageSize": 25_001}, 400, "ongeldig-verzoek"),
            ({"page": 0}, 400, "ongeldig-verzoek"),
            ({"page": "1"}, 400, "ongeldig-verzoek"),
            ({"page": 9, "pageSize": 200}, 400, "pagina-bestaat-niet"),
            ({"aanleverperiodeStartdatum": "2026-01-01"}, 422, "geen-gegevens-voor-periode"),
            ({"aanleverperiodeStartdatum": "2025-06-01", "aanleverperiodeEinddatum": "2025-01-01"},
             422, "periode-omgekeerd"),
            ({"aanleverende_organisatie": "99999999"}, 422, "organisatie-onbekend"),
        ]  # fmt: skip
        for body, status, slug in cases:
            r = await client.post(url, json=body, headers=bearer)
            assert r.status_code == status, body
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"] == f"urn:ddas:probleem:{slug}"
        # not in the schema: refused by us and by the spec alike
        r = await client.post(url, json={"extra": 1}, headers=bearer)
        assert r.status_code == 400
        r = await client.post(
            url, content=b'{"page": 1}', headers={**bearer, "Digest": "SHA-256=AAAA"}
        )
        assert r.status_code == 400 and r.json()["type"] == "urn:ddas:probleem:digest-onjuist"
        broken = (b'"page":0', b'"page":"1"', b'"extra"')  # requests that break the spec on purpose
        for ex in server.exchanges:
            if ex.path == "/gegevens":
                openapi(ex, request_valid=not any(b in ex.body for b in broken))


async def test_the_token_endpoint_refuses_a_wrong_secret(supplier_api: Any) -> None:
    async with supplier_api() as server, httpx.AsyncClient() as client:
        r = await client.post(f"{server.url}/token", data={"grant_type": "client_credentials"},
                              auth=(CLIENT_ID, "fout"))  # fmt: skip
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = await client.post(f"{server.url}/token", data={"grant_type": "password"},
                              auth=(CLIENT_ID, CLIENT_SECRET))  # fmt: skip
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
        r = await client.post(f"{server.url}/token", data={"grant_type": "client_credentials",
                              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})  # fmt: skip
        assert r.status_code == 200
