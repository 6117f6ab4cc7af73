"""The renderings of the 750 file's report: the HTML page opened in headless Chromium (Debian's
`chromium`) shows the tables and the charts, loads nothing from the network and holds no
personal data; it prints; the CSV zip holds one table per figure with the JSON's numbers."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import uuid
import zipfile
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from ddas.pipeline.events import decode_levering_event
from services.report import render
from services.report.store import handle_event, latest
from tests.domain.test_tables import FILE_750, SEED_TABLE_1, SEED_TABLE_1_TOTAL, SEED_TABLE_2_TOTAL
from tests.report.conftest import NINE_DIGITS, Delivery, bsns_in, levering_event

pytestmark = pytest.mark.integration


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium", pytrace=False)
    return found


def run_chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            # every host name resolves to nothing: a page that wanted the network would break
            "--host-resolver-rules=MAP * ~NOTFOUND",
            *args,
        ],
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def png_rows(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (filtered) image data of a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(chunk[:4], "big"), int.from_bytes(chunk[4:8], "big")
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.fixture
async def report_750(
    db: asyncpg.Connection, validated: Callable[..., Awaitable[Delivery]]
) -> tuple[int, dict]:
    delivery = await validated(FILE_750.read_bytes())
    event = decode_levering_event(await levering_event(db, delivery.id))
    await handle_event(db, event, base_url="https://ddas.example")
    found = await latest(db, delivery.id)
    assert found is not None
    return found


async def test_html_in_headless_chromium_shows_tables_and_charts_offline(
    report_750: tuple[int, dict], tmp_path: Path
) -> None:
    versie, oor = report_750
    html = render.to_html(oor, versie=versie)
    page = tmp_path / "rapport.html"
    page.write_text(html, encoding="utf-8")

    # self-contained: no reference to anything outside the page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html, re.I)
    assert "@import" not in html and "<script" not in html.lower()
    assert "<link" not in html.lower() and "<img" not in html.lower()
    # no personal data: no BSN of the input (nor any 9-digit number) on the page
    assert not NINE_DIGITS.search(html.encode())
    assert not {m for m in bsns_in(FILE_750.read_bytes()) if m in html.encode()}

    # the page as Chromium renders it: the tables and the charts are there
    dom = run_chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    text = dom.stdout.decode()
    for code, (trajecten, bsn, actief) in SEED_TABLE_1.items():
        assert re.search(
            rf"<td>{code}</td><td[^>]*>[^<]+</td><td>{trajecten}</td><td>{bsn}</td><td>{actief}</td>",
            text,
        ), code
    assert "<td>Totaal</td><td></td>" + "".join(f"<td>{n}</td>" for n in SEED_TABLE_1_TOTAL) in text
    assert "<td>Totaal</td>" + "".join(f"<td>{n}</td>" for n in SEED_TABLE_2_TOTAL) in text
    assert text.count("<svg") == 3  # started phases, last known phase, debt types
    assert text.count("<rect") > 30
    for title in ("Gestarte fases in rapportageperiode", "Laatste bekende fase", "Soort schuld"):
        assert title in text

    # a screenshot (desktop and phone) that is not blank, and a PDF (printable)
    shots = {}
    for name, size in (("desktop", "1000,3400"), ("telefoon", "390,2400")):
        png = tmp_path / f"rapport-{name}.png"
        shot = run_chromium(f"--screenshot={png}", f"--window-size={size}", page.as_uri())
        assert shot.returncode == 0 and png.exists(), shot.stderr.decode()[-2000:]
        width, height, pixels = png_rows(png)
        assert (width, height) == tuple(int(x) for x in size.split(","))
        # a blank page compresses to almost nothing; tables, text and coloured bars do not
        assert png.stat().st_size > 40_000
        assert len(set(pixels[:: max(1, len(pixels) // 200_000)])) > 50
        shots[name] = png
    pdf = tmp_path / "rapport.pdf"
    printed = run_chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    assert printed.returncode == 0 and pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 20_000
    keep = Path("/tmp/ddas-report-screenshots")
    keep.mkdir(exist_ok=True)
    for name, png in shots.items():  # for a person to look at
        shutil.copy(png, keep / f"rapport-750-{name}.png")


async def test_csv_zip_has_one_table_per_figure_with_the_json_numbers(
    report_750: tuple[int, dict],
) -> None:
    _, oor = report_750
    with zipfile.ZipFile(io.BytesIO(render.to_csv_zip(oor))) as z:
        names = z.namelist()
        tables = {
            n: list(csv.reader(io.StringIO(z.read(n).decode("utf-8-sig")), delimiter=";"))
            for n in names
        }
    assert {
        "validatie.csv",
        "tabel1_trajecten_clienten.csv",
        "tabel2_meest_recente_stap.csv",
        "instroom.csv",
        "begeleiding.csv",
        "gestarte_fases.csv",
        "laatste_fase.csv",
        "schulden.csv",
        "schuldsoorten.csv",
    } == set(names)
    t1 = {r[0]: r for r in tables["tabel1_trajecten_clienten.csv"][1:]}
    for code, expected in SEED_TABLE_1.items():
        assert tuple(int(x) for x in t1[code][2:5]) == expected
    assert tuple(int(x) for x in t1["Totaal"][2:5]) == SEED_TABLE_1_TOTAL
    t2 = {r[0]: r for r in tables["tabel2_meest_recente_stap.csv"][1:]}
    assert tuple(int(x) for x in t2["Totaal"][2:10]) == SEED_TABLE_2_TOTAL
    assert int(t2["Totaal"][10]) == 875
    fases = tables["gestarte_fases.csv"]
    totaal = dict(zip(fases[0][2:], (int(x) for x in fases[-1][2:]), strict=True))
    assert totaal == oor["totaal"]["gestarte_fases"]
    instroom = {r[0]: r for r in tables["instroom.csv"][1:]}
    for rij in oor["gemeenten"]:
        assert [int(x) for x in instroom[rij["gemeentecode"]][2:]] == list(rij["instroom"].values())
    soorten = [r for r in tables["schuldsoorten.csv"][1:] if r[0] == "Totaal"]
    assert [r[2] for r in soorten] == ["Zorg", "Publiek", "Nuts", "Overig", "onbekend"]


async def test_json_rendering_is_the_stored_report(report_750: tuple[int, dict]) -> None:
    _, oor = report_750
    assert json.loads(render.to_json(oor)) == oor
    assert uuid.UUID(oor["levering"]["id"])
