"""Reading SHV v1.0 files: bytes in, the parts of the delivery out, in file order.

`read_document(path)` reads a file and parses its skeleton; `Document.parts()` then yields

- one `RootHeader`: the root object without `leveringen`,
- per levering a `LeveringHeader`: the levering without `schuldhulptrajecten`, with its index,
- per trajectory a `Traject`: its indices, its raw JSON bytes and its decoded value (a plain dict
  with the official keys when it is an object),

decoding one trajectory at a time, so that a 200,000-trajectory file never exists as 200,000
dicts at once. The raw bytes are zero-copy slices of the file (msgspec.Raw): the schema check
decodes them a second time with a typed decoder (see ddas.domain.schema).

Reading never fails on schema problems (a field of the wrong type, `leveringen` missing or not an
array, a levering that is not an object...): those are findings of the schema check, and the
headers carry what it needs (`ArrayShape`, `ABSENT` or the value itself). Reading fails, with
`UnreadableFile` and a one-line Dutch reason, only when the bytes are not a DDAS file at all: a
missing or unreadable file, an empty file, bytes that are not UTF-8, text that is not JSON (with
line, column and byte of the error), a truncated file, or a root that is not a JSON object.

Why msgspec: a skeleton decode that keeps the trajectories as `msgspec.Raw` checks the JSON
syntax of the whole file (and its string escapes) in about 0.2 s for 143 MB without building the
trajectories; `json`, ijson and orjson are 7 to 20 times slower or several times larger.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from msgspec import UNSET, Raw, UnsetType

from ddas.domain.findings import pointer

__all__ = [
    "ABSENT",
    "ArrayShape",
    "Document",
    "LeveringHeader",
    "Part",
    "RootHeader",
    "Traject",
    "UnreadableFile",
    "decode_value",
    "parse_document",
    "read_document",
]


class UnreadableFile(Exception):
    """The file cannot be read as a DDAS file at all. `str(exc)` is a one-line Dutch reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


#: A member that is not in the file (as opposed to present with the value null).
ABSENT: Final = _Absent()


@dataclass(frozen=True, slots=True)
class ArrayShape:
    """An array whose elements are handed on as parts of their own: only its length is kept."""

    length: int


@dataclass(frozen=True, slots=True)
class RootHeader:
    data: dict[str, Any]  # the root object without "leveringen"
    leveringen: ArrayShape | _Absent | Any  # the decoded value itself when it is not an array

    @property
    def pointer(self) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class LeveringHeader:
    index: int
    # The levering without "schuldhulptrajecten" (a dict), or the decoded value itself when the
    # levering is not an object (then `trajecten` is ABSENT).
    data: Any
    trajecten: ArrayShape | _Absent | Any  # the decoded value itself when it is not an array

    @property
    def pointer(self) -> str:
        return pointer("leveringen", self.index)


class Traject(msgspec.Struct, frozen=True):
    """One trajectory. A Struct rather than a frozen dataclass: 200,000 of them are made per
    file, and a Struct's constructor is several times cheaper."""

    levering: int
    index: int
    raw: Raw  # the trajectory's JSON text: a zero-copy slice of the file (bytes-like)
    data: Any  # the decoded trajectory: a dict with the official keys when it is an object

    @property
    def pointer(self) -> str:
        # Built for every trajectory (the rules keep it): the parts need no escaping, so an
        # f-string rather than the general `pointer()`.
        return f"/leveringen/{self.levering}/schuldhulptrajecten/{self.index}"


Part = RootHeader | LeveringHeader | Traject


@dataclass(frozen=True, slots=True)
class _Levering:
    index: int
    header: LeveringHeader
    trajecten: list[Raw]


class Document:
    """A parsed file: the root header and, per levering, its header and raw trajectories.

    Holds the file's bytes (the raw trajectories are slices of them); decodes a trajectory only
    when `parts()` reaches it.
    """

    __slots__ = ("_leveringen", "header", "size")

    def __init__(self, header: RootHeader, leveringen: list[_Levering], size: int) -> None:
        self.header = header
        self._leveringen = leveringen
        self.size = size  # bytes

    @property
    def leveringen(self) -> list[LeveringHeader]:
        return [lev.header for lev in self._leveringen]

    @property
    def traject_count(self) -> int:
        return sum(len(lev.trajecten) for lev in self._leveringen)

    def parts(self) -> Iterator[Part]:
        """The root header, then each levering header followed by its trajectories."""
        yield self.header
        decode = _VALUE.decode
        for lev in self._leveringen:
            yield lev.header
            i = lev.index
            for j, raw in enumerate(lev.trajecten):
                try:
                    data = decode(raw)
                except msgspec.DecodeError as exc:  # pragma: no cover - the skeleton checked it
                    raise UnreadableFile(
                        f"Schuldhulptraject {pointer('leveringen', i, 'schuldhulptrajecten', j)}"
                        f" is geen leesbare JSON: {exc}"
                    ) from exc
                yield Traject(i, j, raw, data)

    __iter__ = parts

    def raw_leveringen(self) -> Iterator[tuple[LeveringHeader, list[Raw]]]:
        """Each levering header with its trajectories' JSON text, undecoded (`decode_value`
        decodes one as `parts()` does): for work on trajectories in batches, as ingest's chunks."""
        for lev in self._leveringen:
            yield lev.header, lev.trajecten


# Untyped decoding of headers and trajectories. float_hook=float: a number beyond the float
# range (1e400) becomes inf, as with Python's json module, instead of a decode error.
_VALUE: Final = msgspec.json.Decoder(float_hook=float)
decode_value: Final = _VALUE.decode


# The skeleton of a well-formed file: the known header members as Raw, the trajectories as
# list[Raw]. Any surprise (an unknown member, `leveringen` not an array of objects...) is a
# ValidationError, and the file is then read the tolerant way, which takes every shape.
class _SkeletonLevering(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    teller: Raw | UnsetType = UNSET
    aanleverende_organisatie: Raw | UnsetType = UNSET
    schuldhulptrajecten: list[Raw] | UnsetType = UNSET


class _Skeleton(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    startdatumLevering: Raw | UnsetType = UNSET
    einddatumLevering: Raw | UnsetType = UNSET
    aanleverdatumEnTijd: Raw | UnsetType = UNSET
    codeGegevensleverancier: Raw | UnsetType = UNSET
    leveringen: list[_SkeletonLevering] | UnsetType = UNSET


_SKELETON: Final = msgspec.json.Decoder(_Skeleton)
_SKELETON_LEVERING: Final = msgspec.json.Decoder(_SkeletonLevering)
_OBJECT: Final = msgspec.json.Decoder(dict[str, Raw])
_ARRAY: Final = msgspec.json.Decoder(list[Raw])
_BOM: Final = b"\xef\xbb\xbf"


def read_document(path: str | os.PathLike[str]) -> Document:
    """Read and parse a SHV v1.0 file. Raises UnreadableFile."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UnreadableFile("bestand niet gevonden") from None
    except IsADirectoryError:
        raise UnreadableFile("dit is een map, geen bestand") from None
    except PermissionError:
        raise UnreadableFile("geen leesrechten op het bestand") from None
    except OSError as exc:
        raise UnreadableFile(f"bestand kan niet worden gelezen ({exc.strerror})") from None
    return parse_document(data)


def parse_document(data: bytes) -> Document:
    """Parse the bytes of a SHV v1.0 file. Raises UnreadableFile."""
    if not data.strip():
        raise UnreadableFile(
            "het bestand is leeg" if not data else "het bestand bevat alleen witruimte, geen JSON"
        )
    _check_utf8(data)
    if data.startswith(_BOM):
        raise UnreadableFile(
            "het bestand begint met een byte-order-mark (BOM); lever UTF-8 zonder BOM"
        )
    try:
        skeleton = _SKELETON.decode(data)
    except msgspec.ValidationError:
        return _parse_tolerant(data)
    except msgspec.DecodeError as exc:
        raise _not_json(data, exc) from None
    return _from_skeleton(skeleton, len(data))


def _from_skeleton(skeleton: _Skeleton, size: int) -> Document:
    header = _members(skeleton, "leveringen")
    if isinstance(skeleton.leveringen, UnsetType):
        return Document(RootHeader(header, ABSENT), [], size)
    leveringen = [_levering(i, lev) for i, lev in enumerate(skeleton.leveringen)]
    return Document(RootHeader(header, ArrayShape(len(leveringen))), leveringen, size)


def _members(struct: msgspec.Struct, skip: str) -> dict[str, Any]:
    return {
        name: _VALUE.decode(raw)
        for name in struct.__struct_fields__
        if name != skip and (raw := getattr(struct, name)) is not UNSET
    }


def _levering(index: int, lev: _SkeletonLevering) -> _Levering:
    header = _members(lev, "schuldhulptrajecten")
    if isinstance(lev.schuldhulptrajecten, UnsetType):
        return _Levering(index, LeveringHeader(index, header, ABSENT), [])
    trajecten = lev.schuldhulptrajecten
    return _Levering(index, LeveringHeader(index, header, ArrayShape(len(trajecten))), trajecten)


def _parse_tolerant(data: bytes) -> Document:
    """Any shape below a root object. Each level is first tried with the skeleton types and
    taken apart member by member only where that fails: an unknown member at the root costs one
    extra scan of the file, not three."""
    try:
        root = _OBJECT.decode(data)
    except msgspec.ValidationError:
        raise UnreadableFile(
            f"de JSON is geen object maar {_kind(data)}; een DDAS-bestand is één JSON-object "
            "met onder meer 'leveringen'"
        ) from None
    except msgspec.DecodeError as exc:
        raise _not_json(data, exc) from None
    leveringen_raw = root.pop("leveringen", None)
    header = {name: _VALUE.decode(raw) for name, raw in root.items()}
    if leveringen_raw is None:
        return Document(RootHeader(header, ABSENT), [], len(data))
    if _kind(leveringen_raw) != "een array":
        return Document(RootHeader(header, _VALUE.decode(leveringen_raw)), [], len(data))
    leveringen = [
        _levering_tolerant(i, lev_raw) for i, lev_raw in enumerate(_ARRAY.decode(leveringen_raw))
    ]
    return Document(RootHeader(header, ArrayShape(len(leveringen))), leveringen, len(data))


def _levering_tolerant(index: int, raw: Raw) -> _Levering:
    if _kind(raw) != "een object":
        return _Levering(index, LeveringHeader(index, _VALUE.decode(raw), ABSENT), [])
    try:
        return _levering(index, _SKELETON_LEVERING.decode(raw))
    except msgspec.ValidationError:
        pass  # an unknown member, or schuldhulptrajecten not an array
    lev = _OBJECT.decode(raw)
    trajecten_raw = lev.pop("schuldhulptrajecten", None)
    header = {name: _VALUE.decode(member) for name, member in lev.items()}
    if trajecten_raw is None:
        return _Levering(index, LeveringHeader(index, header, ABSENT), [])
    if _kind(trajecten_raw) != "een array":
        return _Levering(index, LeveringHeader(index, header, _VALUE.decode(trajecten_raw)), [])
    trajecten = _ARRAY.decode(trajecten_raw)
    return _Levering(index, LeveringHeader(index, header, ArrayShape(len(trajecten))), trajecten)


_KINDS: Final = {
    ord("{"): "een object",
    ord("["): "een array",
    ord('"'): "een tekst",
    ord("t"): "een boolean",
    ord("f"): "een boolean",
    ord("n"): "null",
}


def _kind(raw: bytes | Raw) -> str:
    """The JSON type of well-formed JSON text, from its first significant byte."""
    text = memoryview(raw)
    for byte in text[:64]:
        if byte not in b" \t\r\n":
            return _KINDS.get(byte, "een getal")
    return _KINDS.get(bytes(text).lstrip()[0], "een getal")


_UTF8_CHUNK: Final = 1 << 20


def _check_utf8(data: bytes) -> None:
    """Strict UTF-8, checked in chunks so that a large non-ASCII file is never one big str.

    msgspec only checks the strings it decodes, not those it skips inside a Raw, so the skeleton
    decode alone would let invalid bytes through to a later, partial failure.
    """
    if data.isascii():
        return
    view = memoryview(data)
    offset, end = 0, len(data)
    while offset < end:
        stop = min(offset + _UTF8_CHUNK, end)
        try:
            # With final=False a sequence cut by the chunk boundary is left for the next chunk.
            _, consumed = codecs.utf_8_decode(view[offset:stop], "strict", stop == end)
        except UnicodeDecodeError as exc:
            pos = offset + exc.start
            raise UnreadableFile(
                f"het bestand is geen geldige UTF-8: ongeldige byte op {_where(data, pos)}"
            ) from None
        offset += consumed
        if consumed == 0 and stop < end:  # pragma: no cover - a chunk always advances
            offset = stop


_BYTE_POSITION: Final = re.compile(r"\s*\(byte (\d+)\)$")
_DETAILS: Final = {
    "invalid character": "ongeldig teken",
    "trailing characters": "tekst na het einde van de JSON",
    "invalid number": "ongeldig getal",
    "invalid escaped character": "ongeldige escape (\\) in een tekst",
    "invalid utf-16 surrogate pair": "ongeldig \\u-surrogaatpaar in een tekst",
    "expected ',' or '}'": "verwacht ',' of '}'",
    "expected ',' or ']'": "verwacht ',' of ']'",
    "expected ':'": "verwacht ':'",
    "object keys must be strings": 'namen in een object moeten tekst tussen "" zijn',
}


def _not_json(data: bytes, exc: msgspec.DecodeError) -> UnreadableFile:
    message = str(exc)
    if "truncated" in message or "surrogate" in message:
        # msgspec calls a lone high surrogate escape "truncated" and points past a lone low one.
        lone = _lone_surrogate(data)
        if lone is not None:
            return UnreadableFile(
                f"geen geldige JSON: losse \\u-surrogaat-escape in een tekst "
                f"op {_where(data, lone)}"
            )
    if "truncated" in message:
        return UnreadableFile(
            "het bestand is afgebroken: de JSON houdt voortijdig op "
            f"(na {len(data)} bytes); is het bestand volledig overgekomen?"
        )
    detail = message.removeprefix("JSON is malformed: ")
    match = _BYTE_POSITION.search(detail)
    if match is None:
        return UnreadableFile(f"geen geldige JSON: {detail}")
    detail = detail[: match.start()]
    return UnreadableFile(
        f"geen geldige JSON op {_where(data, int(match[1]))}: {_DETAILS.get(detail, detail)}"
    )


def _where(data: bytes, pos: int) -> str:
    line = data.count(b"\n", 0, pos) + 1
    column = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
    return f"regel {line}, kolom {column} (byte {pos})"


# A \u escape of a surrogate code unit, with the run of backslashes before it: an even run is
# escaped backslashes followed by a literal "u", not an escape.
_SURROGATE_ESCAPE: Final = re.compile(rb"(\\+)u[dD]([89a-fA-F])[0-9a-fA-F]{2}")


def _lone_surrogate(data: bytes) -> int | None:
    """Byte offset of the first \\uD800-\\uDFFF escape not part of a high-low pair, if any.

    msgspec reports such an escape as "Input data was truncated"; this tells the two apart.
    """
    high_start = high_end = -1
    for m in _SURROGATE_ESCAPE.finditer(data):
        if len(m[1]) % 2 == 0:
            continue
        start = m.start(2) - 3  # the backslash of "\uDxxx"
        is_low = m[2] in b"cdefCDEF"
        if high_end >= 0:
            if is_low and start == high_end:
                high_start = high_end = -1
                continue
            return high_start
        if is_low:
            return start
        high_start, high_end = start, m.end()
    return high_start if high_end >= 0 else None
