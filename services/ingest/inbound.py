"""The Kafka way in: supplier delivery events on `ddas.leveringen.aangeboden.v1`.

An event is a CloudEvents 1.0 structured-mode JSON message::

    {"specversion": "1.0", "type": "nl.ddas.levering.aangeboden.v1",
     "source": "urn:ddas:leverancier:<code>", "id": "<unique per event>",
     "datacontenttype": "application/json",
     "ddastoken": "<signed token>",
     "data": <the SHV document itself>}                      (inline, when it fits a message)
  or "data_base64": "<the SHV file's bytes, base64>"          (inline, byte for byte)
  or "data": {"url": "https://...", "sha256": "<64 hex>"}    (ingest downloads and verifies)

The inline document's bytes are taken exactly as they stand in the message (the `data` member's
JSON text, or the decoded `data_base64`), so the same file delivered over HTTP and inline has the
same content hash: one delivery. (The `data` member's text cannot hold white space around the
document; a file that ends in a newline is the same delivery over both ways only by
`data_base64`, which carries the bytes exactly.)

**The signed token** (`ddastoken`, a CloudEvents extension attribute): a JWT (RFC 7519, HS256,
PyJWT) that the supplier makes per event with `sign_event_token` or any JWT library:

- key: the 32 bytes of SHA-256 of the supplier's API token (the one `ddas supplier add` printed:
  the platform stores only that hash, and the supplier can compute it);
- header `kid`: the first 16 hex characters of that hash (which of its tokens signed);
- claims: `iss` the supplier code, `iat` and `exp` (at most `token_max_age_s` apart and not
  expired), `jti` the event's `id`, and `sha256` the SHA-256 (hex) of the document's bytes
  (for a URL event: the `sha256` of `data`).

The token thus proves the supplier (like the bearer token over HTTP) and binds the event id and
the content: a token copied onto other content is refused. A revoked API token revokes its
signatures.

Outcomes: a valid event is taken in exactly like an HTTP delivery (`Intake.submit`, via
"kafka"). A refused one (not a CloudEvent, a bad token, a wrong digest, a refusal of the intake)
is written to the audit log with its reason and its offset committed: it cannot become valid by
retrying. A download is tried `download_tries` times before the event is refused. Any other
failure raises: the service's retrier (ddas.deadletter) retries it while the database is away
and dead-letters an event that keeps failing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
import urllib.parse
from typing import Any, Final

import httpx
import jwt
import msgspec
from msgspec import UNSET, Raw, UnsetType

from ddas.api import Refused
from ddas.audit import audit
from ddas.registry import Principal, Registry

from . import metrics
from .intake import Intake, too_large

log = logging.getLogger("services.ingest.inbound")

EVENT_TYPE: Final = "nl.ddas.levering.aangeboden.v1"


class Envelope(msgspec.Struct):
    specversion: str
    type: str
    source: str
    id: str
    ddastoken: str | None | UnsetType = UNSET
    datacontenttype: str | UnsetType = UNSET
    data: Raw | UnsetType = UNSET
    data_base64: str | UnsetType = UNSET


class Verwijzing(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    sha256: str


_ENVELOPE: Final = msgspec.json.Decoder(Envelope)
_VERWIJZING: Final = msgspec.json.Decoder(Verwijzing)


def _refuse(slug: str, detail: str, status: int = 400) -> Refused:
    titles = {400: "Ongeldig aanbiedingsbericht", 401: "Niet geauthenticeerd", 403: "Geweigerd"}
    return Refused(status, slug, titles.get(status, "Geweigerd"), detail)


# -- for suppliers (and tests) ----------------------------------------------------------------


def sign_event_token(
    api_token: str,
    leverancier: str,
    event_id: str,
    content_sha256: str,
    *,
    lifetime: int = 300,
    now: float | None = None,
) -> str:
    """The `ddastoken` of one event (see the module docstring)."""
    key = hashlib.sha256(api_token.encode()).digest()
    issued = int(now if now is not None else time.time())
    return jwt.encode(
        {
            "iss": leverancier,
            "iat": issued,
            "exp": issued + lifetime,
            "jti": event_id,
            "sha256": content_sha256,
        },
        key,
        algorithm="HS256",
        headers={"kid": key.hex()[:16]},
    )


def make_event(
    api_token: str,
    leverancier: str,
    *,
    document: bytes | None = None,
    url: str | None = None,
    sha256: str | None = None,
    event_id: str | None = None,
    base64_data: bool = False,
) -> bytes:
    """A delivery event as bytes: the document inline (`document`) or by reference (`url` and
    the document's `sha256`). Signed with the supplier's API token."""
    import uuid

    event_id = event_id or str(uuid.uuid4())
    event: dict[str, Any] = {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": f"urn:ddas:leverancier:{leverancier}",
        "id": event_id,
        "datacontenttype": "application/json",
    }
    if document is not None:
        if not base64_data:
            # As the `data` member, the document is its JSON text without surrounding white
            # space: that is what the receiver sees, hashes and verifies.
            document = document.strip()
        digest = hashlib.sha256(document).hexdigest()
        if base64_data:
            event["data_base64"] = base64.b64encode(document).decode()
    else:
        if url is None or sha256 is None:
            raise ValueError("give the document, or a url and its sha256")
        digest = sha256
        event["data"] = {"url": url, "sha256": sha256}
    event["ddastoken"] = sign_event_token(api_token, leverancier, event_id, digest)
    text = msgspec.json.encode(event)
    if document is not None and not base64_data:
        # The document's own bytes as the data member, untouched.
        text = text[:-1] + b',"data":' + document + b"}"
    return text


# -- the consumer's side ----------------------------------------------------------------------


class Inbound:
    def __init__(
        self,
        intake: Intake,
        registry: Registry,
        *,
        token_max_age: int = 3600,
        download_timeout: float = 60.0,
        download_hosts: list[str] | None = None,
        transient_backoff: float = 1.0,
        download_tries: int = 3,
    ) -> None:
        self.intake = intake
        self.registry = registry
        self.token_max_age = token_max_age
        self.download_timeout = download_timeout
        self.download_hosts = [h.lower() for h in download_hosts or []]
        self.transient_backoff = transient_backoff
        self.download_tries = download_tries

    async def handle(self, value: bytes) -> str:
        """Handle one event; returns the outcome ("ontvangen", "dubbel", "geweigerd").
        Raises on a transient failure (the event is then delivered again)."""
        principal: Principal | None = None
        event_id = ""
        try:
            envelope = self._decode(value)
            event_id = envelope.id
            self._check(envelope)
            principal, claims = await self._verify(envelope)
            raw = await self._document(envelope, claims)
            accepted = await self.intake.submit(raw, principal, "kafka")
        except Refused as refused:
            metrics.REFUSED.labels(via="kafka", status=str(refused.status)).inc()
            log.warning("aanbieding %r geweigerd: %s", event_id[:80], refused)
            await audit(
                self.intake.pool,
                principal.actor if principal else "anoniem",
                "levering.aangeboden",
                "geweigerd",
                via="kafka",
                status=refused.status,
                probleem=refused.slug,
                detail=refused.detail,
                event_id=event_id[:200],
            )
            return "geweigerd"
        metrics.ACCEPTED.labels(via="kafka", nieuw=str(accepted.nieuw).lower()).inc()
        log.info("aanbieding %s: levering %s", event_id[:80], accepted.levering_id)
        return "ontvangen" if accepted.nieuw else "dubbel"

    def _decode(self, value: bytes) -> Envelope:
        if len(value) > self.intake.limits.max_bytes * 2:
            raise too_large(self.intake.limits.max_bytes)
        try:
            return _ENVELOPE.decode(value)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise _refuse(
                "geen-cloudevent", f"Geen CloudEvent (JSON, structured mode): {exc}"
            ) from None

    @staticmethod
    def _check(envelope: Envelope) -> None:
        if envelope.specversion != "1.0":
            raise _refuse("geen-cloudevent", "specversion moet '1.0' zijn.")
        if envelope.type != EVENT_TYPE:
            raise _refuse("onbekend-type", f"type moet '{EVENT_TYPE}' zijn.")
        if isinstance(envelope.data, UnsetType) == isinstance(envelope.data_base64, UnsetType):
            raise _refuse("geen-data", "Het bericht heeft precies één van data en data_base64.")

    async def _verify(self, envelope: Envelope) -> tuple[Principal, dict[str, Any]]:
        token = envelope.ddastoken
        if not isinstance(token, str) or not token:
            raise _refuse("geen-token", "Het bericht heeft geen ddastoken.", 401)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _refuse("token-ongeldig", "ddastoken is geen JWT.", 401) from None
        leverancier, kid = unverified.get("iss"), header.get("kid")
        if not isinstance(leverancier, str) or not isinstance(kid, str) or len(kid) < 16:
            raise _refuse("token-ongeldig", "ddastoken mist iss of kid.", 401)
        candidates = [
            p for p in await self.registry.supplier_keys(leverancier) if p.token_hash[:16] == kid
        ]
        for principal in candidates:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    bytes.fromhex(principal.token_hash),
                    algorithms=["HS256"],
                    issuer=leverancier,
                    options={"require": ["exp", "iat", "iss", "jti", "sha256"]},
                )
            except jwt.PyJWTError:
                continue
            if claims["jti"] != envelope.id:
                raise _refuse("token-ongeldig", "ddastoken hoort bij een ander bericht (jti).", 401)
            if not isinstance(claims["iat"], int | float) or (
                claims["exp"] - claims["iat"] > self.token_max_age
            ):
                raise _refuse("token-ongeldig", "ddastoken is te lang geldig.", 401)
            return principal, claims
        raise _refuse("token-ongeldig", "ddastoken is onjuist, verlopen of ingetrokken.", 401)

    async def _document(self, envelope: Envelope, claims: dict[str, Any]) -> bytes:
        limit = self.intake.limits.max_bytes
        if not isinstance(envelope.data_base64, UnsetType):
            try:
                raw = base64.b64decode(envelope.data_base64, validate=True)
            except (binascii.Error, ValueError):
                raise _refuse("geen-data", "data_base64 is geen geldige base64.") from None
            return self._check_digest(raw, claims["sha256"])
        assert not isinstance(envelope.data, UnsetType)
        data = bytes(envelope.data)
        try:
            ref = _VERWIJZING.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            if len(data) > limit:
                raise too_large(limit) from None
            return self._check_digest(data, claims["sha256"])
        expected = ref.sha256.strip().lower()
        if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
            raise _refuse("digest-onjuist", "sha256 moet 64 hexadecimale tekens zijn.")
        if claims["sha256"] != expected:
            raise _refuse("token-ongeldig", "ddastoken hoort bij andere inhoud (sha256).", 401)
        raw = await self._download(ref.url, limit)
        return self._check_digest(raw, expected)

    @staticmethod
    def _check_digest(raw: bytes, expected: str) -> bytes:
        if hashlib.sha256(raw).hexdigest() != str(expected).lower():
            raise _refuse(
                "digest-onjuist",
                "De SHA-256 van het document klopt niet met de opgegeven sha256.",
            )
        return raw

    async def _download(self, url: str, limit: int) -> bytes:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _refuse("url-ongeldig", "url moet een http(s)-adres zijn.")
        if self.download_hosts and parts.hostname.lower() not in self.download_hosts:
            raise _refuse("url-ongeldig", f"Downloaden van {parts.hostname} is niet toegestaan.")
        problem = ""
        for attempt in range(self.download_tries):
            if attempt:
                await asyncio.sleep(self.transient_backoff * 2 ** (attempt - 1))
            try:
                return await self._fetch(url, limit)
            except httpx.TransportError as exc:  # the supplier's server is away: try again
                problem = type(exc).__name__
            except _ServerError as exc:
                problem = f"HTTP {exc.status}"
        raise _refuse(
            "download-mislukt",
            f"Het document is niet op te halen ({problem}, {self.download_tries} pogingen).",
        )

    async def _fetch(self, url: str, limit: int) -> bytes:
        async with (
            httpx.AsyncClient(timeout=self.download_timeout, follow_redirects=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 500:
                raise _ServerError(response.status_code)
            if response.status_code != 200:
                raise _refuse(
                    "download-mislukt",
                    f"Het document is niet op te halen (HTTP {response.status_code}).",
                )
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise too_large(limit)
            body = bytearray()
            async for part in response.aiter_bytes():
                body += part
                if len(body) > limit:
                    raise too_large(limit)
        return bytes(body)


class _ServerError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status
