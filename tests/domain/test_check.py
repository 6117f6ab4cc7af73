"""The check of a whole file: the forked two-process run gives exactly the one-process result."""

from __future__ import annotations

import io

import pytest

from ddas.domain import check as check_mod
from ddas.domain.check import check_document
from ddas.domain.reader import parse_document
from ddas.generate import Options, generate


@pytest.fixture(scope="module")
def flawed_document() -> bytes:
    out = io.BytesIO()
    generate(out, Options(trajecten=3000, seed=5, fouten=0.05))
    return out.getvalue()


def test_two_processes_give_exactly_the_one_process_result(flawed_document: bytes) -> None:
    serial = check_document(parse_document(flawed_document), parallel=False)
    forked = check_document(parse_document(flawed_document), parallel=True)
    assert serial.fouten > 0 and serial.waarschuwingen > 0
    assert forked.totalen == serial.totalen
    assert forked.findings == serial.findings
    assert forked.periode == serial.periode


def test_a_failure_in_the_forked_pass_is_raised_in_the_caller(
    flawed_document: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise ValueError("kapot in het schemaproces")

    monkeypatch.setattr(check_mod, "_schema_and_tables", broken)
    with pytest.raises(ValueError, match="kapot in het schemaproces"):
        check_document(parse_document(flawed_document), parallel=True)
