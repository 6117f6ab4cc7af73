"""Benchmark: the whole pipeline (HTTP submit to `gevalideerd`) against `ddas check --json` on the
same generated file, in one run.

    .venv/bin/python bench/pipeline_vs_check.py [--trajecten 200000] [--fouten 0.01] [--seed 7]

What runs, all on this machine: Kafka and PostgreSQL (`ddas.testing.provide_kafka` /
`provide_postgres`: what runs at KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, else what `ddas infra up`
starts, stopped again at the end), one `python -m services.ingest` and two
`python -m services.validate` processes (this machine has 2 cores) in one consumer group on a
chunk topic of `--partities` partitions. Every run gets a database schema, topics and consumer
groups of its own, so it neither sees nor disturbs anything else on the broker or the database.

Timed: `ddas check --json`, then the pipeline, then `ddas check --json` again (interleaved, so that
machine noise hits both alike); the check's time is the mean of its two runs. The pipeline's
time runs from the start of the HTTP POST to the first status poll (every 50 ms, over HTTP, as a
supplier would) that answers `gevalideerd`; the time of the 202 is reported too. Peak memory
is each service process's VmHWM (its peak resident set) read from /proc just before it is
stopped.

Checked in the run: the delivery is `gevalideerd`, validate's stored tables equal `ddas check`'s,
as many facts as trajectories and as many stored findings as `ddas check` lists. A Markdown block
for docs/benchmarks.md is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import httpx

from ddas.cli._http import upload
from ddas.db.migrate import migrate_database
from ddas.domain.reader import parse_document
from ddas.messaging import create_topics, delete_topics, kafka_admin
from ddas.pipeline import topics
from ddas.pipeline.topics import dead_letter
from ddas.registry import add_supplier
from ddas.settings import DatabaseSettings, KafkaSettings
from ddas.testing import provide_kafka, provide_postgres
from services.ingest.intake import _organisation_keys
from services.validate.chunks import decode_kort

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench/out"
DDAS = ROOT / ".venv/bin/ddas"
PYTHON = ROOT / ".venv/bin/python"


def generated(trajecten: int, fouten: float, seed: int) -> Path:
    """The generated file, made once and cached in bench/out/ (shared with check_vs_peer.py)."""
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"shv_{trajecten}_{fouten}_{seed}.json"
    if not data.exists():
        subprocess.run(
            [str(DDAS), "generate", "--trajecten", str(trajecten), "--seed", str(seed),
             "--fouten", str(fouten), "-o", str(data)],
            check=True,
        )  # fmt: skip
    return data


CHECK_CPU: list[float] = []  # CPU seconds of each `ddas check` run (with its forked process)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_check(data: Path) -> tuple[float, dict[str, Any]]:
    """`ddas check --json`: wall seconds and its document (its CPU time into CHECK_CPU)."""
    cpu = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run([str(DDAS), "check", "--json", str(data)], capture_output=True)
    wall = time.perf_counter() - t0
    CHECK_CPU.append(_children_cpu() - cpu)
    if proc.returncode not in (0, 1):
        sys.exit(f"ddas check failed ({proc.returncode}): {proc.stderr[-2000:]!r}")
    return wall, json.loads(proc.stdout)


def organisations(raw: bytes) -> list[str]:
    """The KvK numbers / gemeentecodes of the file's leveringen: the supplier's rights."""
    keys: dict[str, None] = {}
    for header in parse_document(raw).leveringen:
        keys.update(dict.fromkeys(_organisation_keys(header.data)[:1]))
    return list(keys)


class Service:
    """One service process (`python -m services.<name>`), its output in a log file."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(PYTHON), "-m", f"services.{name.split('-')[0]}"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_for(self, pattern: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            for line in text.splitlines():
                if pattern in line:
                    return line
            if self.proc.poll() is not None:
                sys.exit(f"{self.name} exited {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.05)
        sys.exit(f"{self.name}: no {pattern!r} after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the process and its live descendants (ingest's
        forked workers) so far."""
        return sum(_cpu(pid) for pid in [self.proc.pid, *_descendants(self.proc.pid)])

    def peak_rss_mib(self) -> float:
        """The process's peak resident set so far (VmHWM), in MiB."""
        return _peak_mib(self.proc.pid)

    def workers_peak_rss_mib(self) -> float:
        """The peak resident sets of its live descendants (ingest's workers), summed."""
        return sum(_peak_mib(pid) for pid in _descendants(self.proc.pid))

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # the fields after the command name


def _peak_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu(pid: int) -> float:
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def listening_pid(port: int) -> int | None:
    """The process that listens on a local TCP port (the broker, the database), if visible."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                    inodes.add(f"socket:[{f[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(entry.name)
    return None


class Infra:
    """Kafka's and PostgreSQL's processes (with the database's backends), by their ports."""

    def __init__(self, bootstrap: str, database_url: str) -> None:
        kafka_port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
        pg_port = urlparse(database_url).port or 5432
        self.pids = {"Kafka": listening_pid(kafka_port), "PostgreSQL": listening_pid(pg_port)}

    def cpu_seconds(self) -> dict[str, float]:
        return {
            name: sum(_cpu(p) for p in [pid, *_descendants(pid)]) if pid else float("nan")
            for name, pid in self.pids.items()
        }


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (all users: /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / _TICK


@contextlib.contextmanager
def services(envs: list[tuple[str, dict[str, str]]], logs: Path) -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        for name, env in envs:
            started.append(Service(name, env, logs / f"{name}.log"))
        yield started
    finally:
        for service in started:
            service.stop()


async def setup(kafka: KafkaSettings, db: DatabaseSettings, chunk_topic: str, partitions: int,
                orgs: list[str]) -> str:  # fmt: skip
    """Topics, the schema (migrated) and a supplier with rights for `orgs`; its token."""
    await create_topics([chunk_topic], partitions=partitions, settings=kafka)
    await create_topics([dead_letter(chunk_topic), topics.LEVERINGEN], settings=kafka)
    await migrate_database(db)
    conn = await asyncpg.connect(db.url, server_settings={"search_path": db.search_path})
    try:
        return await add_supplier(conn, f"BENCH-{chunk_topic.rsplit('.', 1)[1]}", "Benchmark", orgs)
    finally:
        await conn.close()


async def stable_group(kafka: KafkaSettings, group: str, members: int) -> None:
    deadline = time.monotonic() + 90
    async with kafka_admin(kafka) as admin:
        while time.monotonic() < deadline:
            (response,) = await admin.describe_consumer_groups([group])
            _error, _group, state, _ptype, _protocol, found, *_ = response.groups[0]
            if state == "Stable" and len(found) == members:
                return
            await asyncio.sleep(0.2)
    sys.exit(f"consumer group {group} did not settle with {members} members")


async def stored(db: DatabaseSettings, levering_id: str) -> dict[str, Any]:
    conn = await asyncpg.connect(db.url, server_settings={"search_path": db.search_path})
    try:
        row = await conn.fetchrow(
            "SELECT l.state, v.tabellen::text AS tabellen, "
            "(SELECT count(*) FROM bevindingen b WHERE b.levering_id = l.id) AS bevindingen, "
            # The timeline (database clock, the same machine's): epoch seconds.
            "(SELECT extract(epoch FROM min(c.opgeslagen_op)) FROM validatie_chunks c "
            " WHERE c.levering_id = l.id)::float8 AS eerste_chunk, "
            "(SELECT extract(epoch FROM max(c.opgeslagen_op)) FROM validatie_chunks c "
            " WHERE c.levering_id = l.id)::float8 AS laatste_chunk, "
            "(SELECT count(*) FROM validatie_chunks c WHERE c.levering_id = l.id "
            " AND c.opgeslagen_op <= l.ontvangen_op) AS chunks_vastgelegd, "
            "(SELECT count(*) FROM validatie_chunks c WHERE c.levering_id = l.id) AS chunks, "
            "extract(epoch FROM l.ontvangen_op)::float8 AS vastgelegd, "
            "extract(epoch FROM v.voltooid_op)::float8 AS voltooiing "
            "FROM leveringen l LEFT JOIN validatie v ON v.levering_id = l.id WHERE l.id = $1",
            uuid.UUID(levering_id),
        )
        assert row is not None
        chunks = await conn.fetch(
            "SELECT feiten FROM validatie_chunks WHERE levering_id = $1", uuid.UUID(levering_id)
        )
        feiten = sum(len(decode_kort(c["feiten"])) for c in chunks)
        return {**dict(row), "feiten": feiten, "tabellen": json.loads(row["tabellen"] or "null")}
    finally:
        await conn.close()


async def cleanup(kafka: KafkaSettings, db: DatabaseSettings, names: list[str]) -> None:
    await delete_topics(names, settings=kafka)
    conn = await asyncpg.connect(db.url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{db.search_path}" CASCADE')
    finally:
        await conn.close()


def submit_and_wait(
    url: str, token: str, raw: bytes, timeout: float
) -> tuple[float, float, str, float]:
    """POST the file; poll the status until `gevalideerd`. (seconds to 202, to gevalideerd, id,
    the POST's start as epoch seconds)"""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=auth, timeout=600) as client:
        started = time.time()
        t0 = time.perf_counter()
        content, length = upload(raw)  # as `ddas submit` sends it
        response = client.post(
            "/v1/leveringen",
            content=content,
            headers={"Content-Type": "application/json", **length},
        )
        accepted = time.perf_counter() - t0
        if response.status_code != 202:
            sys.exit(f"submit: {response.status_code} {response.text[:2000]}")
        levering_id = response.json()["id"]
        while True:
            state = client.get(f"/v1/leveringen/{levering_id}").json()["state"]
            if state == "gevalideerd":
                return accepted, time.perf_counter() - t0, levering_id, started
            if state != "ontvangen" or time.perf_counter() - t0 > timeout:
                sys.exit(f"delivery {levering_id}: {state} after {time.perf_counter() - t0:.0f} s")
            time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trajecten", type=int, default=200_000)
    ap.add_argument("--fouten", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--partities", type=int, default=4, help="partitions of the chunk topic")
    ap.add_argument("--validates", type=int, default=2, help="validate processes")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()

    data = generated(args.trajecten, args.fouten, args.seed)
    raw = data.read_bytes()
    orgs = organisations(raw)
    run = uuid.uuid4().hex[:8]
    logs = OUT / f"pipeline-{run}"
    logs.mkdir(parents=True)
    chunk_topic = f"bench.trajecten.{run}"

    with provide_kafka() as bootstrap, provide_postgres() as database_url:
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        db = DatabaseSettings(url=database_url, search_path=f"bench_{run}")
        token = asyncio.run(setup(kafka, db, chunk_topic, args.partities, orgs))
        common = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url,
            "DATABASE_SEARCH_PATH": db.search_path,
            "DDAS_LOG_LEVEL": "INFO",
        }
        ingest_env = {
            **common,
            "DDAS_TEST_MODE": "1",  # the fixed test key: no key to configure for a benchmark
            "DDAS_INGEST_HTTP_PORT": "0",
            "DDAS_INGEST_CHUNK_TOPIC": chunk_topic,
            "DDAS_INGEST_CONSUMER_GROUP": f"bench-ingest-{run}",
            "DDAS_INGEST_KAFKA_INBOUND": "false",
        }
        validate_env = {
            **common,
            "DDAS_VALIDATE_TOPIC": chunk_topic,
            "DDAS_VALIDATE_CONSUMER_GROUP": f"bench-validate-{run}",
            "DDAS_VALIDATE_HTTP_PORT": "0",
        }
        envs = [("ingest", ingest_env)] + [
            (f"validate-{i}", validate_env) for i in range(args.validates)
        ]
        try:
            check_before, check_doc = timed_check(data)
            with services(envs, logs) as procs:
                url = procs[0].wait_for("ingest: ready on").split("ready on ", 1)[1].strip()
                for p in procs[1:]:
                    p.wait_for("validate: ready")
                # The validate group settles first (all members, partitions assigned), so that
                # no rebalance falls inside the timed part.
                asyncio.run(stable_group(kafka, validate_env["DDAS_VALIDATE_CONSUMER_GROUP"],
                                         args.validates))  # fmt: skip
                infra = Infra(bootstrap, database_url)
                cpu_before = {p.name: p.cpu_seconds() for p in procs}
                infra_before = infra.cpu_seconds()
                busy_before, load_before = machine_busy(), os.getloadavg()[0]
                accepted, wall, levering_id, started = submit_and_wait(
                    url, token, raw, args.timeout
                )
                busy = machine_busy() - busy_before
                cpu = {p.name: p.cpu_seconds() - cpu_before[p.name] for p in procs}
                cpu |= {k: v - infra_before[k] for k, v in infra.cpu_seconds().items()}
                peaks = {p.name: p.peak_rss_mib() for p in procs}
                workers = {p.name: p.workers_peak_rss_mib() for p in procs}
                exits = {p.name: p.stop() for p in procs}
            check_after, _ = timed_check(data)
            result = asyncio.run(stored(db, levering_id))
        finally:
            asyncio.run(cleanup(kafka, db, [chunk_topic, dead_letter(chunk_topic)]))

    expected_tables = {"gemeenten": check_doc["gemeenten"], "totaal": check_doc["totaal"]}
    findings = len(check_doc["bevindingen"]["lijst"])
    problems = []
    if result["state"] != "gevalideerd":
        problems.append(f"state {result['state']}")
    if result["tabellen"] != expected_tables:
        problems.append("the stored tables differ from ddas check's")
    if result["feiten"] != args.trajecten:
        problems.append(f"{result['feiten']} facts for {args.trajecten} trajectories")
    if result["bevindingen"] != findings:
        problems.append(f"{result['bevindingen']} stored findings, ddas check lists {findings}")
    if any(code != 0 for code in exits.values()):
        problems.append(f"exit codes {exits}")
    if problems:
        sys.exit("not as ddas check: " + "; ".join(problems) + f" (logs: {logs})")

    check_t = (check_before + check_after) / 2
    size_mb = len(raw) / 1e6
    cmdline = (
        f".venv/bin/python bench/pipeline_vs_check.py --trajecten {args.trajecten} "
        f"--fouten {args.fouten} --seed {args.seed}"
    )
    memory = "\n".join(
        f"| {name} | {mib:.0f} MiB"
        + (f" (its workers: {workers[name]:.0f} MiB)" if workers[name] else "")
        + f" | {cpu[name]:.1f} s |"
        for name, mib in peaks.items()
    )
    memory += "".join(f"\n| {name} | | {cpu[name]:.1f} s |" for name in infra.pids)
    others = busy - sum(cpu.values())
    ours = sum(v for v in cpu.values() if v == v)  # the services, Kafka and PostgreSQL
    check_cpu = sum(CHECK_CPU) / len(CHECK_CPU)
    timeline = "\n".join(
        f"| {what} | {result[key] - started:.2f} s |"
        for what, key in (
            ("validate stored its first chunk", "eerste_chunk"),
            ("validate stored its last chunk", "laatste_chunk"),
            ("ingest recorded the delivery (all chunks acknowledged)", "vastgelegd"),
            ("validate completed it", "voltooiing"),
        )
        if result.get(key) is not None
    )
    timeline += (
        f"\n| chunks validate had stored when ingest recorded the delivery "
        f"| {result['chunks_vastgelegd']} of {result['chunks']} |"
    )
    print(f"""
### The pipeline, HTTP submit to `gevalideerd`, vs `ddas check --json`

Command: `{cmdline}`
Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Kafka,
PostgreSQL, ingest and {args.validates} validate processes on it (chunk topic with
{args.partities} partitions). File: {args.trajecten:,} trajectories, {size_mb:.0f} MB,
{args.fouten:.0%} flawed. Stored tables equal `ddas check`'s: yes; facts: {result["feiten"]:,};
findings: {result["bevindingen"]:,} (as `ddas check`).

| | time | records/s | ratio to `ddas check` |
|---|---:|---:|---:|
| `ddas check --json` (mean of 2: {check_before:.2f} s, {check_after:.2f} s) | {check_t:.2f} s | {args.trajecten / check_t:,.0f} | 1.00 |
| pipeline: submit to 202 | {accepted:.2f} s | | {accepted / check_t:.2f} |
| pipeline: submit to `gevalideerd` | {wall:.2f} s | {args.trajecten / wall:,.0f} | **{wall / check_t:.2f}** |

| service | peak RSS (VmHWM) | CPU from submit to `gevalideerd` |
|---|---:|---:|
{memory}
| the client and everything else on the machine (other users) | | {others:.1f} s |
| the whole machine ({os.cpu_count()} cores; load average {load_before:.2f} at the start) | | {busy:.1f} s of {wall * (os.cpu_count() or 1):.1f} s |

CPU: the pipeline's services, Kafka and PostgreSQL {ours:.1f} s; `ddas check` {check_cpu:.1f} s
(mean of its two runs, with its forked process): **{ours / check_cpu:.2f}×**.

| when (from the start of the POST; database clock, transaction starts) | |
|---|---:|
{timeline}
| the 202 | {accepted:.2f} s |
| the status poll saw `gevalideerd` | {wall:.2f} s |

Logs: {logs.relative_to(ROOT)}
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
