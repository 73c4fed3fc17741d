"""Judging one submitted fact costs the same in a small and in a big province.

A secretary's submission is judged at once (the API and `import` of a few facts); its cost must follow the
fact's own org, not the province.  Counted as SQLite virtual-machine steps (not seconds, which are noisy):
two provinces of the bench generator, one 8 times the other, and the same kind of meeting submitted to
a Party group in each.  Two planning faults made it grow with the province: the meeting's attendance was
read by scanning every attendance row (a join to a temporary table of ids that SQLite had no statistics
for), and the Party-group study count read the list of every meeting with the topic.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlalchemy as sa
from bench_loader import load_bench

from engine.app import build_app
from engine.submit import judge_facts
from facts.errors import Location

AS_OF = dt.date(2018, 3, 1)


def _submission_steps(tmp: Path, scale: float) -> int:
    load_bench("generate", "bench_generate_for_submit_cost").generate(scale, 3, tmp)
    app = build_app(f"sqlite:///{tmp / 'p.db'}")
    app.init()
    with (tmp / "facts.jsonl").open(encoding="utf-8") as lines:
        app.facts.import_items((Location("bench", i), json.loads(line)) for i, line in enumerate(lines, 1))
    with app.db.connect() as conn:  # a Party group and its members, as bench/run.py's online submissions
        rows = conn.execute(
            sa.text(
                "select m.org, r.member from member_role r join member m on m.id = r.member "
                "where r.role = 'party_group_member' "
                "union select e.org, e.member from member_extra_org e join org o on o.id = e.org "
                "where o.kind = 'party_group' order by 1, 2"
            )
        ).all()
    group = rows[0][0]
    people = [member for org, member in rows if org == group]
    pack = app.pack()
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    app.db.dispose()
    sa.event.listen(app.db, "connect", lambda dbapi, _record: dbapi.set_progress_handler(count, 100))
    for i, month in enumerate((3, 6, 9)):
        meeting = {
            "type": "meeting",
            "id": f"submitted-{i}",
            "org": group,
            "kind": "party_group_meeting",
            "date": f"2017-{month:02d}-15",
            "attendees": people[:-1],
            "minutes": {
                "time": "9:00-11:00",
                "recorder": people[0],
                "content": f"学习研究党建工作第{i}次",
                "outcome": "形成决议",
            },
        }
        report = app.facts.import_items([(Location("submit", i), meeting)])
        assert report.stored, report
        before = steps
        judgement = judge_facts(app, [s.fact for s in report.stored], pack=pack, as_of=AS_OF)
        assert not judgement.errors, judgement.errors
        assert steps > before
    return steps


def test_judging_a_submitted_meeting_does_not_grow_with_the_province(tmp_path: Path) -> None:
    small = _submission_steps(tmp_path / "small", 0.005)
    big = _submission_steps(tmp_path / "big", 0.04)
    # 8 times the province; an org's own meetings and members are alike in both.  Before the fixes:
    # 3,900 and 30,499 hundreds of steps (7.8x); after: 127 and 127.
    assert big < 2 * small, (small, big)
