"""The command line around ingest: `ddas supplier`, `ddas submit`, `ddas status`, and the service
run as its own process (`python -m services.ingest`, `ddas serve ingest`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from tests.ingest.conftest import APP_750, Ingest
from tests.ingest.helpers import JSON, auth

pytestmark = pytest.mark.integration

DDAS = str(Path(sys.executable).with_name("ddas"))


def _env(ingest: Ingest, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DDAS_", "KAFKA_", "DATABASE_"))
    }
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=ingest.kafka.bootstrap_servers,
        DATABASE_URL=ingest.database.url,
        DATABASE_SEARCH_PATH=ingest.schema,
        **extra,
    )
    return env


async def _run(ingest: Ingest, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args,
        env=_env(ingest, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_supplier_submit_and_status(ingest: Ingest, tmp_path: Path) -> None:
    code, token, err = await _run(
        ingest, DDAS, "supplier", "add", "cli", "--naam", "CLI bv", "--org", "10000001"
    )
    assert code == 0, err
    token = token.strip()
    assert len(token) >= 40 and "alleen als hash" in err
    stored = await ingest.db.fetchval("SELECT token_hash FROM tokens WHERE leverancier = 'cli'")
    assert stored != token and token not in stored  # only the hash

    code, out, err = await _run(
        ingest, DDAS, "submit", str(APP_750), "--token", token, "--url", ingest.url
    )
    assert code == 0, err
    levering_id, how, url = out.split()
    assert how == "ontvangen" and url.endswith(levering_id)
    code, out, _ = await _run(ingest, DDAS, "submit", str(APP_750), "--url", ingest.url,
                              DDAS_TOKEN=token)  # fmt: skip
    assert code == 0 and out.split()[:2] == [levering_id, "was"]

    code, out, err = await _run(
        ingest, DDAS, "status", levering_id, "--json", "--token", token, "--url", ingest.url
    )
    assert code == 0, err
    assert json.loads(out)["state"] == "ontvangen" and json.loads(out)["trajecten"] == 750
    code, out, _ = await _run(ingest, DDAS, "status", levering_id, "--token", token,
                              "--url", ingest.url)  # fmt: skip
    assert code == 0 and "toestand     ontvangen" in out

    # Errors: one line, no traceback, and an exit status that says which kind.
    bad = tmp_path / "kapot.json"
    bad.write_text("{kapot")
    for args, status, start in [
        (("submit", str(APP_750), "--token", "fout"), 1, "ddas submit: 401 "),
        (("submit", str(bad), "--token", token), 1, "ddas submit: 400 Geen leesbaar"),
        (("submit", str(tmp_path / "weg.json"), "--token", token), 2, "ddas submit: "),
        (("status", "00000000-0000-0000-0000-000000000000", "--token", token), 1,
         "ddas status: 404 "),
        (("submit", str(APP_750)), 2, "ddas submit: geen token"),
    ]:  # fmt: skip
        code, out, err = await _run(ingest, DDAS, *args, "--url", ingest.url)
        assert code == status, (args, err)
        assert err.startswith(start) and err.count("\n") == 1 and "Traceback" not in err, err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    code, _, err = await _run(ingest, DDAS, "submit", str(APP_750), "--token", token,
                              "--url", closed, "--retries", "0")  # fmt: skip
    assert code == 2 and "niet bereikbaar" in err

    code, out, _ = await _run(ingest, DDAS, "supplier", "list")
    assert code == 0 and "cli" in out and "10000001" in out
    code, out, _ = await _run(ingest, DDAS, "supplier", "revoke", token)
    assert code == 0
    await ingest.service.registry.refresh()  # type: ignore[union-attr]
    code, _, err = await _run(ingest, DDAS, "status", levering_id, "--token", token,
                              "--url", ingest.url)  # fmt: skip
    assert code == 1 and "401" in err


async def test_the_service_as_its_own_process(ingest: Ingest) -> None:
    # Without a key, outside test mode: refuses to start, with the reason.
    code, _, err = await _run(ingest, DDAS, "serve", "ingest")
    assert code == 1 and "DDAS_PSEUDONYM_KEY" in err and "Traceback" not in err

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.ingest",
        env=_env(
            ingest,
            DDAS_PSEUDONYM_KEY="k" * 40,
            DDAS_INGEST_HTTP_PORT=str(port),
            DDAS_INGEST_CHUNK_TOPIC=ingest.chunk_topic,
            DDAS_INGEST_STATUS_TOPIC=ingest.status_topic,
            DDAS_INGEST_KAFKA_INBOUND="false",
            DDAS_INGEST_CONSUMER_GROUP="ingest-process-test",
            DDAS_INGEST_LOG_LEVEL="WARNING",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None

        async def ready() -> None:
            assert process.stdout is not None
            while b"ready on" not in (line := await process.stdout.readline()):
                assert line, "the service ended before it was ready"

        await asyncio.wait_for(ready(), 60)
        drain = asyncio.create_task(process.stdout.read())  # keep the pipe from filling up
        token = await ingest.supplier("process", ["10000001"])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            response = await client.post(
                "/v1/leveringen", content=APP_750.read_bytes(), headers=auth(token, **JSON)
            )
            assert response.status_code == 202
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await drain
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
