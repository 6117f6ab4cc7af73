"""`ddas check` against the DDAS-app's own engine (Node.js + ajv, ../shared/bench/ddas-app-peer),
run side by side on the same files: the two tables must be identical, and the schema findings
must be exactly as many as ajv's errors (ajv with allErrors lists one error per place).
(with the one deliberate difference that `peer_result` explains: normalised gemeentecodes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ddas.testing import PEER_SCHEMA, check_result, ensure_peer, peer_result, shared_dir

DDAS = Path(sys.executable).parent / "ddas"
EXAMPLES = sorted((shared_dir() / "ddas/examples/ddas-app").glob("*.json"))
SPEC_FILES = sorted(
    p
    for p in (shared_dir() / "ddas/spec/schuldhulpverlening-v1.0").glob("*.json")
    if p.name != "json_schema_Uitwisselmodel.json"
)


@pytest.fixture(scope="module")
def peer() -> Path:
    return ensure_peer()


def _both(peer: Path, path: Path) -> tuple[dict, str, dict]:
    ours = subprocess.run(
        [str(DDAS), "check", "--json", str(path)], capture_output=True, text=True, timeout=300
    )
    assert ours.returncode in (0, 1), ours.stderr
    theirs = subprocess.run(
        ["node", str(peer), str(PEER_SCHEMA), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(ours.stdout), theirs.stdout, json.loads(theirs.stderr.splitlines()[-1])


@pytest.mark.parametrize("path", EXAMPLES + SPEC_FILES, ids=lambda p: p.name)
def test_real_files_give_the_peers_tables_and_schema_verdict(peer: Path, path: Path) -> None:
    ours, peer_out, peer_stats = _both(peer, path)
    assert check_result(ours) == peer_result(peer_out)
    schema = [f for f in ours["bevindingen"]["lijst"] if f["code"].startswith("schema.")]
    assert len(schema) == peer_stats["errors"]


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_files_give_the_peers_tables_and_schema_verdict(
    peer: Path, seed: int, tmp_path: Path
) -> None:
    path = tmp_path / "gen.json"
    subprocess.run(
        [
            str(DDAS),
            "generate",
            "--trajecten",
            "4000",
            "--seed",
            str(seed),
            "--fouten",
            "0.05",
            "-o",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    ours, peer_out, peer_stats = _both(peer, path)
    assert check_result(ours) == peer_result(peer_out)
    schema = [f for f in ours["bevindingen"]["lijst"] if f["code"].startswith("schema.")]
    assert peer_stats["errors"] > 0 and len(schema) == peer_stats["errors"]
