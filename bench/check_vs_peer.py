"""Benchmark: `ddas check --json` against the DDAS-app's own engine (Node.js + ajv, all errors),
side by side on the same generated file, in one run.

    .venv/bin/python bench/check_vs_peer.py [--trajecten 200000] [--fouten 0.01] [--rondes 3]

Runs are interleaved (ours, peer, ours, peer, ...) so that machine noise hits both alike; wall time
is the median per side, from runs without any sampling. Peak memory comes from one more run per
side, sampled every 50 ms over the whole process tree (ddas
check forks a second process on large files): the largest sum of the processes' resident sets
(RSS, which counts the file's shared pages once per process) and of their proportional sets
(PSS, which splits shared pages between them). Before timing, both outputs are compared: the two tables must be identical, and
our run must list at least as many findings as the peer reports errors. Ratios are printed as a
Markdown block for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from ddas.testing import PEER_SCHEMA, check_result, ensure_peer, peer_result

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench/out"
DDAS = ROOT / ".venv/bin/ddas"


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return pids


def _memory_kib(pids: list[int]) -> tuple[int, int]:
    """Sum of Rss and of Pss over the processes, in KiB."""
    rss = pss = 0
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss, pss


def run(cmd: list[str], sample: bool = False) -> tuple[float, int, int, bytes, bytes, int]:
    """Run a command; return wall seconds, peak tree RSS and PSS in MiB, stdout, stderr, exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks: dict[str, bytes] = {}
    peak = [0, 0]

    def drain(name: str, stream) -> None:  # type: ignore[no-untyped-def]
        chunks[name] = stream.read()

    def sampler() -> None:
        while proc.poll() is None:
            rss, pss = _memory_kib(_tree(proc.pid))
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.05)

    # Pipes are read in threads so that a large stdout cannot block the child.
    threads = [
        threading.Thread(target=drain, args=(n, s))
        for n, s in (("out", proc.stdout), ("err", proc.stderr))
    ]
    if sample:
        threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    proc.wait()
    wall = time.perf_counter() - t0
    for t in threads:
        t.join()
    return wall, peak[0] // 1024, peak[1] // 1024, chunks["out"], chunks["err"], proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trajecten", type=int, default=200_000)
    ap.add_argument("--fouten", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rondes", type=int, default=3)
    args = ap.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    peer = ensure_peer()
    data = OUT / f"shv_{args.trajecten}_{args.fouten}_{args.seed}.json"
    if not data.exists():
        subprocess.run(
            [
                str(DDAS),
                "generate",
                "--trajecten",
                str(args.trajecten),
                "--seed",
                str(args.seed),
                "--fouten",
                str(args.fouten),
                "-o",
                str(data),
            ],
            check=True,
        )
    ours_cmd = [str(DDAS), "check", "--json", str(data)]
    peer_cmd = ["node", str(peer), str(PEER_SCHEMA), str(data)]

    # Correctness first: the same tables, and every error the peer sees is listed by us.
    _, _, _, ours_out, ours_err, ours_rc = run(ours_cmd)
    _, _, _, peer_out, peer_err, peer_rc = run(peer_cmd)
    if ours_rc not in (0, 1) or peer_rc != 0:
        sys.exit(
            f"a run failed: ours={ours_rc} {ours_err[-500:]!r} peer={peer_rc} {peer_err[-500:]!r}"
        )
    ours_doc = json.loads(ours_out)
    if check_result(ours_doc) != peer_result(peer_out):
        sys.exit("the tables differ between ddas check and the peer")
    peer_errors = json.loads(peer_err.splitlines()[-1])["errors"]
    our_findings = len(ours_doc["bevindingen"]["lijst"])
    our_schema = sum(1 for f in ours_doc["bevindingen"]["lijst"] if f["code"].startswith("schema."))

    walls: dict[str, list[float]] = {"ours": [], "peer": []}
    rss: dict[str, int] = {"ours": 0, "peer": 0}
    pss: dict[str, int] = {"ours": 0, "peer": 0}
    for _ in range(args.rondes):
        for side, cmd in (("ours", ours_cmd), ("peer", peer_cmd)):
            walls[side].append(run(cmd)[0])
    for side, cmd in (("ours", ours_cmd), ("peer", peer_cmd)):
        _, rss[side], pss[side], _, _, _ = run(cmd, sample=True)

    ours_t, peer_t = statistics.median(walls["ours"]), statistics.median(walls["peer"])
    size_mb = data.stat().st_size / 1e6
    cmdline = (
        f".venv/bin/python bench/check_vs_peer.py --trajecten {args.trajecten} "
        f"--fouten {args.fouten} --seed {args.seed} --rondes {args.rondes}"
    )
    print(f"""
### `ddas check --json` vs the DDAS-app engine (ajv, all errors)

Command: `{cmdline}`
Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},
{subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()};
file: {args.trajecten:,} trajectories, {size_mb:.0f} MB, {args.fouten:.0%} flawed.
Tables identical: yes. Peer errors (ajv): {peer_errors}; our findings: {our_findings}
({our_schema} schema, {our_findings - our_schema} rules).

| | ddas check | peer | ratio (ours/peer) |
|---|---:|---:|---:|
| wall time, median of {args.rondes} | {ours_t:.2f} s | {peer_t:.2f} s | {ours_t / peer_t:.2f} |
| peak memory, PSS summed over processes | {pss["ours"]} MiB | {pss["peer"]} MiB | {pss["ours"] / pss["peer"]:.2f} |
| peak memory, RSS summed over processes | {rss["ours"]} MiB | {rss["peer"]} MiB | {rss["ours"] / rss["peer"]:.2f} |
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
