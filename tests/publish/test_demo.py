"""`ddas demo` (what `make demo` runs) as a process, end to end, on Kafka and PostgreSQL of its
own (their own ports and run directory), with nothing of the session's broker or database in its
environment:

1. it starts everything, prints the state, the headline figures, the report's URL (which
   answers), the published statistics and the e-mails the services sent (its own mail server
   received them), and on Ctrl-C (SIGINT), or SIGTERM, stops all it started: the services'
   ports are closed and Kafka and PostgreSQL are down;
2. run twice on a Kafka and PostgreSQL that were already running, the second run works as well,
   says that its delivery replaces the first one's figures, and leaves the two running.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from ddas import infra
from tests.processes import REPO, clean_environment

pytestmark = pytest.mark.integration

DDAS = str(Path(sys.executable).with_name("ddas"))


def demo_environment(run_dir: Path) -> dict[str, str]:
    return clean_environment() | {
        "DDAS_KAFKA_PORT": os.environ.get("DDAS_DEMO_TEST_KAFKA_PORT", "19592"),
        "DDAS_KAFKA_CONTROLLER_PORT": os.environ.get("DDAS_DEMO_TEST_CONTROLLER_PORT", "19593"),
        "DDAS_PG_PORT": os.environ.get("DDAS_DEMO_TEST_PG_PORT", "15932"),
        "DDAS_RUN_DIR": str(run_dir),
        "PYTHONUNBUFFERED": "1",
        **({"DDAS_PG_BIN": os.environ["DDAS_PG_BIN"]} if "DDAS_PG_BIN" in os.environ else {}),
    }


def infra_config(env: dict[str, str]) -> infra.InfraConfig:
    return infra.InfraConfig(
        run_dir=Path(env["DDAS_RUN_DIR"]),
        kafka_port=int(env["DDAS_KAFKA_PORT"]),
        kafka_controller_port=int(env["DDAS_KAFKA_CONTROLLER_PORT"]),
        pg_port=int(env["DDAS_PG_PORT"]),
    )


class Demo:
    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env, self.args = env, args
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Demo:
        self.proc = await asyncio.create_subprocess_exec(
            DDAS, "demo", "--trajecten", "800", *self.args,
            cwd=REPO, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return self

    async def until(self, text: str, timeout: float = 400) -> None:
        """Read its output until a line holds `text`."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            left = deadline - time.monotonic()
            line = await asyncio.wait_for(self.proc.stdout.readline(), max(left, 0.1))
            if not line:
                raise AssertionError(f"the demo ended without {text!r}:\n{self.text}")
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    async def finish(self, timeout: float = 120) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        rest = await asyncio.wait_for(self.proc.stdout.read(), timeout)
        self.lines += rest.decode(errors="replace").splitlines()
        return await asyncio.wait_for(self.proc.wait(), timeout)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    async def kill(self) -> None:
        """Stop it, whatever happened: SIGTERM (it stops all it started, as on Ctrl-C), then
        SIGKILL if it hangs."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 90)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def closed(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as s:
        return s.connect_ex((host, int(port))) != 0


def check_output(text: str) -> dict[str, str]:
    """What the demo promises to print; returns the URLs and ids it printed."""
    assert "Toestand: gepubliceerd" in text, text
    assert "Op-orde-rapport:" in text
    assert re.search(r"\d+ trajecten, \d+ unieke cliënten, \d+ actief", text)
    assert re.search(r"totale schuld van actieve trajecten: EUR [\d.]+", text)
    assert re.search(r"Statistieken 2025-01-01 t/m 2025-06-30 \(versie \d+\)", text)
    assert re.search(r"^totaal\s+800\s", text, re.M), text  # 800 trajectories, rounded: 800
    # The e-mails report and publish sent, as the demo's own mail server received them: the
    # op-orde-rapport, the approval and the publication, to the file's contact person.
    mails = text.split("E-mails van de diensten", 1)[1]
    for subject in (
        "Op-orde-rapport klaar voor",
        "DDAS: levering goedgekeurd",
        "DDAS: cijfers gepubliceerd",
    ):
        assert re.search(rf"^  aan \S+@\S+\.example\.nl: {subject}", mails, re.M), text
    # ... and kept to be read: the op-orde-rapport's e-mail links to the report.
    mail_dir = Path(re.search(r"E-mails van de diensten .*; in (\S+)\):", text).group(1))  # type: ignore[union-attr]
    levering = re.search(r"levering ([0-9a-f-]{36})", text).group(1)  # type: ignore[union-attr]
    saved = sorted(mail_dir.glob(f"{levering}-*.eml"))
    assert len(saved) >= 3
    body = email.message_from_bytes(saved[0].read_bytes(), policy=email.policy.default)
    assert "Op-orde-rapport" in str(body["Subject"])
    assert f"/v1/leveringen/{levering}/rapport" in body.get_body(("plain",)).get_content()
    found = {
        "rapport": re.search(r"rapport: (http://\S+/rapport)", text),
        "statistieken": re.search(r"(http://\S+/v1/statistieken\?periode=\S+)", text),
        "levering": re.search(r"levering ([0-9a-f-]{36})", text),
        "organisatie": re.search(r"Token organisatie:\s+(\S+)", text),
    }
    assert all(found.values()), (found, text)
    return {k: m.group(1) for k, m in found.items() if m}


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_the_demo_runs_end_to_end_and_ctrl_c_stops_all_it_started(
    tmp_path: Path, stop: signal.Signals
) -> None:
    env = demo_environment(tmp_path / "run")
    demo = await Demo(env).start()
    try:
        await demo.until("Ctrl-C stopt alles")
        printed = check_output(demo.text)
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.get(
                printed["rapport"], headers={"Authorization": f"Bearer {printed['organisatie']}"}
            )
            assert r.status_code == 200 and r.json()["levering"]["id"] == printed["levering"]
            r = await client.get(printed["statistieken"])
            assert r.status_code == 200 and r.json()["versie"] == 1
        urls = re.findall(r"^  \w+\s+(http://127\.0\.0\.1:\d+)$", demo.text, re.M)
        assert len(urls) == 4
        assert demo.proc is not None
        demo.proc.send_signal(stop)
        assert await demo.finish() == 0, demo.text
    finally:
        await demo.kill()
    assert "Gestopt." in demo.text
    assert all(closed(u) for u in urls)
    status = await asyncio.to_thread(infra.status, infra_config(env))
    assert not status.kafka.running and not status.postgres.running  # type: ignore[union-attr]


async def test_the_demo_again_replaces_the_previous_figures(tmp_path: Path) -> None:
    env = demo_environment(tmp_path / "run")
    cfg = infra_config(env)
    await asyncio.to_thread(infra.up, cfg)  # running before: the demo must leave it running
    try:
        first = await Demo(env, "--stop").start()
        try:
            assert await first.finish(400) == 0, first.text
        finally:
            await first.kill()
        printed = check_output(first.text)
        second = await Demo(env, "--stop").start()
        try:
            assert await second.finish(400) == 0, second.text
        finally:
            await second.kill()
        check_output(second.text)
        assert (
            f"vervangt de cijfers van de eerdere levering {printed['levering']}" in second.text
        ), second.text
        assert "(versie 2)" in second.text
        status = await asyncio.to_thread(infra.status, cfg)
        assert status.all_running
    finally:
        await asyncio.to_thread(infra.down, cfg)
