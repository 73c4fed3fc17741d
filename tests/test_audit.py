"""The audit log: every write chained; ``audit verify`` finds rows edited directly in SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.audit.verify import verify
from engine.auth import accounts
from engine.auth.principal import Principal
from engine.config import Config
from engine.service.facts_ops import retract_fact, submit_facts
from engine.service.violations_ops import act
from engine.violations.store import ViolationStore
from facts.errors import Location
from facts.store import FactStore

ROOT = Principal.local("root")
ORGS = [
    {"type": "org", "id": "o1", "name": "机关党委", "kind": "organ_committee"},
    {"type": "org", "id": "b1", "name": "第一支部", "kind": "branch", "parent": "o1"},
    {"type": "member", "id": "m1", "name": "张一", "org": "b1", "status": "full", "category": "in_service"},
]


def meeting(i: int, content: str = "学习党章") -> dict:
    return {
        "type": "meeting",
        "id": f"b1-{i}",
        "org": "b1",
        "kind": "committee_meeting",
        "date": f"2017-0{1 + i % 9}-10",
        "attendees": ["m1"],
        "minutes": {
            "time": "15:00",
            "place": "会议室",
            "recorder": "m1",
            "agenda": "学习",
            "content": content,
            "outcome": "通过",
        },
    }


def make_app(engine: sa.Engine) -> App:
    cfg = Config()
    app = App(cfg, engine, FactStore(engine), ViolationStore(engine, cfg.alerts))
    app.init()
    return app


def items(objs: list[dict]) -> list:
    return [(Location("api", i + 1), o) for i, o in enumerate(objs)]


@pytest.fixture
def app(db_engine) -> App:
    app = make_app(db_engine)
    got = submit_facts(app, ROOT, items(ORGS + [meeting(i) for i in range(3)]), judge=False)
    assert got.report.added == 6 and got.audit_seq == 1
    return app


def test_an_untouched_store_verifies(app):
    accounts.add_user(app.db, ROOT, "Alice", ["inspector"], "correct horse")
    retract_fact(app, ROOT, "meeting", "b1-2", "重复录入")
    report = verify(app.db)
    assert report.ok, report.problems
    assert report.entries == 3 and report.facts == 7


def test_content_edited_with_its_hash_is_found_through_the_log(app):
    with app.db.begin() as conn:  # a careful forger recomputes the stored hash too
        text = conn.execute(sa.text("SELECT content FROM fact_version WHERE key = 'b1-1'")).scalar()
        forged = text.replace("学习党章", "未开会")
        from facts.store import content_hash

        conn.execute(
            sa.text("UPDATE fact_version SET content = :c, hash = :h WHERE key = 'b1-1'"),
            {"c": forged, "h": content_hash(forged)},
        )
    report = verify(app.db)
    assert not report.ok
    assert "fact meeting b1-1 v1 altered since import" in report.problems[0]


def test_content_edited_alone_is_named_and_reimport_is_not_unchanged(app):
    with app.db.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE fact_version SET content = replace(content, '学习党章', '未开会') WHERE key = 'b1-0'"
            )
        )
    report = verify(app.db)
    assert report.problems[0].startswith("fact_version seq ") and "(meeting b1-0 v1)" in report.problems[0]
    again = submit_facts(app, ROOT, items([meeting(0)]), judge=False)
    assert again.report.unchanged == 0 and again.report.corrected == 1
    assert again.report.altered == ["meeting b1-0 v1"]


def test_an_edited_entry_breaks_the_chain_at_that_row(app):
    accounts.add_user(app.db, ROOT, "Bob", ["inspector"], None)
    accounts.add_user(app.db, ROOT, "Carol", ["inspector"], None)
    with app.db.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'someone' WHERE seq = 2"))
    assert verify(app.db).problems[0] == "audit_log seq 2: content altered (recomputed hash differs)"


def test_a_deleted_entry_is_found(app):
    accounts.add_user(app.db, ROOT, "Bob", ["inspector"], None)
    accounts.add_user(app.db, ROOT, "Carol", ["inspector"], None)
    with app.db.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 3"))
    assert "head says 3 entries but the log ends at 2" in verify(app.db).problems[0]


def test_a_fact_inserted_behind_the_log_is_found(app):
    with app.db.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO fact_version (type, key, version, hash, content, current, recorded_at, import_id) "
                "SELECT type, 'b1-x', 1, hash, content, current, recorded_at, 999 FROM fact_version WHERE key = 'b1-0'"
            )
        )
    assert any("b1-x v1): written without an audit entry" in p for p in verify(app.db).problems)


def test_an_edited_workflow_event_is_found(app):
    from engine.violations.tables import Violation

    now = dt.datetime.now(dt.UTC)
    with app.db.begin() as conn:
        conn.execute(
            sa.insert(Violation.__table__).values(  # type: ignore[attr-defined]
                key="r|org:b1|2017-01",
                rule="r",
                rule_version="1",
                pack_hash="p",
                severity="serious",
                title="t",
                basis="b",
                subject_type="org",
                subject_id="b1",
                org="b1",
                period="2017-01",
                message="m",
                evidence={},
                org_path=["o1", "b1"],
                status="open",
                first_seen=now,
                last_seen=now,
            )
        )
    requester = accounts.add_user(app.db, ROOT, "Alice", ["inspector"], None)
    accounts.add_user(app.db, ROOT, "Bob", ["inspector@o1"], None)
    alice = accounts.principal_for(app.db, requester.name)
    act(app, alice, "r|org:b1|2017-01", "waive", reason="病假", approver="bob")
    assert verify(app.db).ok
    with app.db.begin() as conn:
        conn.execute(sa.text("UPDATE violation_event SET actor = 'bob' WHERE action = 'waive'"))
    problems = verify(app.db).problems
    assert len(problems) == 1 and problems[0].startswith("violation_event id ") and "altered" in problems[0]
