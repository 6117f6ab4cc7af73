"""`ddas approve`, `ddas withdraw` and `ddas stats` as processes against a running publish
service (in-process, real broker and database): what they print and how they exit."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.processes import REPO, clean_environment

from .conftest import APP_750, Env, oor_of
from .test_gate import PERIODE

pytestmark = pytest.mark.integration

DDAS = str(Path(sys.executable).with_name("ddas"))


async def ddas(*args: str, token: str | None = None) -> tuple[int, str, str]:
    env = clean_environment() | ({"DDAS_TOKEN": token} if token else {})
    proc = await asyncio.create_subprocess_exec(
        DDAS, *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_approve_withdraw_and_stats(env: Env) -> None:
    a = await env.levering("rapport_gereed", periode=PERIODE)
    await env.rapport(a, oor_of(APP_750))
    b = await env.levering("rapport_gereed", periode=("2025-07-01", "2025-12-31"))
    url = ("--url", env.url)

    code, out, err = await ddas("approve", str(a), *url)
    assert code == 2 and "geen token" in err
    code, out, err = await ddas("approve", str(a), *url, token=env.tokens["leverancier"])
    assert code == 1 and err.startswith("ddas approve: 403 Geen toegang")
    code, out, err = await ddas(
        "approve", str(a), *url, "--reden", "akkoord", token=env.tokens["org"]
    )
    assert code == 0, err
    assert out == f"levering {a}: goedgekeurd\n"
    await env.wait_state(a, "gepubliceerd")
    code, out, _ = await ddas("approve", str(a), *url, token=env.tokens["org"])
    assert (code, out) == (0, f"levering {a}: gepubliceerd (was al goedgekeurd)\n")

    code, out, err = await ddas(
        "withdraw", str(b), *url, "--reden", "fout", token=env.tokens["org"]
    )
    assert (code, out) == (0, f"levering {b}: ingetrokken\n"), err
    code, out, err = await ddas("withdraw", str(a), *url, token=env.tokens["org"])
    assert code == 1 and "409" in err and "gepubliceerd" in err

    code, out, err = await ddas("stats", "--periode", "/".join(PERIODE), *url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Statistieken 2025-01-01 t/m 2025-06-30 (versie 1)"
    assert lines[1].split()[:3] == ["gemeente", "trajecten", "clienten"]
    assert any(line.split()[:3] == ["0503", "165", "195"] for line in lines), out
    assert any(line.split()[:2] == ["totaal", "750"] for line in lines), out
    code, out, _ = await ddas(
        "stats", "--periode", "/".join(PERIODE), "--gemeentecode", "0503", "--csv", *url
    )
    assert code == 0 and out.startswith("periode,versie,gemeentecode,tabel,kolom,waarde,status\n")
    assert {line.split(",")[2] for line in out.splitlines()[1:]} == {"0503"}
    code, _, err = await ddas("stats", "--periode", "2020-01-01/2020-06-30", *url)
    assert code == 1 and "404 Geen statistieken" in err
    code, _, err = await ddas("stats", "--periode", "morgen", *url)
    assert code == 1 and "400 Ongeldige periode" in err
    code, _, err = await ddas(
        "stats", "--periode", "2025-01-01/2025-06-30", "--url", "http://127.0.0.1:9"
    )
    assert code == 2 and "niet bereikbaar" in err
