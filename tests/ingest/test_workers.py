"""Ingest's pseudonymising workers (forked processes) do not outlive the service: a service
killed with SIGKILL leaves its pool no time to stop them, the kernel's parent-death signal does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

SCRIPT = """
import sys, time
from ddas.domain.pseudonym import TEST_KEY, Pseudonymiser
from services.ingest.intake import start_workers
pool = start_workers(Pseudonymiser(TEST_KEY), 2)
print(" ".join(str(p) for p in pool._processes), flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by init) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_workers_die_with_a_killed_service() -> None:
    service = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None
        workers = [int(p) for p in service.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        service.send_signal(signal.SIGKILL)
        service.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in workers)
    finally:
        service.kill()
        service.wait()
