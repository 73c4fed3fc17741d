"""The outbox: enqueue in the caller's transaction, idempotency, routing, the daily digest."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from engine.alerts.config import AlertsConfig, parse_alerts_config
from engine.alerts.digest import NOTHING_NEW, enqueue_digests
from engine.alerts.outbox import Alert, AlertDelivery, AlertOutbox, enqueue, run_failed_alert
from engine.alerts.routing import route_alert

T0 = dt.datetime(2017, 7, 5, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing


def make_alert(**over: Any) -> Alert:
    fields: dict[str, Any] = {
        "kind": "new",
        "key": "branch.committee_meeting.monthly|org:b1|2017-06",
        "severity": "serious",
        "rule": "branch.committee_meeting.monthly",
        "org": "b1",
        "org_path": ["root", "c1", "b1"],
        "title": "机关第一党支部 2017-06 未召开支部委员会会议",
        "message": "应召开 1 次，实际 0 次。",
        "payload": {"observed": 0},
        "created_at": T0,
    }
    fields.update(over)
    return Alert.model_validate(fields)


def config() -> AlertsConfig:
    return parse_alerts_config(
        {
            "channels": {
                "all": {"type": "console"},
                "c1_staff": {"type": "console", "digest": True},
                "c2_staff": {"type": "console", "digest": True},
                "ops": {"type": "console"},
            },
            "routes": [
                {"channel": "all"},
                {
                    "channel": "c1_staff",
                    "orgs": ["c1"],
                    "min_severity": "warning",
                    "kinds": ["new", "escalation"],
                },
                {"channel": "c2_staff", "orgs": ["c2"]},
                {"channel": "ops", "kinds": ["run_failed"]},
            ],
        }
    )


@pytest.fixture
def engine(db_engine: sa.Engine) -> sa.Engine:
    SQLModel.metadata.create_all(db_engine)
    return db_engine


def deliveries(engine: sa.Engine) -> list[tuple[int, str]]:
    with Session(engine) as s:
        return [
            (d.outbox_id, d.channel) for d in s.exec(select(AlertDelivery).order_by(col(AlertDelivery.id)))
        ]


def test_routing_by_severity_kind_and_org_subtree() -> None:
    cfg = config()
    assert route_alert(make_alert(), cfg) == ["all", "c1_staff"]
    assert route_alert(make_alert(severity="info"), cfg) == ["all"]
    assert route_alert(make_alert(kind="resolved"), cfg) == ["all"]
    other = make_alert(org="b7", org_path=["root", "c2", "b7"])
    assert route_alert(other, cfg) == ["all", "c2_staff"]
    assert route_alert(make_alert(org="c1", org_path=["root", "c1"]), cfg) == ["all", "c1_staff"]


def test_an_alert_about_no_org_goes_only_to_routes_without_orgs() -> None:
    failure = run_failed_alert("check|2017-06", RuntimeError("数据库不可用"), at=T0)
    assert failure.severity == "critical" and failure.org is None
    assert "RuntimeError: 数据库不可用" in failure.message
    assert route_alert(failure, config()) == ["all", "ops"]


def test_org_path_must_end_at_the_org() -> None:
    with pytest.raises(ValueError, match="org_path must end with org"):
        make_alert(org_path=["root", "c1"])
    with pytest.raises(ValueError, match="JSON-serialisable"):
        make_alert(payload={"when": dt.date(2017, 6, 1)})


def test_enqueue_writes_outbox_and_routed_deliveries_with_the_callers_commit(engine: sa.Engine) -> None:
    with Session(engine) as s:
        outbox_id = enqueue(s, make_alert(), config())
        assert outbox_id is not None
        s.commit()
    assert deliveries(engine) == [(outbox_id, "all"), (outbox_id, "c1_staff")]
    with Session(engine) as s:
        row = s.get(AlertOutbox, outbox_id)
        assert row is not None
        assert row.to_alert() == make_alert()


def test_enqueue_does_not_commit_a_rolled_back_transaction(engine: sa.Engine) -> None:
    with Session(engine) as s:
        assert enqueue(s, make_alert(), config()) is not None
        s.rollback()
    assert deliveries(engine) == []
    with Session(engine) as s:
        assert s.exec(select(AlertOutbox)).all() == []


def test_the_same_kind_key_and_occurrence_is_enqueued_once(engine: sa.Engine) -> None:
    with Session(engine) as s:
        first = enqueue(s, make_alert(), config())
        assert enqueue(s, make_alert(), config()) is None  # same transaction
        s.commit()
    with Session(engine) as s:
        assert enqueue(s, make_alert(message="重新检查"), config()) is None  # a later run
        escalated = enqueue(s, make_alert(kind="escalation", occurrence="level-1"), config())
        again = enqueue(s, make_alert(kind="escalation", occurrence="level-2"), config())
        s.commit()
    assert len({first, escalated, again}) == 3
    assert len(deliveries(engine)) == 6


def test_a_duplicate_does_not_break_the_callers_transaction(engine: sa.Engine) -> None:
    with Session(engine) as s:
        enqueue(s, make_alert(), config())
        s.commit()
    with Session(engine) as s:
        assert enqueue(s, make_alert(), config()) is None
        other = enqueue(s, make_alert(key="other|org:b1|2017-06"), config())
        s.commit()
    with Session(engine) as s:
        assert s.get(AlertOutbox, other) is not None


def digests_by_channel(engine: sa.Engine) -> dict[str, AlertOutbox]:
    with Session(engine) as s:
        rows = s.exec(
            select(AlertOutbox, AlertDelivery)
            .join(AlertDelivery, col(AlertDelivery.outbox_id) == col(AlertOutbox.id))
            .where(AlertOutbox.kind == "digest")
        ).all()
        return {d.channel: o for o, d in rows}


def test_digest_summarises_what_was_routed_to_each_channel_that_day(engine: sa.Engine) -> None:
    cfg = config()
    with Session(engine) as s:
        enqueue(s, make_alert(), cfg)  # 2017-07-05 10:00 Beijing, to c1_staff
        enqueue(
            s,
            make_alert(
                key="k2", kind="escalation", severity="critical", created_at=T0 + dt.timedelta(hours=3)
            ),
            cfg,
        )
        enqueue(
            s, make_alert(key="k3", created_at=T0 - dt.timedelta(hours=12)), cfg
        )  # 07-04 22:00: the day before
        enqueue(s, make_alert(key="k4", kind="resolved"), cfg)  # not a new violation
        s.commit()
    with Session(engine) as s:
        ids = enqueue_digests(s, cfg, dt.date(2017, 7, 6), now=T0 + dt.timedelta(days=1))
        s.commit()
    assert set(ids) == {"c1_staff", "c2_staff"} and all(ids.values())
    found = digests_by_channel(engine)
    c1, c2 = found["c1_staff"], found["c2_staff"]
    assert c1.payload["new"] == 1 and c1.payload["escalation"] == 1
    assert [i["severity"] for i in c1.payload["items"]] == ["critical", "serious"]
    assert c1.severity == "critical"
    assert "2017-07-05" in c1.title and "新增违规 1 条，升级 1 条" in c1.title
    assert "机关第一党支部 2017-06 未召开支部委员会会议" in c1.message
    assert NOTHING_NEW in c2.title and c2.payload["items"] == [] and c2.severity == "info"


def test_digest_is_sent_when_nothing_happened_and_only_once_per_day(engine: sa.Engine) -> None:
    cfg = config()
    with Session(engine) as s:
        first = enqueue_digests(s, cfg, dt.date(2017, 7, 6), now=T0)
        s.commit()
    with Session(engine) as s:
        again = enqueue_digests(s, cfg, dt.date(2017, 7, 6), now=T0)
        next_day = enqueue_digests(s, cfg, dt.date(2017, 7, 7), now=T0)
        s.commit()
    assert all(first.values()) and set(again.values()) == {None} and all(next_day.values())
    assert sorted(c for _, c in deliveries(engine)) == ["c1_staff", "c1_staff", "c2_staff", "c2_staff"]
    assert all(NOTHING_NEW in o.message for o in digests_by_channel(engine).values())


def test_enqueue_many_equals_enqueuing_one_by_one(db_engine: sa.Engine) -> None:
    from engine.alerts.outbox import enqueue_many

    SQLModel.metadata.create_all(db_engine)
    first = make_alert(key="k1")
    with Session(db_engine) as session:
        enqueue(session, first, config())
        session.commit()
    batch = [
        first,  # enqueued before: nothing added
        make_alert(key="k2"),
        make_alert(key="k2"),  # repeated within the batch: added once
        make_alert(key="k3", org="c2", org_path=["root", "c2"], severity="info"),
    ]
    with Session(db_engine) as session:
        ids = enqueue_many(session, batch, config())
        session.commit()
    assert ids[0] is None and ids[2] is None and ids[1] is not None and ids[3] is not None
    with Session(db_engine) as session:
        keys = sorted(session.exec(select(AlertOutbox.key)).all())
        assert keys == ["k1", "k2", "k3"]
        routed = sorted(
            (o.key, d.channel)
            for o, d in session.exec(select(AlertOutbox, AlertDelivery).where(AlertOutbox.id == AlertDelivery.outbox_id))
        )
    expected = sorted((a.key, ch) for a in (first, batch[1], batch[3]) for ch in route_alert(a, config()))
    assert routed == expected
