"""`ddas submit` sends a large file in pieces, with its Content-Length (ddas.cli._http.upload):
to a real HTTP server, which must receive the file's exact bytes as one body of known length,
not a chunked one (that some proxies in front of an API refuse)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ddas.cli import main as cli
from ddas.cli._http import UPLOAD_PIECE
from tests.conftest import http_server


class _Receiver(BaseHTTPRequestHandler):
    received: dict[str, Any] = {}

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        type(self).received.update(
            path=self.path,
            headers=dict(self.headers),
            sha256=hashlib.sha256(body).hexdigest(),
            length=len(body),
        )
        answer = json.dumps({"id": "lev-1", "state": "ontvangen", "status_url": "/x"}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    with http_server(_Receiver) as url:
        yield url


def test_a_large_file_arrives_whole_with_its_length(receiver: str, tmp_path: Path) -> None:
    # More than three pieces, the last one short, and no two pieces alike: a lost, repeated or
    # reordered piece changes the digest.
    data = bytes(range(251)) * ((3 * UPLOAD_PIECE + 12345) // 251)
    path = tmp_path / "groot.json"
    path.write_bytes(data)
    result = CliRunner().invoke(
        cli, ["submit", str(path), "--token", "t" * 40, "--url", receiver, "--json"]
    )
    assert result.exit_code == 0, result.output
    got = _Receiver.received
    assert got["path"] == "/v1/leveringen"
    assert got["length"] == len(data)
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in headers
    assert headers["authorization"] == "Bearer " + "t" * 40
    assert json.loads(result.output)["id"] == "lev-1"
