"""Payload integrity and authenticity of the DDAS pull API (DDAS-SHV.yaml).

- `Digest` (RFC 3230): `SHA-256=<base64 of the SHA-256 of the body>`.
- `nlgov-adr-payload-sig`: a JWS in compact serialisation with a detached payload, per the
  Geonovum ADR signing module (JAdES, ETSI TS 119 182-1): protected header `alg` PS256, `typ`
  JOSE, `kid`, `x5c` (the certificate chain, signing certificate first), `sigT` (signing time),
  `sigD` {mId `http://uri.etsi.org/19182/HttpHeaders`, pars [`digest`]}: only the digest is
  signed, and with the HttpHeaders mechanism `b64` is false (RFC 7797), so the signed data is the
  header line itself, `digest: SHA-256=...`; `crit` names `b64`, `sigT` and `sigD`.

`verify(...)` checks, in this order, and raises `SignatureRefused` with a stable `code` for the
first that fails: the body against the Digest (`digest-onjuist`), the header's form
(`handtekening-ongeldig`), the certificate chain against the trust store at the given time
(`certificaat-verlopen`, `certificaat-niet-vertrouwd`) and the signature over the digest with the
signing certificate's key (`handtekening-onjuist`). JWS handling is joserfc's; certificate
path validation is cryptography's (x509.verification). Revocation (OCSP/CRL), which the spec also
asks for, is not checked here: PKIoverheid revocation needs the network (noted in the README).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from joserfc.registry import HeaderParameter

__all__ = [
    "DIGEST_HEADER",
    "SIGNATURE_HEADER",
    "SignatureRefused",
    "Signer",
    "TrustStore",
    "digest",
    "verify",
]

DIGEST_HEADER: Final = "Digest"
SIGNATURE_HEADER: Final = "nlgov-adr-payload-sig"
HTTP_HEADERS_MECHANISM: Final = "http://uri.etsi.org/19182/HttpHeaders"
ALG: Final = "PS256"


def digest(body: bytes) -> str:
    """The Digest header's value for `body`."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def _signed_data(digest_value: str) -> bytes:
    # The HttpHeaders mechanism with pars ["digest"]: the header line, name in lower case.
    return f"digest: {digest_value}".encode("ascii")


def _is_str(value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError("must be a string")


def _is_sig_d(value: Any) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("pars"), list):
        raise ValueError("must be an object with mId and pars")


class _Registry(jws.JWSRegistry):
    # The x5c chain makes the protected header several kB: joserfc's default cap is 512 bytes.
    max_header_length = 64 * 1024
    max_signature_length = 2048


_REGISTRY: Final = _Registry(
    header_registry={
        "sigT": HeaderParameter("Claimed signing time (JAdES)", _is_str),
        "sigD": HeaderParameter("Signed data description (JAdES)", _is_sig_d),
    },
    algorithms=[ALG],
)


class SignatureRefused(Exception):
    """A page whose digest or signature does not hold. `code` is stable (logged, stored);
    `detail` says why in Dutch, without personal data."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class Signer:
    """Signs digests with a private key and its certificate chain (signing certificate first)."""

    def __init__(
        self, key: rsa.RSAPrivateKey, chain: Sequence[x509.Certificate], kid: str | None = None
    ) -> None:
        if not chain:
            raise ValueError("a certificate chain is needed (the signing certificate first)")
        leaf_key = chain[0].public_key()
        if (
            not isinstance(leaf_key, rsa.RSAPublicKey)
            or leaf_key.public_numbers() != key.public_key().public_numbers()
        ):
            raise ValueError("the first certificate of the chain is not the key's certificate")
        self._key = RSAKey.import_key(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.chain = list(chain)
        self.kid = kid or base64.urlsafe_b64encode(
            chain[0].fingerprint(hashes.SHA256())
        ).decode().rstrip("=")
        self._x5c = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain
        ]

    @classmethod
    def from_pem(cls, key_pem: bytes, chain_pem: bytes, kid: str | None = None) -> Signer:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("PS256 needs an RSA key")
        return cls(key, x509.load_pem_x509_certificates(chain_pem), kid)

    def sign(self, digest_value: str, now: dt.datetime | None = None) -> str:
        """The nlgov-adr-payload-sig value over `digest_value` (detached: `header..signature`)."""
        when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        protected = {
            "alg": ALG,
            "typ": "JOSE",
            "kid": self.kid,
            "x5c": self._x5c,
            "sigT": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sigD": {"mId": HTTP_HEADERS_MECHANISM, "pars": ["digest"]},
            "b64": False,
            "crit": ["b64", "sigT", "sigD"],
        }
        token = jws.serialize_compact(
            protected, _signed_data(digest_value), self._key, registry=_REGISTRY
        )
        header, _, signature = token.split(".")
        return f"{header}..{signature}"


class TrustStore:
    """The root certificates a signature's chain must lead to (PEM, one or more)."""

    def __init__(self, roots: Sequence[x509.Certificate]) -> None:
        if not roots:
            raise ValueError("the trust store holds no certificate")
        self.roots = list(roots)
        self._store = Store(self.roots)

    @classmethod
    def from_pem(cls, pem: bytes) -> TrustStore:
        return cls(x509.load_pem_x509_certificates(pem))

    def validate(self, chain: Sequence[x509.Certificate], at: dt.datetime) -> None:
        """Raises SignatureRefused unless `chain` (leaf first) leads to a trusted root at `at`."""
        for cert in chain:
            if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
                raise SignatureRefused(
                    "certificaat-verlopen",
                    f"Het certificaat '{cert.subject.rfc4514_string()}' is niet geldig op "
                    f"{at:%Y-%m-%d %H:%M} UTC (geldig van {cert.not_valid_before_utc:%Y-%m-%d} "
                    f"tot {cert.not_valid_after_utc:%Y-%m-%d}).",
                )
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(at)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(chain[0], list(chain[1:]))
        except VerificationError as exc:
            raise SignatureRefused(
                "certificaat-niet-vertrouwd",
                f"De certificaatketen van '{chain[0].subject.rfc4514_string()}' leidt niet naar "
                f"een vertrouwd rootcertificaat ({exc}).",
            ) from None


def _b64url_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))


def _malformed(detail: str) -> SignatureRefused:
    return SignatureRefused("handtekening-ongeldig", detail)


def verify(
    body: bytes,
    digest_value: str | None,
    signature: str | None,
    trust: TrustStore,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Check a response's body, Digest and nlgov-adr-payload-sig (see the module docstring).
    Returns the signing certificate; raises SignatureRefused."""
    if not digest_value:
        raise SignatureRefused("digest-ontbreekt", "Het antwoord heeft geen Digest-header.")
    if not hmac.compare_digest(digest_value.strip(), digest(body)):
        raise SignatureRefused(
            "digest-onjuist",
            "De Digest-header past niet bij de ontvangen gegevens (SHA-256 verschilt).",
        )
    if not signature:
        raise SignatureRefused(
            "handtekening-ontbreekt", "Het antwoord heeft geen nlgov-adr-payload-sig-header."
        )
    parts = signature.strip().split(".")
    if len(parts) != 3 or parts[1]:
        raise _malformed(
            "De handtekening is geen JWS met losgekoppelde inhoud (header..handtekening)."
        )
    try:
        header = _b64url_json(parts[0])
    except (ValueError, binascii.Error):
        raise _malformed("De beschermde JWS-header is geen leesbare JSON.") from None
    if not isinstance(header, dict):
        raise _malformed("De beschermde JWS-header is geen JSON-object.")
    if header.get("alg") != ALG:
        raise _malformed(f"Het algoritme is {header.get('alg')!r}; de API vraagt PS256.")
    sig_d = header.get("sigD")
    if (
        not isinstance(sig_d, dict)
        or sig_d.get("mId") != HTTP_HEADERS_MECHANISM
        or sig_d.get("pars") != ["digest"]
        or header.get("b64") is not False
    ):
        raise _malformed(
            "De handtekening moet alleen de digest tekenen (sigD HttpHeaders met pars "
            "['digest'], b64 false)."
        )
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
        raise _malformed("De handtekening heeft geen certificaatketen (x5c).")
    try:
        chain = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c]
    except (ValueError, binascii.Error):
        raise _malformed("Een certificaat in x5c is niet leesbaar.") from None
    trust.validate(chain, (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
    public = chain[0].public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise _malformed("Het ondertekeningscertificaat heeft geen RSA-sleutel (PS256).")
    key = RSAKey.import_key(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    try:
        jws.deserialize_compact(
            signature.strip(), key, registry=_REGISTRY, payload=_signed_data(digest_value.strip())
        )
    except JoseError as exc:
        raise SignatureRefused(
            "handtekening-onjuist",
            f"De handtekening klopt niet bij de digest ({exc.error}): de gegevens zijn na het "
            "ondertekenen gewijzigd of met een andere sleutel ondertekend.",
        ) from None
    return chain[0]
