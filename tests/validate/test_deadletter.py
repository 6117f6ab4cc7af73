"""The retry and dead-letter policy (ddas.deadletter) without a broker: bounded attempts with
backoff, the dead-letter headers, and dependencies that are away (never dead-lettered)."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
import msgspec
import pytest

from ddas.deadletter import (
    DependencyLost,
    Retrier,
    RetryPolicy,
    dead_letter_headers,
    error_class,
    is_transient,
)


@dataclass
class Record:
    topic: str = "ddas.trajecten.v1"
    partition: int = 3
    offset: int = 42
    key: bytes | None = b"k"
    value: bytes | None = b"v"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Harness:
    def __init__(self, policy: RetryPolicy) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        self.slept: list[float] = []
        self.outages: list[BaseException] = []
        self.retrier = Retrier(self.send, policy, on_outage=self.outages.append, sleep=self.sleep)

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        self.sent.append((topic, key, value, headers))

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def failing(*errors: BaseException):  # type: ignore[no-untyped-def]
    """Work that raises the given errors in turn, then succeeds."""
    calls: list[int] = []

    async def work() -> None:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]

    work.calls = calls  # type: ignore[attr-defined]
    return work


async def test_a_message_that_keeps_failing_is_dead_lettered_after_the_attempts() -> None:
    h = Harness(RetryPolicy(attempts=4, backoff=0.1, max_backoff=0.3))
    work = failing(*[ValueError("BSN 123456782 in de fout")] * 10)
    record = Record(headers=[("content-type", b"application/json"), ("ddas-attempts", b"9")])
    outcome = await h.retrier.run(record, work)
    assert (outcome.dead_lettered, outcome.attempts, outcome.error_class) == (True, 4, "ValueError")
    assert len(work.calls) == 4
    assert h.slept == [0.1, 0.2, 0.3]  # doubling, capped; none after the last try
    ((topic, key, value, headers),) = h.sent
    assert (topic, key, value) == ("ddas.trajecten.v1.dlq", b"k", b"v")
    assert headers == [
        ("content-type", b"application/json"),
        ("ddas-origin-topic", b"ddas.trajecten.v1"),
        ("ddas-origin-partition", b"3"),
        ("ddas-origin-offset", b"42"),
        ("ddas-error-class", b"ValueError"),
        ("ddas-attempts", b"4"),
    ]
    assert b"123456782" not in b"".join(v for _, v in headers)  # the class, not the message


async def test_a_message_that_succeeds_on_a_retry_is_not_dead_lettered() -> None:
    h = Harness(RetryPolicy(attempts=3, backoff=0.5))
    work = failing(KeyError("x"), KeyError("x"))
    outcome = await h.retrier.run(Record(), work)
    assert (outcome.dead_lettered, outcome.attempts) == (False, 3)
    assert h.sent == [] and h.slept == [0.5, 1.0]


async def test_a_dependency_that_is_away_is_waited_for_and_never_dead_lettered() -> None:
    h = Harness(RetryPolicy(attempts=2, backoff=0.01, outage=60))
    work = failing(*[ConnectionRefusedError(111, "refused")] * 5)  # more than `attempts`
    outcome = await h.retrier.run(Record(), work)
    assert (outcome.dead_lettered, h.sent) == (False, [])
    assert len(work.calls) == 6


async def test_a_dependency_away_longer_than_the_outage_stops_the_service() -> None:
    h = Harness(RetryPolicy(attempts=2, outage=0))
    error = asyncpg.exceptions.CannotConnectNowError("starting up")
    with pytest.raises(DependencyLost):
        await h.retrier.run(Record(), failing(*[error] * 5))
    assert h.outages == [error] and h.sent == []


def test_what_counts_as_a_dependency_being_away() -> None:
    assert is_transient(ConnectionResetError(104, "reset"))
    assert is_transient(TimeoutError())
    assert is_transient(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert is_transient(asyncpg.exceptions.SerializationError("retry"))
    assert not is_transient(asyncpg.exceptions.ForeignKeyViolationError("no delivery"))
    assert not is_transient(msgspec.DecodeError("not json"))
    assert not is_transient(FileNotFoundError(2, "missing"))
    assert not is_transient(ValueError())


def test_error_classes_are_named_with_their_module() -> None:
    assert error_class(ValueError()) == "ValueError"
    assert error_class(msgspec.ValidationError()) == "msgspec.ValidationError"
    assert (
        error_class(asyncpg.exceptions.UniqueViolationError())
        == "asyncpg.exceptions.UniqueViolationError"
    )
    headers = dict(dead_letter_headers(Record(), RuntimeError(), 1))
    assert headers["ddas-error-class"] == b"RuntimeError"


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    assert RetryPolicy(backoff=1, max_backoff=5).delay(10) == 5
