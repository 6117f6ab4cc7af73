"""A throwaway certificate authority: a root, an intermediate and a signing certificate with
their RSA keys, made in memory with `cryptography`. For a reference server started without a
key and chain of its own (it prints where it wrote the root, for the collector's trust store)
and for tests. Never a substitute for a PKIoverheid certificate."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Issued", "Pki", "make_pki"]


@dataclass(frozen=True)
class Issued:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Pki:
    root: Issued
    intermediate: Issued
    leaf: Issued

    @property
    def chain(self) -> list[x509.Certificate]:
        """The signing certificate's chain as x5c carries it: leaf, then intermediate."""
        return [self.leaf.cert, self.intermediate.cert]

    def chain_pem(self) -> bytes:
        return self.leaf.cert_pem() + self.intermediate.cert_pem()


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DDAS test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _issue(
    cn: str,
    issuer: Issued | None,
    *,
    ca: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
    path_length: int | None = None,
) -> Issued:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(cn)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),  # fmt: skip
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),  # fmt: skip
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(key, cert)


def make_pki(
    name: str = "DDAS test",
    *,
    now: dt.datetime | None = None,
    leaf_days: int = 365,
    leaf_not_before: dt.datetime | None = None,
) -> Pki:
    """A root, an intermediate and a signing certificate. `leaf_not_before`/`leaf_days` make an
    expired or not-yet-valid signing certificate for tests."""
    now = now or dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=365)
    root = _issue(f"{name} root", None, ca=True, not_before=start,
                  not_after=now + dt.timedelta(days=3650), path_length=1)  # fmt: skip
    intermediate = _issue(f"{name} intermediate", root, ca=True, not_before=start,
                          not_after=now + dt.timedelta(days=1825), path_length=0)  # fmt: skip
    leaf_start = leaf_not_before or now - dt.timedelta(days=1)
    leaf = _issue(
        f"{name} ondertekening",
        intermediate,
        ca=False,
        not_before=leaf_start,
        not_after=leaf_start + dt.timedelta(days=leaf_days),
    )
    return Pki(root, intermediate, leaf)
