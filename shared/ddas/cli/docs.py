"""`ddas docs`: the AsyncAPI document of each service's Kafka topics (docs/asyncapi/) and the
OpenAPI document of each HTTP API (docs/openapi/), generated from the code; `ddas docs --check`
fails when the committed documents differ from what the code says (a test runs it).

- AsyncAPI 3.0 from each service's FastStream broker as the service builds it (its subscribers:
  topics, consumer groups, handlers), with the topics it publishes to added (the outbox relay
  and the dead-letter producer publish outside FastStream's view, so they are listed in
  `PUBLISHES`), and the message payloads that FastStream sees as bytes described by the
  msgspec types of the messages (`PAYLOADS`).
- OpenAPI from each service's FastAPI app (`app.openapi()`; validate serves no API, only
  /healthz, /readyz and /metrics).

The services are built from their default settings (not the environment): the documents name the
production topics and consumer groups, and the same code gives the same documents everywhere.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any, Final, cast

import click
import msgspec
from pydantic_settings import BaseSettings

from ddas.pipeline import topics
from ddas.pipeline.events import Chunk, LeveringEvent, Rapport
from ddas.pipeline.topics import dead_letter

SERVICES: Final = ("ingest", "validate", "report", "publish")
ROOT: Final = Path(__file__).resolve().parents[3]
KAFKA: Final = "kafka:9092"

PUBLISHES: Final[dict[str, tuple[str, ...]]] = {
    "ingest": (topics.TRAJECTEN, topics.LEVERINGEN),
    "validate": (topics.LEVERINGEN,),
    "report": (topics.LEVERINGEN, topics.RAPPORTEN),
    "publish": (topics.LEVERINGEN, topics.STATISTIEKEN),
}
"""Topics each service writes (through its outbox), besides the dead-letter twins of the topics
it consumes."""

DESCRIPTIONS: Final = {
    topics.AANGEBODEN: "Aanbiedingen van leveringen door leveranciers (CloudEvents 1.0, JSON).",
    topics.TRAJECTEN: "Chunks van gepseudonimiseerde trajecten van een levering, ingest -> validate.",
    topics.LEVERINGEN: "Toestandsovergangen van leveringen (sleutel: de levering-id).",
    topics.RAPPORTEN: "De cijfers van het op-orde-rapport van een levering, report -> publish.",
    topics.STATISTIEKEN: "Gepubliceerde, onthullingsbeveiligde statistieken per periode.",
}
DEAD_LETTER: Final = (
    "Dead letters: berichten die na herhaalde pogingen niet verwerkt konden worden, ongewijzigd, "
    "met hun herkomst en foutklasse in de headers."
)


def _payloads() -> dict[str, type]:
    from services.ingest.inbound import Envelope
    from services.publish.model import Statistieken

    return {
        topics.AANGEBODEN: Envelope,
        topics.TRAJECTEN: Chunk,
        topics.LEVERINGEN: LeveringEvent,
        topics.RAPPORTEN: Rapport,
        topics.STATISTIEKEN: Statistieken,
    }


# -- building the services without the environment -------------------------------------------


def defaults(cls: type[BaseSettings], **values: Any) -> Any:
    """Settings of `cls` with their defaults (nested settings too), not read from the
    environment, with `values` set."""
    for name, info in cls.model_fields.items():
        annotation = info.annotation
        if (
            name not in values
            and isinstance(annotation, type)
            and issubclass(annotation, BaseSettings)
        ):
            values[name] = defaults(annotation)
    return cls.model_construct(**values)


def _settings(service: str) -> Any:
    module = import_module(f"services.{service}.settings")
    cls = next(
        v for k, v in vars(module).items()
        if k.endswith("Settings") and isinstance(v, type) and v.__module__ == module.__name__
    )  # fmt: skip
    from ddas.settings import KafkaSettings

    extra = {"test_mode": True} if service == "ingest" else {}  # the key is never used here
    return defaults(cls, kafka=defaults(KafkaSettings, bootstrap_servers=KAFKA), **extra)


def asyncapi(service: str) -> dict[str, Any]:
    from faststream.specification import AsyncAPI

    main = import_module(f"services.{service}.main")
    built = main.create_app(_settings(service))
    broker = built.broker
    consumed = sorted({str(getattr(t, "name", t)) for s in broker.subscribers for t in _topics(s)})
    for topic in (*PUBLISHES[service], *(dead_letter(t) for t in consumed)):
        broker.publisher(
            topic,
            title=f"{topic}:Publish",
            description=DESCRIPTIONS.get(topic, DEAD_LETTER),
        )
    spec = AsyncAPI(
        broker,
        title=f"DDAS {service}",
        version="1",
        description=f"De Kafka-topics die {service} leest en schrijft.",
    ).to_specification()
    doc = cast(dict[str, Any], json.loads(spec.to_json()))
    _describe_payloads(doc)
    return doc


def _topics(subscriber: Any) -> list[Any]:
    found = getattr(subscriber, "topics", None)
    if found:
        return list(found)
    return [c.topic for c in getattr(subscriber, "calls", []) if hasattr(c, "topic")]


def _describe_payloads(doc: dict[str, Any]) -> None:
    """The payload of every message on a known topic: its msgspec type's JSON Schema (a
    dead-letter twin carries what its topic carries)."""
    payloads = _payloads()
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    messages: dict[str, Any] = doc["components"].get("messages", {})
    for channel in doc.get("channels", {}).values():
        address = str(channel.get("address", ""))
        topic = address.removesuffix(".dlq")
        if topic not in payloads:
            continue
        if topic in DESCRIPTIONS and not address.endswith(".dlq"):
            channel.setdefault("description", DESCRIPTIONS[topic])
        _, components = msgspec.json.schema_components(
            [payloads[topic]], ref_template="#/components/schemas/{name}"
        )
        schemas.update(components)
        name = payloads[topic].__name__
        for ref in channel.get("messages", {}).values():
            key = str(ref.get("$ref", "")).rsplit("/", 1)[-1]
            if key in messages:
                messages[key]["payload"] = {"$ref": f"#/components/schemas/{name}"}
    used = json.dumps({k: v for k, v in doc.items() if k != "components"}) + json.dumps(
        doc["components"].get("messages", {})
    )
    for name in [n for n in schemas if f"#/components/schemas/{n}" not in used]:
        if not any(f"#/components/schemas/{name}" in json.dumps(s) for s in schemas.values()):
            del schemas[name]  # FastStream's schema of the handlers' `bytes`, replaced


def openapi(service: str) -> dict[str, Any] | None:
    http = import_module(f"services.{service}.http")
    create: Callable[..., Any] | None = getattr(http, "create_app", None)
    if create is None:
        return None  # validate: /healthz, /readyz and /metrics only
    none = cast(Any, None)  # the database and the registry: not used to describe the API
    if service == "ingest":
        from ddas.domain.pseudonym import TEST_KEY, Pseudonymiser
        from services.ingest.intake import Intake, Limits

        s = _settings(service)
        limits = Limits(s.max_bytes, s.max_depth, s.max_trajecten, s.chunk_size)
        intake = Intake(none, Pseudonymiser(TEST_KEY), limits, chunk_topic=s.chunk_topic)
        app = create(intake, none, none, base_url=s.base_url)
    else:
        app = create(none, none)
    return cast(dict[str, Any], app.openapi())


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def documents() -> dict[str, str]:
    """Relative path -> text of every document."""
    out: dict[str, str] = {}
    for service in SERVICES:
        out[f"docs/asyncapi/{service}.json"] = _text(asyncapi(service))
        api = openapi(service)
        if api is not None:
            out[f"docs/openapi/{service}.json"] = _text(api)
    return out


def drift(root: Path = ROOT) -> list[str]:
    """The documents that differ from the code (missing, changed, or no longer made)."""
    wanted = documents()
    stale = [p for p, text in wanted.items() if not (root / p).is_file()
             or (root / p).read_text(encoding="utf-8") != text]  # fmt: skip
    for folder in ("docs/asyncapi", "docs/openapi"):
        for path in sorted((root / folder).glob("*.json")):
            relative = path.relative_to(root).as_posix()
            if relative not in wanted:
                stale.append(relative)
    return sorted(stale)


@click.command(name="docs")
@click.option("--check", is_flag=True, help="Alleen controleren; afwijking geeft exit code 1.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=ROOT,
    show_default=True,
    help="De map van het project.",
)
def command(check: bool, root: Path) -> None:
    """Schrijf de AsyncAPI- en OpenAPI-documenten van de services (docs/asyncapi, docs/openapi)."""
    if check:
        stale = drift(root)
        if stale:
            click.echo(
                "ddas docs: niet in overeenstemming met de code: "
                + ", ".join(stale)
                + ". Draai `ddas docs` en neem de wijzigingen op.",
                err=True,
            )
            sys.exit(1)
        click.echo("ddas docs: de documenten kloppen met de code")
        return
    wanted = documents()
    for relative, text in wanted.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in ("docs/asyncapi", "docs/openapi"):
        for path in (root / folder).glob("*.json"):
            if path.relative_to(root).as_posix() not in wanted:
                path.unlink()
    click.echo(f"ddas docs: {len(wanted)} documenten geschreven")
