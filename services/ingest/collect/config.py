"""The collector's configuration: a TOML file named by DDAS_COLLECTOR_CONFIG (ingest's
`collector_config` setting). Secrets are never in it: each endpoint names the file
(`client_secret_file`) or the environment variable (`client_secret_env`) its client secret is
in, and a literal `client_secret` is refused.

    [collector]
    interval_s = 300            # how often the schedule is looked at
    period = "halfjaar"         # the last completed halfjaar | kwartaal | maand
    page_size = 25000           # at most 25,000 (the API's limit)
    trust_store = "/etc/ddas/pkioverheid.pem"   # root certificates the signatures must lead to
    attempts = 5                # per request, for transient failures
    backoff_s = 1.0             # first wait between attempts; doubles, capped at max_backoff_s
    max_backoff_s = 60.0
    timeout_s = 120.0           # per HTTP request
    unhealthy_after = 3         # consecutive failed runs that mark an endpoint unhealthy
    retry_s = 300.0             # wait before a failed endpoint is tried again; doubles, capped
    retry_max_s = 21600.0

    [[endpoint]]
    name = "acme"               # how the endpoint is known in status and metrics
    supplier = "ACME"           # the supplier (ddas supplier add) the data is delivered as
    url = "https://api.acme.example/ddas/v1"    # POST {url}/gegevens
    token_url = "https://auth.acme.example/token"
    client_id = "cbs-ddas"
    client_secret_file = "/run/secrets/acme"    # or client_secret_env = "ACME_SECRET"
    # organisation, period, page_size, trust_store: optional, per endpoint
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ddas.supplier_api.pages import MAX_PAGE_SIZE

__all__ = [
    "CollectorConfig",
    "ConfigError",
    "Endpoint",
    "Periode",
    "load_config",
    "parse_periode",
]

PeriodKind = Literal["halfjaar", "kwartaal", "maand"]


class ConfigError(Exception):
    """The configuration cannot be used; `str(exc)` says why, in Dutch."""


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    supplier: str
    url: Annotated[str, Field(pattern=r"^https?://")]
    token_url: Annotated[str, Field(pattern=r"^https?://")]
    client_id: str
    client_secret_file: str | None = None
    client_secret_env: str | None = None
    organisation: str | None = None
    period: PeriodKind | None = None
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] | None = None
    trust_store: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_literal_secret(cls, data: object) -> object:
        if isinstance(data, dict) and "client_secret" in data:
            raise ValueError(
                "client_secret hoort niet in het bestand: gebruik client_secret_file of "
                "client_secret_env"
            )
        return data

    def client_secret(self) -> str:
        if self.client_secret_file:
            try:
                secret = Path(self.client_secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"endpoint {self.name}: {self.client_secret_file}: {exc.strerror}"
                ) from None
        elif self.client_secret_env:
            secret = os.environ.get(self.client_secret_env, "").strip()
        else:
            raise ConfigError(f"endpoint {self.name}: geen client_secret_file of client_secret_env")
        if not secret:
            raise ConfigError(f"endpoint {self.name}: het clientgeheim is leeg")
        return secret


class CollectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: Annotated[float, Field(gt=0)] = 300.0
    period: PeriodKind = "halfjaar"
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = MAX_PAGE_SIZE
    trust_store: str | None = None
    attempts: Annotated[int, Field(ge=1)] = 5
    backoff_s: Annotated[float, Field(ge=0)] = 1.0
    max_backoff_s: Annotated[float, Field(ge=0)] = 60.0
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    unhealthy_after: Annotated[int, Field(ge=1)] = 3
    retry_s: Annotated[float, Field(ge=0)] = 300.0
    retry_max_s: Annotated[float, Field(ge=0)] = 21600.0
    endpoints: list[Endpoint] = Field(default_factory=list)

    def trust_store_for(self, endpoint: Endpoint) -> str:
        path = endpoint.trust_store or self.trust_store
        if not path:
            raise ConfigError(f"endpoint {endpoint.name}: geen trust_store geconfigureerd")
        return path


def load_config(path: str | os.PathLike[str]) -> CollectorConfig:
    """Read and check the file. Raises ConfigError with a one-line Dutch reason."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: geen geldige TOML ({exc})") from None
    settings = dict(data.get("collector", {}))
    settings["endpoints"] = data.get("endpoint", [])
    extra = set(data) - {"collector", "endpoint"}
    if extra:
        raise ConfigError(f"{path}: onbekende sectie(s) {', '.join(sorted(extra))}")
    try:
        config = CollectorConfig.model_validate(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    names = [e.name for e in config.endpoints]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: twee endpoints met dezelfde naam")
    return config


# -- periods ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Periode:
    start: dt.date
    eind: dt.date

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.eind.isoformat()}"

    @staticmethod
    def last_completed(kind: PeriodKind, today: dt.date) -> Periode:
        """The last period of this kind that has ended before `today`."""
        if kind == "maand":
            eind = today.replace(day=1) - dt.timedelta(days=1)
            return Periode(eind.replace(day=1), eind)
        months = 6 if kind == "halfjaar" else 3
        first_month = (today.month - 1) // months * months + 1  # the current period's start
        current = dt.date(today.year, first_month, 1)
        eind = current - dt.timedelta(days=1)
        start_month = (eind.month - 1) // months * months + 1
        return Periode(dt.date(eind.year, start_month, 1), eind)


_PERIOD = re.compile(
    r"^(?P<year>\d{4})(?:-?(?:(?P<h>[Hh])(?P<hn>[12])|(?P<q>[Qq])(?P<qn>[1-4])|[Mm]?(?P<m>\d{2})))?$"
)


def parse_periode(text: str) -> Periode:
    """`2025`, `2025H1`, `2025-Q3`, `2025M09` / `2025-09`, or `2025-01-01..2025-06-30`.
    Raises ValueError with a Dutch reason."""
    text = text.strip()
    if ".." in text:
        a, _, b = text.partition("..")
        try:
            periode = Periode(dt.date.fromisoformat(a), dt.date.fromisoformat(b))
        except ValueError:
            raise ValueError(f"periode {text!r}: twee datums JJJJ-MM-DD..JJJJ-MM-DD") from None
        if periode.eind < periode.start:
            raise ValueError(f"periode {text!r}: de einddatum ligt voor de startdatum")
        return periode
    match = _PERIOD.match(text)
    if not match:
        raise ValueError(
            f"periode {text!r}: gebruik 2025, 2025H1, 2025Q3, 2025M09 of 2025-01-01..2025-06-30"
        )
    year = int(match["year"])
    if match["hn"]:
        first, months = (int(match["hn"]) - 1) * 6 + 1, 6
    elif match["qn"]:
        first, months = (int(match["qn"]) - 1) * 3 + 1, 3
    elif match["m"]:
        first, months = int(match["m"]), 1
        if not 1 <= first <= 12:
            raise ValueError(f"periode {text!r}: maand {first} bestaat niet")
    else:
        first, months = 1, 12
    start = dt.date(year, first, 1)
    last = first + months  # the month after
    after = dt.date(year + (last - 1) // 12, (last - 1) % 12 + 1, 1)
    return Periode(start, after - dt.timedelta(days=1))
