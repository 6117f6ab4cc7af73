"""A real, throwaway PostgreSQL cluster for tests and laptops, made with the machine's binaries.

Each start makes a fresh cluster in a new temp folder (initdb, pg_ctl, one `ddas` database,
trust authentication on loopback only); `stop` shuts it down and deletes the folder. PostgreSQL
refuses to run as root, so as root every server command runs as the `postgres` user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ddas.infra import _process
from ddas.infra.config import InfraConfig, InfraError

PG_USER = "postgres"

# Throwaway cluster: durability is traded for speed (a crash of the machine loses it anyway).
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1",
    "-c fsync=off",
    "-c synchronous_commit=off",
    "-c full_page_writes=off",
    "-c max_connections=200",
)


@dataclass(frozen=True)
class PostgresStatus:
    running: bool
    database_url: str
    pid: int | None = None
    started: bool = False
    """True when this call started it (False: it was already running)."""

    @property
    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url}


def _state_file(cfg: InfraConfig) -> Path:
    return cfg.pg_run_dir / "postgres.json"


def _pid_file(cfg: InfraConfig) -> Path:
    return cfg.pg_run_dir / "postgres.pid"


def _url(port: int, database: str) -> str:
    return f"postgresql://{PG_USER}@127.0.0.1:{port}/{database}"


def find_bin_dir(cfg: InfraConfig) -> Path:
    """The directory holding initdb and pg_ctl: DDAS_PG_BIN, else the newest Debian install."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))

    candidates: list[Path] = []
    if cfg.pg_bin:
        candidates.append(cfg.pg_bin)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise InfraError(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found: install postgresql "
        "(apt-get install postgresql), set DDAS_PG_BIN, or set DATABASE_URL to a running server"
    )


def _server_user() -> pwd.struct_passwd | None:
    """The account the server runs as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        raise InfraError(
            "running as root, and PostgreSQL refuses root, but there is no 'postgres' user to "
            "run it as (apt-get install postgresql creates one)"
        ) from None


def _as_server_user(argv: list[str]) -> list[str]:
    if _server_user() is None:
        return argv
    runuser = shutil.which("runuser")
    if not runuser:
        raise InfraError(
            "running as root, but runuser (util-linux) is missing to drop to 'postgres'"
        )
    return [runuser, "-u", PG_USER, "--", *argv]


def _run(argv: list[str], *, cwd: Path, what: str) -> None:
    result = subprocess.run(
        _as_server_user(argv),
        cwd=cwd,  # a folder the postgres user may enter (not root's home)
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        # The postmaster that pg_ctl leaves behind gets its own session: a Ctrl-C meant for the
        # tests does not take the database down mid-run.
        start_new_session=True,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise InfraError(f"{what} failed: {lines[-1].strip()}")


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first)
    except (OSError, ValueError):
        return None


def _ours(pid: int, data_dir: str) -> bool:
    cmd = _process.cmdline(pid)
    return "postgres" in cmd and data_dir in cmd


def status(cfg: InfraConfig) -> PostgresStatus:
    state = _process.read_state(_state_file(cfg)) or {}
    pid, data_dir = state.get("pid"), state.get("data_dir")
    if isinstance(pid, int) and data_dir and _process.is_alive(pid) and _ours(pid, data_dir):
        url = _url(int(state["port"]), str(state.get("database", cfg.pg_database)))
        return PostgresStatus(running=True, database_url=url, pid=pid)
    return PostgresStatus(running=False, database_url=_url(cfg.pg_port, cfg.pg_database))


def start(cfg: InfraConfig) -> PostgresStatus:
    """Make and start a fresh cluster unless ours is already running."""
    current = status(cfg)
    if current.running:
        return current
    stop(cfg)  # clear what a killed server or a reboot left behind

    bin_dir = find_bin_dir(cfg)
    owner = _server_user()
    if _process.port_in_use(cfg.pg_port):
        raise InfraError(
            f"port {cfg.pg_port} is already in use: set DDAS_PG_PORT to a free port, "
            "or DATABASE_URL to use a running server"
        )

    # A fresh folder outside the checkout: the postgres user may not be able to enter the
    # checkout (root's home), and initdb wants an empty directory it owns.
    base = Path(tempfile.mkdtemp(prefix="ddas-pg-"))
    data_dir, log = base / "data", base / "postgres.log"
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    # Recorded before anything runs, so that `stop` cleans up after a start that failed halfway.
    _process.write_state(
        _state_file(cfg),
        {"pid": None, "port": cfg.pg_port, "database": cfg.pg_database,
         "base_dir": str(base), "data_dir": str(data_dir), "log": str(log)},
    )  # fmt: skip
    try:
        _run(
            [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", PG_USER, "-A", "trust",
             "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"],
            cwd=base, what="initdb",
        )  # fmt: skip
        options = " ".join((f"-p {cfg.pg_port}", f"-k {base}", *_SERVER_OPTIONS))
        _run(
            [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o", options,
             "-w", "-t", "60", "start"],
            cwd=base, what=f"starting PostgreSQL (log: {log})",
        )  # fmt: skip
        _run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(cfg.pg_port),
             "-U", PG_USER, cfg.pg_database],
            cwd=base, what="createdb",
        )  # fmt: skip
        pid = _postmaster_pid(data_dir)
        if pid is None:
            raise InfraError(f"PostgreSQL started but wrote no postmaster.pid in {data_dir}")
    except InfraError:
        stop(cfg)
        raise
    state = _process.read_state(_state_file(cfg)) or {}
    _process.write_state(_state_file(cfg), {**state, "pid": pid})
    _pid_file(cfg).write_text(f"{pid}\n")
    return PostgresStatus(
        running=True, database_url=_url(cfg.pg_port, cfg.pg_database), pid=pid, started=True
    )


def stop(cfg: InfraConfig) -> bool:
    """Shut our cluster down and delete its folder; True if one was running."""
    state = _process.read_state(_state_file(cfg)) or {}
    base, data_dir = state.get("base_dir"), state.get("data_dir")
    stopped = False
    if data_dir:
        pid = _postmaster_pid(Path(data_dir)) or state.get("pid")
        if isinstance(pid, int) and _process.is_alive(pid) and _ours(pid, data_dir):
            try:
                bin_dir = find_bin_dir(cfg)
                _run(
                    [str(bin_dir / "pg_ctl"), "-D", data_dir, "-m", "fast", "-w", "-t", "30",
                     "stop"],
                    cwd=Path(base or "/"), what="pg_ctl stop",
                )  # fmt: skip
            except InfraError:
                pass  # fall through to the signals below
            # pg_ctl returns once the postmaster is gone; make sure, by force if need be.
            if not _process.wait_for_exit(pid, 5.0):
                _process.terminate(pid, timeout=10.0)
            stopped = True
    if base and Path(base).name.startswith("ddas-pg-"):
        shutil.rmtree(base, ignore_errors=True)
    for path in (_pid_file(cfg), _state_file(cfg)):
        path.unlink(missing_ok=True)
    return stopped
