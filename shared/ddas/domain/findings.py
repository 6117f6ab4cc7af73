"""Findings: what the schema check and the rules report about a delivery.

A finding names a stable rule code, its severity, the JSON pointer of the place and a message a
supplier can act on. It never carries a personal value (BSN, birth date, postcode, names, e-mail):
messages describe the problem, the pointer locates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Ernst(StrEnum):
    """Severity. An error (`fout`) makes the file fail the check; a warning never stops a record
    from counting."""

    FOUT = "fout"
    WAARSCHUWING = "waarschuwing"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # stable, dotted: "schema.required", "bsn.elfproef", ...
    ernst: Ernst
    pointer: str  # RFC 6901 JSON pointer into the file, e.g. "/leveringen/0/schuldhulptrajecten/12"
    message: str  # Dutch, actionable, free of personal values

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "ernst": str(self.ernst),
            "pointer": self.pointer,
            "message": self.message,
        }


def pointer(*parts: str | int) -> str:
    """Build an RFC 6901 JSON pointer from path parts (escaping `~` and `/`)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
