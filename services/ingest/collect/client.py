"""The collector's HTTP side: one supplier endpoint of the DDAS pull API (DDAS-SHV.yaml).

`PullClient.page(periode, n, size)` fetches page `n` with an OAuth2 client-credentials token
(fetched, cached until it expires, fetched again once when the server says it expired), checks
its Digest and signature (ddas.supplier_api.signing) and takes it apart (pages.read_page).

Failures become `CollectError(code, detail, transient)`:
- transient (connection errors, timeouts, 429, 5xx: 502 with FSC's ERROR_CODE_SERVICE_UNREACHABLE
  and the like) are retried `attempts` times with a doubling backoff capped at `max_backoff_s`
  (a Retry-After in seconds is honoured up to that cap), then raised as transient;
- a refusal (400, 401, 403, 404, 405, 422 and other 4xx) is raised at once, its code the
  `Fsc-Error-Code` header (or the FSC error's `code`), else `http-<status>`, and its detail the
  problem document's title and detail;
- a page whose digest or signature does not hold, or that is not a page of the API, is refused
  (`SignatureRefused` / `PageError` codes), never retried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec

from ddas.supplier_api.pages import Page, PageError, read_page
from ddas.supplier_api.signing import (
    DIGEST_HEADER,
    SIGNATURE_HEADER,
    SignatureRefused,
    TrustStore,
    digest,
    verify,
)

from .config import CollectorConfig, Endpoint, Periode

__all__ = ["CollectError", "PullClient"]

log = logging.getLogger("services.ingest.collect")

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class CollectError(Exception):
    """A collection that cannot go on: a stable `code` (an FSC error code, `http-<status>`,
    a page's refusal code...), a Dutch `detail`, and whether trying later may help."""

    def __init__(self, code: str, detail: str, *, transient: bool = False) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.transient = transient


def _problem(response: httpx.Response) -> tuple[str, str]:
    """The code and a one-line detail of an error answer."""
    code = response.headers.get("Fsc-Error-Code", "")
    title = detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = code or (body.get("code") if isinstance(body.get("code"), str) else "") or ""
        if not code and isinstance(body.get("error"), str):  # OAuth2 (RFC 6749 5.2)
            code = f"oauth-{body['error']}"
        title = str(body.get("title") or body.get("error") or "")
        detail = str(body.get("detail") or body.get("error_description") or "")
    code = code or f"http-{response.status_code}"
    text = " ".join(p for p in (f"HTTP {response.status_code}", title, detail) if p)
    return code[:100], text[:300]


class PullClient:
    def __init__(
        self,
        endpoint: Endpoint,
        config: CollectorConfig,
        trust: TrustStore,
        *,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.config = config
        self.trust = trust
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=config.timeout_s)
        self._sleep = sleep
        self._token: str | None = None
        self._token_until = 0.0

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    # -- requests with retries --------------------------------------------------------------

    async def _send(
        self, what: str, request: Callable[[], Awaitable[httpx.Response]]
    ) -> httpx.Response:
        c = self.config
        for attempt in range(1, c.attempts + 1):
            wait = min(c.backoff_s * 2 ** (attempt - 1), c.max_backoff_s)
            try:
                response = await request()
            except httpx.TransportError as exc:
                code, detail = "verbinding-mislukt", f"{type(exc).__name__}: {exc}"[:300]
            else:
                if response.status_code not in TRANSIENT_STATUS:
                    return response
                code, detail = _problem(response)
                after = response.headers.get("Retry-After", "")
                if after.isdigit():
                    wait = min(float(after), c.max_backoff_s)
            log.warning(
                "collect %s: %s: %s (%s), poging %d van %d",
                self.endpoint.name, what, code, detail, attempt, c.attempts,
            )  # fmt: skip
            if attempt == c.attempts:
                raise CollectError(code, f"{what}: {detail}", transient=True)
            await self._sleep(wait)
        raise AssertionError("unreachable")

    async def token(self, *, renew: bool = False) -> str:
        if self._token and not renew and time.monotonic() < self._token_until:
            return self._token
        secret = self.endpoint.client_secret()
        response = await self._send(
            "token",
            lambda: self.http.post(
                self.endpoint.token_url,
                data={"grant_type": "client_credentials", "scope": "read"},
                auth=(self.endpoint.client_id, secret),
                headers={"Accept": "application/json"},
            ),
        )
        if response.status_code != 200:
            code, detail = _problem(response)
            raise CollectError(code, f"token geweigerd: {detail}")
        try:
            body = response.json()
            token = body["access_token"]
            expires_in = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise CollectError(
                "token-ongeldig", "Het tokenantwoord heeft geen access_token."
            ) from None
        if not isinstance(token, str) or not token:
            raise CollectError("token-ongeldig", "Het tokenantwoord heeft geen access_token.")
        self._token = token
        self._token_until = time.monotonic() + max(0.0, expires_in - 5)
        return token

    async def page(self, periode: Periode, number: int, page_size: int) -> tuple[Page, bytes, str]:
        """Page `number`, verified: (the page, its body, its digest). Raises CollectError."""
        request: dict[str, Any] = {
            "aanleverperiodeStartdatum": periode.start.isoformat(),
            "aanleverperiodeEinddatum": periode.eind.isoformat(),
            "page": number,
            "pageSize": page_size,
        }
        if self.endpoint.organisation:
            request["aanleverende_organisatie"] = self.endpoint.organisation
        body = msgspec.json.encode(request)
        url = self.endpoint.url.rstrip("/") + "/gegevens"
        renewed = False
        while True:
            token = await self.token(renew=renewed)
            response = await self._send(
                f"pagina {number}",
                lambda token=token: self.http.post(  # type: ignore[misc]
                    url,
                    content=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Accept": "application/json",
                        DIGEST_HEADER: digest(body),
                    },
                ),
            )
            if response.status_code == 200:
                break
            code, detail = _problem(response)
            if code == "ERROR_CODE_ACCESS_TOKEN_EXPIRED" and not renewed:
                log.info(
                    "collect %s: token verlopen (%s); een nieuw token", self.endpoint.name, code
                )
                renewed = True
                continue
            raise CollectError(code, f"pagina {number}: {detail}")
        content = response.content
        try:
            verify(
                content,
                response.headers.get(DIGEST_HEADER),
                response.headers.get(SIGNATURE_HEADER),
                self.trust,
                dt.datetime.now(dt.UTC),
            )
            page = read_page(content, number)
        except (SignatureRefused, PageError) as exc:
            raise CollectError(exc.code, f"pagina {number}: {exc.detail}") from None
        if page.page_size is not None and page.page_size != page_size:
            raise CollectError(
                "paginering-onjuist",
                f"pagina {number}: pageSize {page_size} gevraagd, {page.page_size} ontvangen.",
            )
        return page, content, response.headers[DIGEST_HEADER]
