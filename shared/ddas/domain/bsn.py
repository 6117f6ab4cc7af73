"""The burgerservicenummer (BSN): normalisation and the 11-check (elfproef).

domain.md: strip non-digits, left-pad 8 digits to 9; a BSN is valid when the weighted sum of its
digits with weights 9, 8, 7, 6, 5, 4, 3, 2, -1 is divisible by 11 and it is not all zeros. A
failing BSN is a warning: the record still counts.

Both functions sit on the hot path of the rule engine (one call per client, ~300,000 per national
delivery), so the common case (already 9 ASCII digits) returns early without building anything.
"""

from __future__ import annotations

__all__ = ["check_digit", "is_valid", "normalise"]


def normalise(value: str) -> str:
    """The BSN as 9 digits: non-digits stripped, 8 digits left-padded with a zero.

    A value that is already 9 ASCII digits is returned as is (the same object). Anything else
    that does not end up as 8 or 9 digits is returned stripped but unpadded, so that `is_valid`
    rejects it and equal inputs still compare equal.
    """
    if len(value) == 9 and value.isascii() and value.isdigit():
        return value
    # Only ASCII digits count: str.isdigit() also accepts e.g. superscripts and Arabic digits.
    digits = "".join(c for c in value if "0" <= c <= "9")
    return "0" + digits if len(digits) == 8 else digits


def is_valid(bsn: str) -> bool:
    """The 11-check on a normalised BSN (9 ASCII digits, not all zeros)."""
    if len(bsn) != 9 or not (bsn.isascii() and bsn.isdigit()) or bsn == "000000000":
        return False
    v = bsn.encode()
    # On the byte values: every digit carries +48 ("0"), and 48 * (9+8+...+2-1) = 48 * 43 = 2064
    # is 7 modulo 11, so the digit sum is divisible by 11 exactly when the byte sum is 7 mod 11.
    return (
        v[0] * 9 + v[1] * 8 + v[2] * 7 + v[3] * 6 + v[4] * 5 + v[5] * 4 + v[6] * 3 + v[7] * 2 - v[8]
    ) % 11 == 7


def check_digit(first8: str) -> int | None:
    """The last digit that makes `first8 + digit` pass the 11-check, or None when none does.

    Used by the generator to make valid test BSNs; `first8` must be 8 ASCII digits.
    """
    s = sum(int(d) * w for d, w in zip(first8, (9, 8, 7, 6, 5, 4, 3, 2), strict=True)) % 11
    # s - digit must be 0 mod 11, so digit = s; 10 has no single digit.
    return None if s == 10 else s
