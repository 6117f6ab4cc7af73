"""The string formats of the SHV schema, with exactly the semantics of the DDAS-app.

The DDAS-app validates with ajv 8 and ajv-formats 3 in its default "full" mode. Python's own
checkers differ (`date.fromisoformat` accepts `20250101`, jsonschema's `date-time` needs an extra
package, `email` only looks for an `@`), so each format is ported here from ajv-formats 3.0.1
`dist/formats.js`:

- date: `^(\\d\\d\\d\\d)-(\\d\\d)-(\\d\\d)$`, month 1-12, day within the month (leap years as in
  RFC 3339 appendix C). Year 0000 is accepted, as ajv does.
- time (strict time zone):
  `^(\\d\\d):(\\d\\d):(\\d\\d(?:\\.\\d+)?)(z|([+-])(\\d\\d)(?::?(\\d\\d))?)?$`, case-insensitive; a
  zone is required; hour <= 23, minute <= 59, second < 60, or a leap second (second < 61) at
  23:59 UTC.
- date-time: split on one `t`/`T` or one JavaScript whitespace character into exactly two parts,
  a valid date and a valid time.
- email: the ajv-formats "full" regular expression, case-insensitive.

Porting notes (why the patterns are not copied verbatim): JavaScript's `\\d` and `[a-z]` with the
`i` flag (no `u` flag) only match ASCII, so the Python patterns use `[0-9]` and `re.ASCII`
(otherwise `re.IGNORECASE` lets `[a-z]` match the long s and the Kelvin sign); JavaScript's `$`
without the `m` flag only matches at the very end, so the patterns use `fullmatch`; and
JavaScript's `\\s` is a different set from Python's, so it is spelled out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jsonschema import FormatChecker

__all__ = ["FORMATS", "format_checker", "is_date", "is_date_time", "is_email", "is_time"]

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_TIME = re.compile(
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]+)?)(z|([+-])([0-9]{2})(?::?([0-9]{2}))?)?",
    re.IGNORECASE | re.ASCII,
)

# ECMAScript WhiteSpace and LineTerminator: what `\s` matches in ajv-formats' /t|\s/i.
_JS_WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_DATE_TIME_SEPARATOR = re.compile(f"[tT{_JS_WHITESPACE}]")

_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
    re.IGNORECASE | re.ASCII,
)
#: The email pattern for `re.search` (as msgspec's `Meta(pattern=...)` applies it): anchored.
EMAIL_SEARCH_PATTERN = f"(?ai)^(?:{_EMAIL.pattern})\\Z"


def _is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def is_date(value: str) -> bool:
    """RFC 3339 full-date as ajv-formats checks it."""
    m = _DATE.fullmatch(value)
    if m is None:
        return False
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    if not 1 <= month <= 12:
        return False
    last = 29 if month == 2 and _is_leap_year(year) else _DAYS[month]
    return 1 <= day <= last


def is_time(value: str) -> bool:
    """RFC 3339 full-time (a time zone is required) as ajv-formats checks it."""
    m = _TIME.fullmatch(value)
    if m is None:
        return False
    hour, minute, second = int(m[1]), int(m[2]), float(m[3])
    zone, sign = m[4], -1 if m[5] == "-" else 1
    zone_hour, zone_minute = int(m[6] or 0), int(m[7] or 0)
    if zone_hour > 23 or zone_minute > 59 or not zone:
        return False
    if hour <= 23 and minute <= 59 and second < 60:
        return True
    # A leap second is only valid at 23:59 UTC.
    utc_minute = minute - zone_minute * sign
    utc_hour = hour - zone_hour * sign - (1 if utc_minute < 0 else 0)
    return utc_hour in (23, -1) and utc_minute in (59, -1) and second < 61


def is_date_time(value: str) -> bool:
    """RFC 3339 date-time as ajv-formats checks it."""
    parts = _DATE_TIME_SEPARATOR.split(value)
    return len(parts) == 2 and is_date(parts[0]) and is_time(parts[1])


def is_email(value: str) -> bool:
    """An e-mail address as ajv-formats' "full" mode checks it."""
    return _EMAIL.fullmatch(value) is not None


#: Format name -> check of a string value. Formats only constrain strings: other types pass.
FORMATS: dict[str, Callable[[str], bool]] = {
    "date": is_date,
    "time": is_time,
    "date-time": is_date_time,
    "email": is_email,
}


def format_checker() -> FormatChecker:
    """A jsonschema FormatChecker with the DDAS-app's semantics for the schema's four formats
    (and no others), for the reference validator in the tests. jsonschema is a test dependency:
    the check itself compiles the schema (see `exact`)."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    for name, check in FORMATS.items():
        checker.checks(name)(_strings_only(check))
    return checker


def _strings_only(check: Callable[[str], bool]) -> Callable[[object], bool]:
    def checked(instance: object) -> bool:
        return not isinstance(instance, str) or check(instance)

    return checked
