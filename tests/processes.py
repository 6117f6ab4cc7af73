"""Real processes in the tests: the services (`python -m services.<name>`) or any command (a
Prometheus), each with its output appended to a log file. A process may be started again on the
same log (after a kill -9, say): what it waits for is looked for in this start's output only."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def clean_environment() -> dict[str, str]:
    """os.environ without the settings of a broker, a database or a service."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("DDAS_", "KAFKA_", "DATABASE_"))
    }


class Process:
    """`argv` (default: `python -m services.<name>`, where a name like `validate-1` runs
    services.validate) in the repository, with stdout and stderr appended to `log`."""

    def __init__(
        self, name: str, env: dict[str, str], log: Path, argv: list[str] | None = None
    ) -> None:
        self.name, self.env, self.log = name, env, log
        self.module = name.split("-")[0]
        self.argv = argv or [sys.executable, "-m", f"services.{self.module}"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.offset = 0
        self.url: str | None = None

    def start(self) -> Process:
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def output(self) -> str:
        """What this start wrote so far."""
        return self.log.read_bytes()[self.offset :].decode(errors="replace")

    async def ready(self, pattern: str | None = None, timeout: float = 90.0) -> str:
        """Wait for a line of this start's output that matches `pattern` and return its first
        group; without a pattern, the service's 'ready on URL' line and its URL (kept as
        `url`). Fails when the process exits first or the time is up."""
        assert self.proc is not None, "start() it first"
        wanted = pattern or rf"{self.module}: ready on (http://\S+)"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output()
            if m := re.search(wanted, text):
                if pattern is None:
                    self.url = m.group(1)
                return m.group(1)
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{text[-3000:]}")
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{self.name}: no {wanted!r} after {timeout} s:\n{self.output()[-3000:]}"
        )

    @property
    def port(self) -> int:
        """The port of the URL that `ready()` found."""
        assert self.url is not None, "await ready() first"
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and the exit code (0: a graceful stop); SIGKILL when it hangs (the code is
        then -9). None when it was never started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def kill_all(processes: Iterable[Process]) -> None:
    """Kill what is still running (at the end of a test, whatever happened in it)."""
    for p in processes:
        if p.proc is not None and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(10)
