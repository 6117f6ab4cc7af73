"""docs/asyncapi/ and docs/openapi/ are what the code says (`ddas docs --check`): a test fails
when a topic, a consumer group, a message type or an HTTP route changes without the documents
being regenerated (`ddas docs`). The documents are also sound: OpenAPI 3.1 per its validator,
every AsyncAPI reference resolves, every topic a service consumes is a channel with its
message's schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from openapi_spec_validator import validate

from ddas.cli import docs
from ddas.pipeline import topics

from .helpers import ROOT, SERVICES


def test_the_committed_documents_are_what_the_code_says() -> None:
    assert docs.drift(ROOT) == []
    result = CliRunner().invoke(docs.command, ["--check"])
    assert result.exit_code == 0, result.output


def test_a_change_in_the_code_is_caught(tmp_path: Path, monkeypatch: Any) -> None:
    for folder in ("docs/asyncapi", "docs/openapi"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    assert docs.drift(tmp_path) == []
    # A route whose description changed, a document of a service that no longer exists, and
    # a missing one.
    path = tmp_path / "docs/openapi/publish.json"
    api = json.loads(path.read_text())
    route = api["paths"]["/v1/leveringen/{levering_id}/goedkeuring"]["post"]
    route["summary"] = "iets anders"
    path.write_text(json.dumps(api, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    (tmp_path / "docs/asyncapi/oud.json").write_text("{}\n")
    (tmp_path / "docs/asyncapi/report.json").unlink()
    assert docs.drift(tmp_path) == [
        "docs/asyncapi/oud.json", "docs/asyncapi/report.json", "docs/openapi/publish.json",
    ]  # fmt: skip
    result = CliRunner().invoke(docs.command, ["--check", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "niet in overeenstemming met de code" in result.output
    assert "docs/openapi/publish.json" in result.output
    assert "Traceback" not in result.output
    # Regenerating puts it right.
    result = CliRunner().invoke(docs.command, ["--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert docs.drift(tmp_path) == []


def test_the_documents_do_not_depend_on_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "elders:1")
    monkeypatch.setenv("DDAS_VALIDATE_TOPIC", "een-test-topic")
    monkeypatch.setenv("DDAS_REPORT_CONSUMER_GROUP", "een-test-groep")
    assert docs.drift(ROOT) == []


def test_the_openapi_documents_are_valid() -> None:
    folder = ROOT / "docs" / "openapi"
    assert sorted(p.stem for p in folder.glob("*.json")) == ["ingest", "publish", "report"]
    for path in folder.glob("*.json"):
        document = json.loads(path.read_text())
        validate(document)
        assert document["info"]["title"].startswith("DDAS")
        assert document["paths"], path.name


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_asyncapi_documents_describe_each_services_topics() -> None:
    consumes = {
        "ingest": {topics.AANGEBODEN, topics.LEVERINGEN},
        "validate": {topics.TRAJECTEN, topics.LEVERINGEN},
        "report": {topics.LEVERINGEN},
        "publish": {topics.RAPPORTEN, topics.LEVERINGEN},
    }
    schema_of = {
        topics.AANGEBODEN: "Envelope", topics.TRAJECTEN: "Chunk",
        topics.LEVERINGEN: "LeveringEvent", topics.RAPPORTEN: "Rapport",
        topics.STATISTIEKEN: "Statistieken",
    }  # fmt: skip
    for service in SERVICES:
        document = json.loads((ROOT / "docs" / "asyncapi" / f"{service}.json").read_text())
        assert document["asyncapi"].startswith("3.")
        for ref in _refs(document):
            _resolve(document, ref)  # raises KeyError when it does not resolve
        channels = document["channels"]
        received = {
            _resolve(document, op["channel"]["$ref"])["address"]
            for op in document["operations"].values()
            if op["action"] == "receive"
        }
        sent = {
            _resolve(document, op["channel"]["$ref"])["address"]
            for op in document["operations"].values()
            if op["action"] == "send"
        }
        assert received == consumes[service], service
        assert {f"{t}.dlq" for t in received} <= sent, service
        assert set(docs.PUBLISHES[service]) <= sent, service
        for channel in channels.values():
            topic = channel["address"].removesuffix(".dlq")
            for message in channel["messages"].values():
                payload = _resolve(document, message["$ref"])["payload"]
                assert payload == {"$ref": f"#/components/schemas/{schema_of[topic]}"}
        assert document["servers"]["development"]["host"] == docs.KAFKA
