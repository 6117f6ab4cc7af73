"""Paging (ddas.supplier_api.pages): cutting a file into pages and putting the pages back
together gives the same document, whatever the page size and however the pages are formatted."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from ddas.supplier_api.pages import Page, PageError, Pager, assemble, read_page
from ddas.testing import shared_dir
from tests.collector.conftest import FILE_1500

SPEC_EXAMPLES = shared_dir() / "ddas/spec/schuldhulpverlening-v1.0"


def pages_of(pager: Pager, size: int, *, indent: int = -1) -> list[Page]:
    out = []
    total = pager.total_pages(size)
    for n in range(1, total + 1):
        body = msgspec.json.encode({
            "gegevens": pager.page(n, size),
            "paginering": {"pageSize": size, "currentPage": n, "totalPages": total,
                           "totalRecords": pager.total_records},
        })  # fmt: skip
        out.append(read_page(msgspec.json.format(body, indent=indent), n))
    return out


@pytest.mark.parametrize("size", [200, 1, 1499, 1500, 25_000])
def test_the_1500_file_comes_back_whole(pager_1500: Pager, size: int) -> None:
    raw = FILE_1500.read_bytes()
    pages = pages_of(pager_1500, size)
    assert len(pages) == -(-1500 // size)
    assert all(p.records <= size for p in pages)
    assembled = assemble(pages)
    assert assembled.records == 1500
    assert orjson.loads(assembled.raw) == orjson.loads(raw)


def test_the_same_data_gives_the_same_bytes_however_it_is_formatted(pager_1500: Pager) -> None:
    compact = assemble(pages_of(pager_1500, 200)).raw
    pretty = assemble(pages_of(pager_1500, 200, indent=4)).raw
    other_size = assemble(pages_of(pager_1500, 333)).raw
    assert compact == pretty == other_size


@pytest.mark.parametrize(
    "name", ["meerdereLeveringenVoorbeeld.json", "UitgebreidMeervoudigVoorbeeld.json",
             "enkelvoudigVoorbeeld.json"],
)  # fmt: skip
def test_several_leveringen_split_over_pages(name: str) -> None:
    raw = (SPEC_EXAMPLES / name).read_bytes()
    pager = Pager(raw)
    for size in (1, 2, 3):
        assert orjson.loads(assemble(pages_of(pager, size)).raw) == orjson.loads(raw)


def test_a_levering_without_trajectories_keeps_its_place() -> None:
    doc = {
        "startdatumLevering": "2025-01-01",
        "leveringen": [
            {"teller": 1, "schuldhulptrajecten": [{"a": 1}, {"a": 2}]},
            {"teller": 2, "schuldhulptrajecten": []},
            {"teller": 3},
            {"teller": 4, "schuldhulptrajecten": [{"a": 3}]},
            {"teller": 5, "schuldhulptrajecten": []},
        ],
    }
    raw = orjson.dumps(doc)
    pager = Pager(raw)
    for size in (1, 2, 3, 10):
        assert orjson.loads(assemble(pages_of(pager, size)).raw) == doc


def test_pages_that_do_not_fit_together_are_refused(pager_1500: Pager) -> None:
    pages = pages_of(pager_1500, 200)
    with pytest.raises(PageError) as info:
        assemble(pages[:-1])
    assert info.value.code == "paginering-onjuist"
    with pytest.raises(PageError) as info:
        assemble([pages[0], pages[2], *pages[3:]])
    assert info.value.code == "paginering-onjuist"
    other = Page(2, 200, 8, 1500, {**pages[1].root, "codeGegevensleverancier": "X"},
                 pages[1].leveringen)  # fmt: skip
    with pytest.raises(PageError) as info:
        assemble([pages[0], other, *pages[2:]])
    assert info.value.code == "paginas-inconsistent"
    short = Page(8, 200, 8, 1500, pages[7].root, [(pages[7].leveringen[0][0], [])])
    with pytest.raises(PageError) as info:
        assemble([*pages[:7], short])
    assert info.value.code == "records-onvolledig"


def test_a_page_that_is_not_a_page_is_refused() -> None:
    for body in (b"nee", b"{}", b'{"gegevens": {"leveringen": [1]}}'):
        with pytest.raises(PageError) as info:
            read_page(body, 1)
        assert info.value.code == "pagina-ongeldig"
    with pytest.raises(PageError) as info:
        read_page(b'{"gegevens": {}, "paginering": {"pageSize": 1, "currentPage": 2, '
                  b'"totalPages": 3, "totalRecords": 3}}', 1)  # fmt: skip
    assert info.value.code == "paginering-onjuist"
