"""The privacy edge: a SHV document's pseudonymised form (docs/pipeline.md, "The privacy edge").

Raw BSNs and other identifying values exist only in ingest's memory; only this form goes to Kafka
or PostgreSQL. The invariant the tests hold it to (tests/domain/test_pseudonym.py): the schema
findings, the rule findings and the two DDAS-app tables of the pseudonymised document are exactly
those of the raw document, so validate runs the same code as `ddas check`.

How each value is rewritten, driven by the official schema (compiled once at import):

- a client's `Burgerservicenummer`, when it is a string, becomes `HMAC-SHA256(key, trimmed BSN)`
  as 64 hex characters, and the client gets `bsnControle`: `{"elfproef", "genormaliseerd",
  "leeg", "pseudoniem"}` (the 11-check of the normalised BSN; whether normalising changed it into
  9 digits, i.e. `bsn.genormaliseerd` fires; whether it is empty after normalising; the HMAC of
  the normalised BSN). A BSN that is blank after trimming stays blank (see "blank" below): the
  tables do not count it and the rules then identify the client by the other four fields.
- `Geboortedatum`, `Postcode`, `Huisnummer`, `Huisnummertoevoeging` and free text (the
  trajectory's and uitstroom's `omschrijving`, the organisation's name and postcode, its contact
  persons' names, job titles and phone numbers, a creditor's name, KvK number and postcode):
  a string becomes `"*"`.
- e-mail addresses become `geldig@ddas.invalid` or `ongeldig`, by the schema's own `email`
  format check; a string that is not in its enum becomes `"*"` (no enum holds `"*"`).
- dates, codes, enum values, amounts and booleans stay as delivered: the rules, the tables and
  the later figures need them, and they identify no one. `Geslachtsaanduiding` stays as
  delivered when it is a gender code (`GESLACHTEN`: the schema's `geslacht` values and the
  one-letter codes suppliers use, in any case); anything else there is free text and becomes
  `"*"` (the rules only ask whether it is blank).
- a value of the wrong JSON type for its place (the schema's `schema.type` finding) becomes a
  placeholder of the same type that keeps what the rules look at, its truthiness:
  `"*"`, `0`/`1`, `0.0`/`1.0`/`0.5` (an integral float stays integral), `[]`/`[0]`,
  `{}`/`{"*": 0}`; `null` and booleans stay.
- blank: a string that is empty stays `""` and a string of only white space becomes `" "`, in
  every place above. Both say nothing about a person, and the rules tell "absent or blank" from
  "present" by exactly that (`value.strip()`, truthiness).
- unknown members are dropped where the schema allows them (they could hold anything and nothing
  reads them); where it does not (`additionalProperties: false`: the root, a levering, a
  trajectory) the member's name is kept, for the `schema.additionalProperties` finding at it, and
  its value becomes a placeholder.

The key is a per-deployment secret from configuration (`load_key`): there is no default key
outside test mode.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from ddas.domain import bsn as bsn_mod
from ddas.domain.reader import ABSENT, ArrayShape, Document, LeveringHeader, Traject
from ddas.domain.schema import official
from ddas.domain.schema.fast import Options, compile_decoder
from ddas.domain.schema.formats import is_email
from ddas.domain.schema.vocabulary import keywords_of, resolve

__all__ = [
    "BSN_CONTROLE",
    "GELDIG_EMAIL",
    "ONGELDIG_EMAIL",
    "MissingPseudonymKey",
    "Pseudonymiser",
    "TEST_KEY",
    "contact_emails",
    "load_key",
    "pseudonymise_bytes",
]

BSN_CONTROLE: Final = "bsnControle"
GELDIG_EMAIL: Final = "geldig@ddas.invalid"
ONGELDIG_EMAIL: Final = "ongeldig"
STER: Final = "*"

#: The key used in test mode only (DDAS_TEST_MODE=1), never in a deployment.
TEST_KEY: Final = b"ddas-test-mode-pseudonym-key-not-for-production"
MIN_KEY_BYTES: Final = 32


class MissingPseudonymKey(RuntimeError):
    """No usable pseudonym key is configured (outside test mode). One-line Dutch reason."""


def load_key(
    key: str | None = None, key_file: str | os.PathLike[str] | None = None, *, test_mode: bool
) -> bytes:
    """The pseudonym key: `key` (DDAS_PSEUDONYM_KEY) or the contents of `key_file`
    (DDAS_PSEUDONYM_KEY_FILE, surrounding white space stripped); in test mode without either,
    `TEST_KEY`. A key must be at least 32 bytes (e.g. `openssl rand -hex 32`)."""
    value: bytes | None = None
    if key:
        value = key.strip().encode()
    elif key_file:
        try:
            value = Path(key_file).read_bytes().strip()
        except OSError as exc:
            raise MissingPseudonymKey(
                f"het pseudonimiseringssleutelbestand kan niet worden gelezen ({exc.strerror})"
            ) from None
    if not value:
        if test_mode:
            return TEST_KEY
        raise MissingPseudonymKey(
            "geen pseudonimiseringssleutel: zet DDAS_PSEUDONYM_KEY of DDAS_PSEUDONYM_KEY_FILE "
            "(bijvoorbeeld `openssl rand -hex 32`); alleen in testmodus (DDAS_TEST_MODE=1) is er "
            "een vaste testsleutel"
        )
    if len(value) < MIN_KEY_BYTES:
        raise MissingPseudonymKey(
            f"de pseudonimiseringssleutel is te kort: minstens {MIN_KEY_BYTES} tekens"
        )
    return value


# -- placeholders ---------------------------------------------------------------------------


def _tekst(value: str) -> str:
    """A string's placeholder: "*", or "" / " " for an empty / blank one."""
    if value.strip():
        return STER
    return " " if value else ""


def placeholder(value: Any) -> Any:
    """A value of the same JSON type with the same truthiness and nothing of the original."""
    t = type(value)
    if t is str:
        return _tekst(value)
    if t is bool or value is None:
        return value
    if t is int:
        return 1 if value else 0
    if t is float:
        if value == 0:
            return 0.0
        return 1.0 if (math.isinf(value) or value.is_integer()) else 0.5
    if t is list:
        return [0] if value else []
    if t is dict:
        return {STER: 0} if value else {}
    return None  # pragma: no cover - JSON has no other types


# -- the schema, compiled into rewriting functions ------------------------------------------

_Rewrite = Callable[[Any], Any]

# What happens to a string at a place the schema describes as a string, by path below the part.
_KEEP, _STAR, _EMAIL = "keep", "star", "email"
_CLIENT_IDENTITEIT = ("Geboortedatum", "Postcode", "Huisnummer", "Huisnummertoevoeging")
_VRIJE_TEKST: Final[dict[tuple[str, ...], str]] = {
    ("omschrijving",): _STAR,
    ("uitstroom", "omschrijving"): _STAR,
    ("aanleverende_organisatie", "(Statutaire) Naam"): _STAR,
    ("aanleverende_organisatie", "postcode"): _STAR,
    ("aanleverende_organisatie", "contactpersonen", "naam"): _STAR,
    ("aanleverende_organisatie", "contactpersonen", "functietitel"): _STAR,
    ("aanleverende_organisatie", "contactpersonen", "telefoonnummer"): _STAR,
    ("schulden", "schuldeiser", "naam"): _STAR,
    ("schulden", "schuldeiser", "Naam"): _STAR,
    ("schulden", "schuldeiser", "kvknummer"): _STAR,
    ("schulden", "schuldeiser", "postcode"): _STAR,
    **{("client", k): _STAR for k in _CLIENT_IDENTITEIT},
}
#: Gender codes kept as delivered (compared case-insensitively): the schema's `geslacht`
#: values and the one-letter codes suppliers use. Anything else in Geslachtsaanduiding is free
#: text (a name typed in the wrong field, say) and becomes "*".
GESLACHTEN: Final = frozenset(
    {"m", "v", "o", "x", "u", "man", "vrouw", "onbekend", "leeg", "overig", "anders"}
)


def _geslacht(value: Any) -> Any:
    if type(value) is not str:
        return placeholder(value)
    return value if value.strip().lower() in GESLACHTEN else _tekst(value)


_TYPE_OK: Final[dict[str, Callable[[Any], bool]]] = {
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int or (type(v) is float and math.isfinite(v)),
    "number": lambda v: type(v) is int or (type(v) is float and math.isfinite(v)),
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def _compile(
    schema: Mapping[str, Any], path: tuple[str, ...], bsn: _Rewrite, client: bool = False
) -> _Rewrite:
    schema = resolve(schema, official.SCHEMA, "/".join(path))
    kind = keywords_of(schema, "/".join(path))
    if kind == "object":
        props = {
            k: _compile(sub, (*path, k), bsn, client=path == ("client",))
            for k, sub in schema.get("properties", {}).items()
        }
        closed = schema.get("additionalProperties", True) is False
        if path == ("client",):
            return _client_rewrite(props, bsn)
        return _object_rewrite(props, closed)
    if kind == "array":
        items = schema.get("items")
        item = placeholder if items is None else _compile(items, path, bsn)

        def array(value: Any) -> Any:
            if type(value) is not list:
                return placeholder(value)
            return [item(v) for v in value]

        return array
    if kind == "string":
        if client and path[-1] == "Burgerservicenummer":
            return bsn
        if client and path[-1] == "Geslachtsaanduiding":
            return _geslacht
        if "enum" in schema:
            allowed = frozenset(schema["enum"])
            assert STER not in allowed and " " not in allowed, "a placeholder is an enum value"

            def enum(value: Any) -> Any:
                return value if type(value) is str and value in allowed else placeholder(value)

            return enum
        action = _EMAIL if schema.get("format") == "email" else _VRIJE_TEKST.get(path, _KEEP)
        if action == _EMAIL:

            def email(value: Any) -> Any:
                if type(value) is not str:
                    return placeholder(value)
                return GELDIG_EMAIL if is_email(value) else ONGELDIG_EMAIL

            return email
        if action == _STAR:

            def star(value: Any) -> Any:
                return _tekst(value) if type(value) is str else placeholder(value)

            return star
    ok = _TYPE_OK[kind]

    def keep(value: Any) -> Any:
        return value if ok(value) else placeholder(value)

    return keep


def _object_rewrite(props: dict[str, _Rewrite], closed: bool) -> _Rewrite:
    def rewrite(value: Any) -> Any:
        if type(value) is not dict:
            return placeholder(value)
        out = {}
        for k, v in value.items():
            f = props.get(k)
            if f is not None:
                out[k] = f(v)
            elif closed:  # the member's name is the finding's pointer; its value is gone
                out[k] = placeholder(v)
        return out

    return rewrite


def _client_rewrite(props: dict[str, _Rewrite], bsn: _Rewrite) -> _Rewrite:
    rewrite_members = _object_rewrite(props, closed=False)

    def client(value: Any) -> Any:
        out = rewrite_members(value)
        if type(value) is dict:
            raw = value.get("Burgerservicenummer")
            if type(raw) is str:
                out[BSN_CONTROLE] = bsn(_Controle(raw))
        return out

    return client


class BsnControle(msgspec.Struct, gc=False):
    """A client's `bsnControle` on the typed path (the same members, in the same order, as the
    schema walk's dict; see the module docstring)."""

    elfproef: bool
    genormaliseerd: bool
    leeg: bool
    pseudoniem: str


#: The typed path: the schema's fast-path types (ddas.domain.schema.fast), with absent members
#: left out when encoded and a `bsnControle` field on a client. It accepts a trajectory only when
#: the schema's fast path does (the extra field can only make it stricter): every member is then
#: of its type, and every unknown member of an open part is already gone.
_TYPED: Final = compile_decoder(
    official.TRAJECT,
    official.SCHEMA,
    "Schuldhulptraject",
    Options(
        omit_defaults=True,
        extra={"Schuldhulptraject.client[]": [(BSN_CONTROLE, BsnControle | None, None)]},
    ),
)
#: The free text of the typed path, by struct: a trajectory's, uitstroom's and a creditor's.
_TRAJECT_TEKST: Final = tuple(path[0] for path in _VRIJE_TEKST if len(path) == 1)
_UITSTROOM_TEKST: Final = tuple(path[1] for path in _VRIJE_TEKST if path[0] == "uitstroom")
_SCHULDEISER_TEKST: Final = tuple(
    path[2] for path in _VRIJE_TEKST if path[:2] == ("schulden", "schuldeiser")
)
_CLIENT_TEKST: Final = _CLIENT_IDENTITEIT
assert {path for path in _VRIJE_TEKST if path[0] != "aanleverende_organisatie"} == {
    *((name,) for name in _TRAJECT_TEKST),
    *(("uitstroom", name) for name in _UITSTROOM_TEKST),
    *(("schulden", "schuldeiser", name) for name in _SCHULDEISER_TEKST),
    *(("client", name) for name in _CLIENT_TEKST),
}, "free text in a trajectory that the typed path does not rewrite"
#: The gender codes as they are usually written, kept without normalising (`_geslacht` decides
#: for any other string).
_GESLACHT_CODES: Final = frozenset(v for g in GESLACHTEN for v in (g, g.upper(), g.capitalize()))


def _ster(value: str | None) -> str | None:
    """Free text on the typed path (a string or absent): its placeholder (`_tekst`)."""
    return None if value is None else _tekst(value)


@dataclass(frozen=True, slots=True)
class _Controle:
    """Marks a request for the bsnControle of a raw BSN (the same rewrite function serves)."""

    raw: str


class Pseudonymiser:
    """Rewrites the parts of a SHV document into their pseudonymised form, with one key.

    The parts are those of `ddas.domain.reader`: `root(header)` (the root without `leveringen`),
    `levering(header)` (a levering without `schuldhulptrajecten`, or a non-object levering's
    value) and `traject(value)`.
    """

    __slots__ = ("_inner", "_key", "_levering", "_outer", "_root", "_traject")

    def __init__(self, key: bytes) -> None:
        if not key:
            raise MissingPseudonymKey("een lege pseudonimiseringssleutel")
        self._key = key
        # HMAC (RFC 2104) with the key's inner and outer SHA-256 states computed once: a copy of
        # a keyed state per value is about 3x cheaper than `hmac.digest` keying anew each time.
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        assert self.hmac("0") == hmac.digest(key, b"0", "sha256").hex()
        schema = official.SCHEMA
        root_schema = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}
        levering_schema = schema["properties"]["leveringen"]["items"]
        traject_schema = levering_schema["properties"]["schuldhulptrajecten"]["items"]
        self._root = _compile(root_schema, (), self._bsn)
        self._levering = _compile(levering_schema, (), self._bsn)
        self._traject = _compile(traject_schema, (), self._bsn)

    def hmac(self, value: str) -> str:
        """HMAC-SHA256 of a string under the key, as 64 hex characters."""
        inner = self._inner.copy()
        inner.update(value.encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def _bsn(self, value: Any) -> Any:
        if type(value) is _Controle:
            return self.bsn_controle(value.raw)
        if type(value) is not str:
            return placeholder(value)
        trimmed = value.strip()
        if not trimmed:
            return _tekst(value)
        return self.hmac(trimmed)

    def bsn_controle(self, raw: str) -> dict[str, Any]:
        """The facts of a raw BSN that the rules need (see the module docstring)."""
        b = bsn_mod.normalise(raw)
        return {
            "elfproef": bsn_mod.is_valid(b),
            "genormaliseerd": b != raw and len(b) == 9,
            "leeg": not b,
            "pseudoniem": self.hmac(b),
        }

    def root(self, header: Mapping[str, Any]) -> dict[str, Any]:
        """The pseudonymised root header (the root object without `leveringen`)."""
        out = self._root(dict(header))
        assert type(out) is dict
        return out

    def levering(self, header: Any) -> Any:
        """The pseudonymised levering header (without `schuldhulptrajecten`), or the placeholder
        of a levering that is not an object."""
        return self._levering(header)

    def traject(self, traject: Any, raw: bytes | msgspec.Raw | None = None) -> Any:
        """The pseudonymised trajectory (or the placeholder of one that is not an object).

        With its JSON text (`raw`), a trajectory that the typed path accepts (`typed`: the
        common case) comes back as a typed struct, to be encoded; any other takes the schema
        walk, a dict. Both encode to the same JSON value (tests/domain/test_pseudonym.py)."""
        if raw is not None and (typed := self.typed(raw)) is not None:
            return typed
        return self._traject(traject)

    def typed(self, raw: bytes | msgspec.Raw) -> Any | None:
        """The pseudonymised trajectory from its JSON text alone, as a typed struct (`_TYPED`)
        rewritten in place, or None when the typed path does not accept it (then decode it and
        take `traject`).

        The hot path of ingest (one call per trajectory): one typed decode, which is also the
        schema's fast path, and only the members that must change are set: the free text, the
        client's identity and BSN. Unknown members of open parts were never decoded, and a
        member that is absent stays absent when the struct is encoded."""
        try:
            t = _TYPED.decode(raw)
        except msgspec.DecodeError:
            return None
        for name in _TRAJECT_TEKST:
            setattr(t, name, _ster(getattr(t, name)))
        if (uitstroom := t.uitstroom) is not None:
            for name in _UITSTROOM_TEKST:
                setattr(uitstroom, name, _ster(getattr(uitstroom, name)))
        for schuld in t.schulden or ():
            if (eiser := schuld.schuldeiser) is not None:
                for name in _SCHULDEISER_TEKST:
                    setattr(eiser, name, _ster(getattr(eiser, name)))
        for client in t.client or ():
            for name in _CLIENT_TEKST:
                setattr(client, name, _ster(getattr(client, name)))
            if (g := client.Geslachtsaanduiding) is not None and g not in _GESLACHT_CODES:
                client.Geslachtsaanduiding = _geslacht(g)
            raw_bsn = client.Burgerservicenummer
            if raw_bsn is None:
                client.bsnControle = None  # not the supplier's, if it sent one
                continue
            client.Burgerservicenummer, client.bsnControle = self._typed_bsn(raw_bsn)
        return t

    def _typed_bsn(self, raw: str) -> tuple[str, BsnControle]:
        """A client's BSN on the typed path: the value in its place and its `bsnControle`, as
        `_bsn` and `bsn_controle` make them."""
        if len(raw) == 9 and raw.isascii() and raw.isdigit():
            # The usual BSN: 9 digits, already normal (bsn.normalise returns it as is).
            pseudoniem = self.hmac(raw)
            d = raw.encode()  # bsn.is_valid, inline: the byte sum is 7 modulo 11
            som = d[0] * 9 + d[1] * 8 + d[2] * 7 + d[3] * 6 + d[4] * 5
            som += d[5] * 4 + d[6] * 3 + d[7] * 2 - d[8]
            elfproef = som % 11 == 7 and raw != "000000000"
            return pseudoniem, BsnControle(elfproef, False, False, pseudoniem)
        controle = self.bsn_controle(raw)
        return self._bsn(raw), BsnControle(**controle)

    def member(self, value: Any) -> Any:
        """A value whose place the schema does not describe (a mistyped array): placeholder."""
        return placeholder(value)

    # -- whole documents ------------------------------------------------------------------

    def document(self, document: Document) -> dict[str, Any]:
        """The whole pseudonymised document as one value to encode (its trajectories typed
        structs or dicts, as `traject` gives them), for tests and small files; ingest uses the
        parts, chunk by chunk."""
        root = self.root(document.header.data)
        if document.header.leveringen is ABSENT:
            return root
        if not isinstance(document.header.leveringen, ArrayShape):
            root["leveringen"] = placeholder(document.header.leveringen)
            return root
        leveringen: list[Any] = []
        current: Any = None
        for part in document.parts():
            if type(part) is Traject:
                current["schuldhulptrajecten"].append(self.traject(part.data, part.raw))
            elif isinstance(part, LeveringHeader):
                current = self.levering_with(part)
                leveringen.append(current)
        root["leveringen"] = leveringen
        return root

    def levering_with(self, header: LeveringHeader) -> Any:
        """A levering header as it appears around its trajectories: with an empty
        `schuldhulptrajecten` list to fill when it was an array, with the placeholder of its
        value when it was not."""
        out = self.levering(header.data)
        if type(out) is dict and header.trajecten is not ABSENT:
            if isinstance(header.trajecten, ArrayShape):
                out["schuldhulptrajecten"] = []
            else:
                out["schuldhulptrajecten"] = placeholder(header.trajecten)
        return out


def pseudonymise_bytes(data: bytes, key: bytes) -> bytes:
    """The pseudonymised form of a SHV file's bytes, as JSON bytes. Raises UnreadableFile."""
    from ddas.domain.reader import parse_document

    return msgspec.json.encode(Pseudonymiser(key).document(parse_document(data)))


def contact_emails(levering: Any) -> Iterator[str]:
    """The raw e-mail addresses of a levering's contact persons that pass the schema's e-mail
    check, in order (kept with the delivery, for the OOR notifications)."""
    if type(levering) is not dict:
        return
    org = levering.get("aanleverende_organisatie")
    if type(org) is not dict or type(personen := org.get("contactpersonen")) is not list:
        return
    for persoon in personen:
        if type(persoon) is dict and type(email := persoon.get("email")) is str and is_email(email):
            yield email


def content_hash(data: bytes) -> str:
    """SHA-256 of a delivery's bytes, as 64 hex characters."""
    return hashlib.sha256(data).hexdigest()
