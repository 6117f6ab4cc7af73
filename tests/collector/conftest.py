"""Fixtures of the collector tests: the reference supplier server on a real uvicorn (a free
port, this test's event loop) with a recorder of every exchange, throwaway PKIs, the
collector's TOML configuration, and the DDAS-SHV.yaml validator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from ddas.supplier_api.pages import Pager
from ddas.supplier_api.pki import Pki, make_pki
from ddas.supplier_api.server import Faults, SupplierApi, create_app
from ddas.supplier_api.signing import Signer
from ddas.testing import shared_dir

EXAMPLES = shared_dir() / "ddas/examples/ddas-app"
FILE_1500 = EXAMPLES / "testbestand_schuldhulpverlening_1500.json"
SPEC = shared_dir() / "ddas/spec/api-v1.0/DDAS-SHV.yaml"
SCHEMA = shared_dir() / "ddas/spec/schuldhulpverlening-v1.0/json_schema_Uitwisselmodel.json"
CLIENT_ID, CLIENT_SECRET = "cbs-ddas", "geheim-van-de-test-0123456789"


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""


class Recorder:
    """An ASGI wrapper that keeps every request and response as it went over the wire."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ex = Exchange(scope["method"], scope["path"],
                      {k.decode().lower(): v.decode() for k, v in scope["headers"]}, b"")  # fmt: skip
        self.exchanges.append(ex)

        more = True
        while more:  # the whole body first, also when the app answers without reading it
            message = await receive()
            ex.body += message.get("body", b"")
            more = message["type"] == "http.request" and message.get("more_body", False)
        replayed = False

        async def recv() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": ex.body, "more_body": False}
            return await receive()

        async def snd(message: Any) -> None:
            if message["type"] == "http.response.start":
                ex.status = message["status"]
                ex.response_headers = {
                    k.decode().lower(): v.decode() for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                ex.response_body += message.get("body", b"")
            await send(message)

        await self.app(scope, recv, snd)


@dataclass
class Running:
    api: SupplierApi
    url: str
    exchanges: list[Exchange]

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def pages_served(self) -> list[int]:
        return [p for p, _ in self.api.served]


@contextlib.asynccontextmanager
async def serve(api: SupplierApi) -> AsyncIterator[Running]:
    recorder = Recorder(create_app(api))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(recorder, lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield Running(api, f"http://127.0.0.1:{port}", recorder.exchanges)
    finally:
        for event in api.faults.hold.values():
            event.set()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki("Leverancier")


@pytest.fixture(scope="session")
def pager_1500() -> Pager:
    return Pager(FILE_1500.read_bytes())


@pytest.fixture
def supplier_api(
    pki: Pki, pager_1500: Pager
) -> Callable[..., contextlib.AbstractAsyncContextManager[Running]]:
    """`async with supplier_api(faults=..., token_ttl=..., pki=...) as server:`"""

    def make(
        *, faults: Faults | None = None, token_ttl: float = 3600.0, signing: Pki | None = None,
        pager: Pager | None = None,
    ) -> contextlib.AbstractAsyncContextManager[Running]:  # fmt: skip
        p = signing or pki
        api = SupplierApi(
            pager or pager_1500,
            Signer(p.leaf.key, p.chain),
            {CLIENT_ID: CLIENT_SECRET},
            token_ttl=token_ttl,
            faults=faults or Faults(),
        )
        return serve(api)

    return make


@pytest.fixture
def trust_store(tmp_path: Path, pki: Pki) -> Path:
    path = tmp_path / "trust.pem"
    path.write_bytes(pki.root.cert_pem())
    return path


def _toml(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value).lower() if isinstance(
        value, bool) else str(value)  # fmt: skip


def write_config(path: Path, endpoints: list[dict[str, Any]], **collector: Any) -> Path:
    """The collector's TOML file. Each endpoint's client secret goes to a file beside it."""
    lines = ["[collector]"] + [f"{k} = {_toml(v)}" for k, v in collector.items()]
    for e in endpoints:
        e = dict(e)
        if "secret" in e:
            secret_file = path.parent / f"{e['name']}.secret"
            secret_file.write_text(e.pop("secret"))
            e["client_secret_file"] = str(secret_file)
        lines += ["", "[[endpoint]]"] + [f"{k} = {_toml(v)}" for k, v in e.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def endpoint(name: str, supplier: str, server_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "supplier": supplier,
        "url": server_url,
        "token_url": f"{server_url}/token",
        "client_id": CLIENT_ID,
        "secret": CLIENT_SECRET,
        **extra,
    }


# -- DDAS-SHV.yaml ------------------------------------------------------------------------------


class SpecError(AssertionError):
    pass


@pytest.fixture(scope="session")
def openapi() -> Callable[..., None]:
    """Validates one recorded exchange (request and response) against DDAS-SHV.yaml, with its
    Uitwisselmodel resolved to the official JSON schema in ../shared. A failure names the
    operation and the kind of error only: the values (test BSNs among them) stay out of the
    test output."""
    from openapi_core import Config, OpenAPI
    from openapi_core.testing import MockRequest, MockResponse

    spec = yaml.safe_load(SPEC.read_text())
    spec["components"]["schemas"]["Uitwisselmodel"] = {"$ref": SCHEMA.as_uri()}
    api = OpenAPI.from_dict(
        spec,
        config=Config(extra_media_type_deserializers={"application/problem+json": json.loads}),
    )

    def check(ex: Exchange, *, request_valid: bool = True) -> None:
        """`request_valid=False`: a request that breaks the spec on purpose; its answer is
        still checked."""
        content_type = ex.headers.get("content-type", "application/json")
        request = MockRequest(
            "https://api.gegevensuitwissel.com", ex.method.lower(), f"/v1{ex.path}",
            headers=ex.headers, data=ex.body, content_type=content_type,
        )  # fmt: skip
        response = MockResponse(
            ex.response_body, status_code=ex.status, headers=ex.response_headers,
            content_type=ex.response_headers.get("content-type", ""),
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Unsupported scheme type": oauth2
            checks = [("response", lambda: api.validate_response(request, response))]
            if request_valid:
                checks.insert(0, ("request", lambda: api.validate_request(request)))
            for what, validate in checks:
                try:
                    validate()
                except Exception as exc:
                    cause = exc.__cause__
                    errors = getattr(cause, "schema_errors", ()) or ()
                    paths = [
                        "/".join(str(p) for p in getattr(e, "absolute_path", ())) for e in errors
                    ]
                    raise SpecError(
                        f"{ex.method} {ex.path} -> {ex.status}: {what} does not conform to "
                        f"DDAS-SHV.yaml ({type(exc).__name__}, {type(cause).__name__}, at {paths})"
                    ) from None

    return check


Waiter = Callable[[Callable[[], Awaitable[bool]], float], Awaitable[None]]


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.1)
