"""The dispatcher on SQLite and PostgreSQL: retry with backoff, no alert lost, none delivered twice."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select
from test_alerts_channels import (
    SmtpServer,
    WebhookServer,
    serve_smtp,
    serve_webhook,
    smtp_config,
    webhook_config,
)

from engine.alerts.channels import ChannelError, SmtpChannel, WebhookChannel
from engine.alerts.config import AlertsConfig, parse_alerts_config
from engine.alerts.dispatcher import Dispatcher, delivery_counts
from engine.alerts.outbox import Alert, AlertDelivery, Delivery, enqueue

T0 = dt.datetime(2017, 7, 5, 2, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class Recorder:
    """A channel that records what it got and fails while ``down`` is set."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[int] = []
        self.down = False
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> None:
        if self.down:
            raise ChannelError(self.name, "服务不可用", delivery.outbox_id)
        with self._lock:
            self.got.append(delivery.outbox_id)


def make_config(*names: str, **dispatcher: Any) -> AlertsConfig:
    return parse_alerts_config(
        {
            "channels": {n: {"type": "console"} for n in names},
            "routes": [{"channel": n} for n in names],
            "dispatcher": {
                "retry_base_seconds": 10,
                "retry_max_seconds": 100,
                "lease_seconds": 60,
                **dispatcher,
            },
        }
    )


def alert(n: int) -> Alert:
    return Alert(
        kind="new",
        key=f"rule|org:b{n}|2017-06",
        severity="serious",
        rule="rule",
        org=f"b{n}",
        title=f"第{n}党支部 2017-06 未召开支部委员会会议",
        message="应召开 1 次，实际 0 次。",
        created_at=T0,
    )


@pytest.fixture
def engine(db_engine: sa.Engine) -> sa.Engine:
    SQLModel.metadata.create_all(db_engine)
    return db_engine


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with serve_smtp() as server:
        yield server


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    with serve_webhook() as server:
        yield server


def fill(engine: sa.Engine, config: AlertsConfig, count: int) -> list[int]:
    with Session(engine) as s:
        ids = [enqueue(s, alert(n), config) for n in range(count)]
        s.commit()
    return [i for i in ids if i is not None]


def delivery_rows(engine: sa.Engine, channel: str) -> list[AlertDelivery]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(AlertDelivery).where(AlertDelivery.channel == channel).order_by(col(AlertDelivery.id))
            )
        )


def test_delivers_each_alert_to_each_routed_channel_once(engine: sa.Engine) -> None:
    config = make_config("a", "b")
    ids = fill(engine, config, 3)
    a, b = Recorder("a"), Recorder("b")
    dispatcher = Dispatcher(engine, config, {"a": a, "b": b}, clock=Clock())
    report = dispatcher.run_once()
    assert (report.claimed, report.delivered, report.failed) == (6, 6, 0)
    assert a.got == ids and b.got == ids
    assert dispatcher.run_once().claimed == 0
    assert delivery_counts(engine) == {("a", "delivered"): 3, ("b", "delivered"): 3}
    row = delivery_rows(engine, "a")[0]
    assert row.attempts == 1 and row.delivered_at == T0 and row.claimed_by is None


def test_a_channel_that_is_down_delays_its_alerts_with_backoff_and_loses_none(engine: sa.Engine) -> None:
    config = make_config("up", "down")
    ids = fill(engine, config, 3)
    up, down = Recorder("up"), Recorder("down")
    down.down = True
    clock = Clock()
    dispatcher = Dispatcher(engine, config, {"up": up, "down": down}, clock=clock)

    report = dispatcher.run_once()
    assert up.got == ids and report.by_channel["up"].delivered == 3
    assert report.by_channel["down"].failed == 1 and report.by_channel["down"].deferred == 2
    rows = delivery_rows(engine, "down")
    assert [r.attempts for r in rows] == [1, 0, 0]
    assert {r.next_attempt_at for r in rows} == {T0 + dt.timedelta(seconds=10)}
    assert rows[0].last_error is not None and "服务不可用" in rows[0].last_error

    clock.advance(5)
    assert dispatcher.run_once().claimed == 0  # not due yet
    clock.advance(5)
    dispatcher.run_once()  # second failure: the wait doubles
    assert delivery_rows(engine, "down")[0].next_attempt_at == clock.now + dt.timedelta(seconds=20)
    for _ in range(6):  # the wait is capped at retry_max_seconds
        clock.advance(1000)
        dispatcher.run_once()
    first = delivery_rows(engine, "down")[0]
    assert first.attempts == 8 and first.next_attempt_at == clock.now + dt.timedelta(seconds=100)

    down.down = False
    clock.advance(100)
    report = dispatcher.run_once()
    assert report.delivered == 3 and down.got == ids
    assert all(r.status == "delivered" and r.last_error is None for r in delivery_rows(engine, "down"))
    assert up.got == ids  # nothing sent twice to the channel that was up


def test_a_killed_dispatcher_leaves_claims_that_are_taken_over_after_the_lease(engine: sa.Engine) -> None:
    config = make_config("a")
    ids = fill(engine, config, 4)
    clock = Clock()
    killed = Dispatcher(engine, config, {"a": Recorder("a")}, clock=clock, worker_id="killed")
    assert len(killed.claim(limit=3, token="killed:batch")) == 3  # claimed, then the process dies

    survivor_channel = Recorder("a")
    survivor = Dispatcher(engine, config, {"a": survivor_channel}, clock=clock, worker_id="survivor")
    assert survivor.run_once().delivered == 1  # the three claimed ones are still leased
    clock.advance(61)
    assert survivor.run_once().delivered == 3
    assert sorted(survivor_channel.got) == ids
    assert Counter(survivor_channel.got).most_common(1)[0][1] == 1


class SlowChannel(Recorder):
    """Each send takes ``seconds`` of the fake clock and lets ``other`` run meanwhile."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__("a")
        self.clock, self.seconds = clock, seconds
        self.other: Dispatcher | None = None
        self.other_claimed: list[int] = []

    def send(self, delivery: Delivery) -> None:
        super().send(delivery)
        self.clock.advance(self.seconds)
        assert self.other is not None
        self.other_claimed.append(self.other.run_once().claimed)


def test_a_long_batch_renews_its_lease(engine: sa.Engine) -> None:
    config = make_config("a")  # lease 60 s; each send takes 40 s
    fill(engine, config, 3)
    clock = Clock()
    slow = SlowChannel(clock, 40)
    slow.other = Dispatcher(engine, config, {"a": Recorder("a")}, clock=clock)
    report = Dispatcher(engine, config, {"a": slow}, clock=clock).run_once()
    assert report.delivered == 3 and report.lease_lost == 0
    assert slow.other_claimed == [0, 0, 0]


def test_a_send_longer_than_the_lease_is_reported_and_not_marked_over_the_new_owner(
    engine: sa.Engine,
) -> None:
    config = make_config("a")
    fill(engine, config, 1)
    clock = Clock()
    slow = SlowChannel(clock, 61)
    other_channel = Recorder("a")
    slow.other = Dispatcher(engine, config, {"a": other_channel}, clock=clock)
    report = Dispatcher(engine, config, {"a": slow}, clock=clock).run_once()
    assert report.delivered == 0 and report.lease_lost == 1
    assert slow.other_claimed == [1] and other_channel.got == slow.got  # the repeat a too-short lease causes
    (row,) = delivery_rows(engine, "a")
    assert row.status == "delivered" and row.attempts == 1 and row.claimed_by is None


def test_two_dispatchers_at_once_deliver_everything_exactly_once(engine: sa.Engine) -> None:
    config = make_config("a", batch_size=7)
    ids = fill(engine, config, 120)
    channel = Recorder("a")
    dispatchers = [Dispatcher(engine, config, {"a": channel}, worker_id=f"w{i}") for i in range(2)]
    errors: list[BaseException] = []

    def work(d: Dispatcher) -> None:
        try:
            while d.run_once().claimed:
                pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(d,)) for d in dispatchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(channel.got) == ids  # every alert, each once
    assert delivery_counts(engine) == {("a", "delivered"): 120}


def test_a_channel_bug_is_retried_like_an_outage(engine: sa.Engine) -> None:
    config = make_config("a")
    fill(engine, config, 1)

    class Broken:
        name = "a"

        def send(self, delivery: Delivery) -> None:
            raise KeyError("oops")

    report = Dispatcher(engine, config, {"a": Broken()}, clock=Clock()).run_once()
    assert report.failed == 1 and "KeyError" in report.errors[0]
    assert delivery_rows(engine, "a")[0].status == "pending"


def test_unconfigured_channels_are_left_for_another_dispatcher(engine: sa.Engine) -> None:
    config = make_config("a", "b")
    fill(engine, config, 2)
    report = Dispatcher(engine, config, {"a": Recorder("a")}, clock=Clock()).run_once()
    assert report.claimed == 2
    assert delivery_counts(engine) == {("a", "delivered"): 2, ("b", "pending"): 2}


def test_smtp_that_refuses_then_accepts(engine: sa.Engine, smtp_server: SmtpServer) -> None:
    config = make_config("mail")
    ids = fill(engine, config, 2)
    clock = Clock()
    dispatcher = Dispatcher(
        engine, config, {"mail": SmtpChannel("mail", smtp_config(smtp_server))}, clock=clock
    )
    smtp_server.handler.refuse = True
    report = dispatcher.run_once()
    assert (report.failed, report.deferred) == (1, 1) and "拒绝" in report.errors[0]
    smtp_server.handler.refuse = False
    clock.advance(10)
    assert dispatcher.run_once().delivered == 2
    assert sorted(int(m["X-Partyrules-Alert-Id"]) for m in smtp_server.handler.messages) == ids


def test_webhook_500_and_timeout_then_recovery(engine: sa.Engine, webhook_server: WebhookServer) -> None:
    config = make_config("hook")
    ids = fill(engine, config, 3)
    clock = Clock()
    channel = WebhookChannel("hook", webhook_config(webhook_server.url, timeout_seconds=0.3))
    dispatcher = Dispatcher(engine, config, {"hook": channel}, clock=clock)
    webhook_server.plan = [500]
    assert dispatcher.run_once().failed == 1
    clock.advance(10)
    webhook_server.plan = ["hang"]
    assert dispatcher.run_once().failed == 1
    clock.advance(20)
    assert dispatcher.run_once().delivered == 3
    assert sorted(webhook_server.idempotency_keys()) == sorted(f"partyrules-alert-{i}" for i in ids)
    # The request that timed out reached the receiver: the retry carries the same key, so it can drop it.
    assert webhook_server.idempotency_keys("hung") == [f"partyrules-alert-{ids[0]}"]


def test_run_forever_stops_when_asked(engine: sa.Engine) -> None:
    config = make_config("a", poll_seconds=0.05)
    ids = fill(engine, config, 5)
    channel = Recorder("a")
    stop = threading.Event()
    thread = threading.Thread(target=Dispatcher(engine, config, {"a": channel}).run_forever, args=(stop,))
    thread.start()
    for _ in range(100):
        if len(channel.got) == 5:
            break
        stop.wait(0.05)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and channel.got == ids
