"""Bounded retries with backoff, then the dead-letter topic: the poison-message policy of every
consumer (architecture.md, "Reliability rules").

`Retrier.run(record, work)` runs a handler's work for one Kafka record:

- it succeeds: done, the caller's subscriber commits the offset;
- it fails with an error of the message (it does not decode, it does not hold together, a
  constraint refuses it, a bug): tried again after a backoff (`RetryPolicy`), up to
  `attempts` times in all; then the record goes to `dead_letter(topic)` with its key, value and
  headers, plus `ddas-origin-topic`, `ddas-origin-partition`, `ddas-origin-offset`,
  `ddas-error-class` and `ddas-attempts`, and `run` returns normally so that the offset is
  committed and the partition keeps flowing. The headers name the error's class only: an
  exception's message may quote the data it choked on;
- it fails because a dependency is away (`is_transient`: the database or the broker cannot be
  reached): that is not the message's fault, so it is never dead-lettered. The work is tried
  again with backoff for up to `outage` seconds, then `DependencyLost` is raised: the offset
  stays uncommitted and the service, told through `on_outage`, stops rather than spin.

Attempts are counted in memory, per record, inside one `run`: a process that dies while
retrying starts over after the restart (a bounded number of times per process run).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError

from ddas.pipeline.topics import dead_letter

__all__ = [
    "HEADERS",
    "DependencyLost",
    "Outcome",
    "RetryPolicy",
    "Retrier",
    "dead_letter_headers",
    "error_class",
    "is_transient",
]

log = logging.getLogger(__name__)

ORIGIN_TOPIC: Final = "ddas-origin-topic"
ORIGIN_PARTITION: Final = "ddas-origin-partition"
ORIGIN_OFFSET: Final = "ddas-origin-offset"
ERROR_CLASS: Final = "ddas-error-class"
ATTEMPTS: Final = "ddas-attempts"
HEADERS: Final = (ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET, ERROR_CLASS, ATTEMPTS)

# Errors that say a dependency is away, not that the message is bad.
_TRANSIENT: Final = (
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,  # 08xxx, incl. connection failures
    asyncpg.InterfaceError,  # the connection was closed under us
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether the error says a dependency is away (retry, never dead-letter)."""
    if isinstance(exc, _TRANSIENT):
        return True
    # OSError from a socket (refused, reset, unreachable), not e.g. a file that is missing.
    return (
        isinstance(exc, OSError)
        and exc.errno is not None
        and not isinstance(exc, FileNotFoundError | PermissionError)
    )


def error_class(exc: BaseException) -> str:
    """The error's class as `module.QualName`: what the dead-letter header names."""
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    """How many times a failing message is tried before it is dead-lettered (at least 1)."""
    backoff: float = 0.5
    """Seconds before the second try; doubled before each further try."""
    max_backoff: float = 30.0
    outage: float = 120.0
    """How long (seconds) a dependency may stay away before DependencyLost."""

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff < 0 or self.max_backoff < 0 or self.outage < 0:
            raise ValueError("attempts >= 1, and no negative times")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1, 2, ...)."""
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


class Record(Protocol):
    """What is needed of a consumed record (aiokafka's ConsumerRecord has it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[Any]]
"""send(topic, key, value, headers): publish and wait for the broker's acknowledgement."""


class DependencyLost(Exception):
    """A dependency stayed away longer than the policy's `outage`."""


@dataclass(frozen=True, slots=True)
class Outcome:
    dead_lettered: bool
    attempts: int
    error_class: str | None = None


def dead_letter_headers(
    record: Record, exc: BaseException, attempts: int
) -> list[tuple[str, bytes]]:
    """The record's headers (without earlier ddas-origin-* ones) plus the dead-letter headers."""
    kept = [(k, v) for k, v in record.headers if k not in HEADERS]
    return [
        *kept,
        (ORIGIN_TOPIC, record.topic.encode()),
        (ORIGIN_PARTITION, str(record.partition).encode()),
        (ORIGIN_OFFSET, str(record.offset).encode()),
        (ERROR_CLASS, error_class(exc).encode()),
        (ATTEMPTS, str(attempts).encode()),
    ]


class Retrier:
    def __init__(
        self,
        send: Send,
        policy: RetryPolicy | None = None,
        *,
        on_outage: Callable[[BaseException], None] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.send = send
        self.policy = policy or RetryPolicy()
        self.on_outage = on_outage
        self._sleep = sleep

    async def run(self, record: Record, work: Callable[[], Awaitable[Any]]) -> Outcome:
        """Run `work` for `record` under the policy (see the module docstring)."""
        policy = self.policy
        where = f"{record.topic}/{record.partition}@{record.offset}"
        failures = 0
        away_since: float | None = None
        transient_tries = 0
        while True:
            try:
                await work()
            except Exception as exc:
                if is_transient(exc):
                    now = time.monotonic()
                    away_since = away_since or now
                    transient_tries += 1
                    if now - away_since >= policy.outage:
                        log.error(
                            "%s: dependency away for %.0f s (%s)",
                            where,
                            now - away_since,
                            error_class(exc),
                        )
                        if self.on_outage is not None:
                            self.on_outage(exc)
                        raise DependencyLost(error_class(exc)) from exc
                    log.warning("%s: dependency away (%s), retrying", where, error_class(exc))
                    await self._sleep(policy.delay(min(transient_tries, 16)))
                    continue
                failures += 1
                if failures >= policy.attempts:
                    await self.send(
                        dead_letter(record.topic),
                        record.key,
                        record.value,
                        dead_letter_headers(record, exc, failures),
                    )
                    log.error(
                        "%s: dead-lettered after %d attempts (%s)",
                        where,
                        failures,
                        error_class(exc),
                    )
                    return Outcome(True, failures, error_class(exc))
                log.warning(
                    "%s: attempt %d failed (%s), retrying", where, failures, error_class(exc)
                )
                await self._sleep(policy.delay(failures))
            else:
                return Outcome(False, failures + 1)
