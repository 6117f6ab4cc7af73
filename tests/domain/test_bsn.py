"""The BSN: normalisation and the 11-check (domain.md)."""

from __future__ import annotations

import random

import pytest

from ddas.domain.bsn import check_digit, is_valid, normalise


def _reference(bsn: str) -> bool:
    """The 11-check written out as domain.md states it."""
    if len(bsn) != 9 or not bsn.isdigit() or set(bsn) == {"0"}:
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(int(d) * w for d, w in zip(bsn, weights, strict=True)) % 11 == 0


@pytest.mark.parametrize("bsn", ["111222333", "123456782", "999900006", "010000008"])
def test_valid_numbers_pass(bsn: str) -> None:
    assert is_valid(bsn)


@pytest.mark.parametrize(
    "bsn",
    [
        "123456789",  # off by one digit
        "000000000",  # the weighted sum is 0, but all zeros is excluded
        "12345678",  # 8 digits: is_valid takes normalised input
        "1234567820",  # 10 digits
        "12345678a",
        "１２３４５６７８２",  # full-width digits are not ASCII digits
        "",
    ],
)
def test_invalid_numbers_fail(bsn: str) -> None:
    assert not is_valid(bsn)


def test_matches_the_written_out_rule_on_random_numbers() -> None:
    rng = random.Random(11)
    for _ in range(20_000):
        bsn = f"{rng.randrange(10**9):09d}"
        assert is_valid(bsn) == _reference(bsn), bsn


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123456782", "123456782"),
        (" 123456782 ", "123456782"),
        ("123.456.782", "123456782"),
        ("1234-56-782", "123456782"),
        ("10000008", "010000008"),  # 8 digits: left-padded
        ("1234567", "1234567"),  # too short to pad: stays invalid
        ("abc", ""),
        ("", ""),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_normalise_returns_a_clean_value_itself() -> None:
    value = "".join(["1234", "56782"])  # a fresh object, as from a decoder
    assert normalise(value) is value


def test_check_digit_makes_valid_numbers() -> None:
    for stem in ("12345678", "00000001", "99999999", "31415926"):
        digit = check_digit(stem)
        if digit is None:
            assert not any(is_valid(stem + str(d)) for d in range(10))
        else:
            assert is_valid(stem + str(digit))
            assert sum(is_valid(stem + str(d)) for d in range(10)) == 1
