"""`ddas infra up|status|down` as a developer runs it: the real command, a second broker and
database on ports and a run folder of the test's own (the session's own stay untouched)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from ddas import infra
from ddas.infra import InfraConfig, _process
from ddas.infra.kafka import probe

pytestmark = pytest.mark.integration

DDAS = str(Path(sys.executable).with_name("ddas"))


def _ddas(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DDAS, "infra", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _exports(stdout: str) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in stdout.splitlines())
    return {key: value for key, value in pairs}


def _our_processes(*needles: str) -> list[str]:
    """Command lines of live processes that mention one of `needles` (zombies excluded)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and _process.is_alive(int(proc.name)):
            cmd = _process.cmdline(int(proc.name))
            if any(n in cmd for n in needles):
                found.append(f"{proc.name}: {cmd[:160]}")
    return found


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DDAS_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("DATABASE_URL", None)
    env.update(
        DDAS_RUN_DIR=str(tmp_path / "run"),
        DDAS_KAFKA_PORT=str(_process.free_port()),
        DDAS_KAFKA_CONTROLLER_PORT=str(_process.free_port()),
        DDAS_PG_PORT=str(_process.free_port()),
    )
    return env


def test_up_twice_status_down_leaves_nothing_behind(isolated_env: dict[str, str]) -> None:
    run_dir = isolated_env["DDAS_RUN_DIR"]
    try:
        first = _ddas("up", env=isolated_env)
        assert first.returncode == 0, first.stderr
        settings = _exports(first.stdout)
        assert settings == {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{isolated_env['DDAS_KAFKA_PORT']}",
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{isolated_env['DDAS_PG_PORT']}/ddas",
        }
        assert "kafka: started" in first.stderr and "postgres: started" in first.stderr

        # Harmless the second time: same processes, nothing restarted.
        began = time.monotonic()
        second = _ddas("up", env=isolated_env)
        assert second.returncode == 0, second.stderr
        assert _exports(second.stdout) == settings
        assert "kafka: running" in second.stderr and "postgres: running" in second.stderr
        assert time.monotonic() - began < 20

        status = _ddas("status", env=isolated_env)
        assert status.returncode == 0, status.stderr
        assert _exports(status.stdout) == settings

        # What it printed works for real clients.
        pg_state = _process.read_state(Path(run_dir) / "postgres" / "postgres.json")
        assert pg_state is not None
        assert _process.run_sync(probe(settings["KAFKA_BOOTSTRAP_SERVERS"]))
        assert _process.run_sync(_select_one(settings["DATABASE_URL"])) == 1

        down = _ddas("down", env=isolated_env)
        assert down.returncode == 0, down.stderr
        assert "stopped: kafka, postgres" in down.stderr
        assert _our_processes(run_dir, pg_state["data_dir"]) == []
        assert not Path(pg_state["base_dir"]).exists()

        again = _ddas("down", env=isolated_env)
        assert again.returncode == 0 and "nothing was running" in again.stderr
        assert _ddas("status", env=isolated_env).returncode == 3
    finally:
        # Whatever failed above, stop what this test started.
        cfg = InfraConfig(
            run_dir=Path(run_dir),
            kafka_port=int(isolated_env["DDAS_KAFKA_PORT"]),
            pg_port=int(isolated_env["DDAS_PG_PORT"]),
        )
        infra.down(cfg)


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()
