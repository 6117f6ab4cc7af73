"""The official SHV v1.0 JSON Schema (a verbatim copy shipped as package data) and the three
parts the check validates separately.

A file is checked in parts so that a 150 MB file never has to be one Python object: the root
header, each levering header and each trajectory. The split is exact because the schema has no
keyword that relates an array's items to each other or to their parent (no uniqueItems, contains,
dependent schemas...): validating the root with `leveringen` stripped of its `items`, each levering
with `schuldhulptrajecten` stripped of its `items`, and each trajectory against the items schema
yields exactly the errors of validating the whole file.
"""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any

__all__ = ["LEVERING", "LEVERING_SHALLOW", "ROOT_SHALLOW", "SCHEMA", "SCHEMA_FILE", "TRAJECT"]

SCHEMA_FILE = "json_schema_Uitwisselmodel.json"

#: The official schema, as published (spec/schuldhulpverlening-v1.0).
SCHEMA: dict[str, Any] = json.loads(files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8"))


def _standalone(sub: dict[str, Any]) -> dict[str, Any]:
    """A subschema as a schema of its own: same dialect, same `$defs` for its `$ref`s."""
    return {"$schema": SCHEMA["$schema"], **sub, "$defs": SCHEMA["$defs"]}


def _without_items(schema: dict[str, Any], array_property: str) -> dict[str, Any]:
    shallow = copy.deepcopy(schema)
    del shallow["properties"][array_property]["items"]
    return shallow


#: One levering, including its trajectories.
LEVERING: dict[str, Any] = _standalone(SCHEMA["properties"]["leveringen"]["items"])
#: One trajectory (schuldhulptraject).
TRAJECT: dict[str, Any] = _standalone(LEVERING["properties"]["schuldhulptrajecten"]["items"])
#: The root without the levering items: `leveringen` is still type- and minItems-checked.
ROOT_SHALLOW: dict[str, Any] = _without_items(SCHEMA, "leveringen")
#: One levering without the trajectory items: `schuldhulptrajecten` is still type-checked.
LEVERING_SHALLOW: dict[str, Any] = _without_items(LEVERING, "schuldhulptrajecten")
