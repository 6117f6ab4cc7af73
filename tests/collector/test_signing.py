"""The Digest and nlgov-adr-payload-sig headers (ddas.supplier_api.signing): what the server
signs, the collector verifies, and each way a page can be wrong is refused with its own code."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from ddas.supplier_api.pki import Pki, make_pki
from ddas.supplier_api.signing import SignatureRefused, Signer, TrustStore, digest, verify

BODY = b'{"gegevens":{"leveringen":[]}}'


def header_of(signature: str) -> dict[str, object]:
    segment = signature.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def refused(body: bytes, dig: str | None, sig: str | None, trust: TrustStore, **kw: object) -> str:
    with pytest.raises(SignatureRefused) as info:
        verify(body, dig, sig, trust, **kw)  # type: ignore[arg-type]
    return info.value.code


def test_digest_is_rfc3230_sha256() -> None:
    assert digest(b"") == "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_a_signed_page_verifies_and_names_its_certificate(pki: Pki) -> None:
    signer = Signer(pki.leaf.key, pki.chain)
    sig = signer.sign(digest(BODY))
    head, payload, _ = sig.split(".")
    assert payload == ""  # detached
    header = header_of(sig)
    assert header["alg"] == "PS256" and header["typ"] == "JOSE" and header["b64"] is False
    assert header["sigD"] == {"mId": "http://uri.etsi.org/19182/HttpHeaders", "pars": ["digest"]}
    assert sorted(str(c) for c in header["crit"]) == ["b64", "sigD", "sigT"]  # type: ignore[attr-defined]
    assert len(header["x5c"]) == 2 and header["kid"] == signer.kid  # type: ignore[arg-type]
    cert = verify(BODY, digest(BODY), sig, TrustStore([pki.root.cert]))
    assert cert == pki.leaf.cert


def test_each_fault_has_its_own_reason(pki: Pki) -> None:
    trust = TrustStore([pki.root.cert])
    signer = Signer(pki.leaf.key, pki.chain)
    sig = signer.sign(digest(BODY))
    changed = BODY.replace(b"[]", b"[{}]")
    # the body changed after signing, its digest recomputed: only the signature catches it
    assert refused(changed, digest(changed), sig, trust) == "handtekening-onjuist"
    # the body changed and the digest not: the digest catches it
    assert refused(changed, digest(BODY), sig, trust) == "digest-onjuist"
    assert refused(BODY, None, sig, trust) == "digest-ontbreekt"
    assert refused(BODY, digest(BODY), None, trust) == "handtekening-ontbreekt"
    head, _, s = sig.split(".")
    payload = base64.urlsafe_b64encode(digest(BODY).encode()).decode().rstrip("=")
    assert refused(BODY, digest(BODY), f"{head}.{payload}.{s}", trust) == "handtekening-ongeldig"
    assert refused(BODY, digest(BODY), "niet-een-jws", trust) == "handtekening-ongeldig"


def test_a_chain_that_does_not_lead_to_the_trust_store_is_refused(pki: Pki) -> None:
    stranger = make_pki("Vreemde")
    sig = Signer(stranger.leaf.key, stranger.chain).sign(digest(BODY))
    assert refused(BODY, digest(BODY), sig, TrustStore([pki.root.cert])) == (
        "certificaat-niet-vertrouwd"
    )
    # the same chain is fine for who trusts its root
    verify(BODY, digest(BODY), sig, TrustStore([stranger.root.cert]))
    # a chain without its intermediate does not lead to the root either
    alone = Signer(stranger.leaf.key, [stranger.leaf.cert]).sign(digest(BODY))
    assert refused(BODY, digest(BODY), alone, TrustStore([stranger.root.cert])) == (
        "certificaat-niet-vertrouwd"
    )


def test_an_expired_signing_certificate_is_refused() -> None:
    now = dt.datetime.now(dt.UTC)
    old = make_pki("Oud", leaf_not_before=now - dt.timedelta(days=30), leaf_days=10)
    sig = Signer(old.leaf.key, old.chain).sign(digest(BODY))
    assert refused(BODY, digest(BODY), sig, TrustStore([old.root.cert])) == "certificaat-verlopen"
    # it was valid while it lasted
    verify(BODY, digest(BODY), sig, TrustStore([old.root.cert]), now=now - dt.timedelta(days=25))


def test_a_signer_refuses_a_chain_that_is_not_its_key(pki: Pki) -> None:
    with pytest.raises(ValueError):
        Signer(make_pki("Ander").leaf.key, pki.chain)
