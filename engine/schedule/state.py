"""What the schedule remembers in the project database: periods already judged, and its first day.

A period is marked done only after its check run finished, so a scheduler
killed mid-run judges that period again on its next start; the check itself is
idempotent (violations are upserted by key, alerts deduplicated), so the
second run reports nothing twice.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from engine.periods import Period
from engine.schedule.tables import SchedulePeriodDone, ScheduleState

_DONE = SchedulePeriodDone.__table__  # type: ignore[attr-defined]
_STATE = ScheduleState.__table__  # type: ignore[attr-defined]


def ensure_tables(db: sa.Engine) -> None:
    """The schema is in place, the schedule's tables with it (created or migrated); safe to repeat."""
    from engine.schema import init_schema

    init_schema(db)


def epoch(db: sa.Engine, today: dt.date) -> dt.date:
    """The day the schedule first ran here, recording ``today`` on the first call."""
    with db.begin() as conn:
        value = conn.execute(sa.select(_STATE.c.value).where(_STATE.c.name == "epoch")).scalar()
        if value is None:
            conn.execute(sa.insert(_STATE).values(name="epoch", value=today.isoformat()))
            return today
    return dt.date.fromisoformat(value)


def read_epoch(db: sa.Engine) -> dt.date | None:
    """The recorded first day, or None before the schedule has ever run here (reads only)."""
    ensure_tables(db)
    with db.connect() as conn:
        value = conn.execute(sa.select(_STATE.c.value).where(_STATE.c.name == "epoch")).scalar()
    return dt.date.fromisoformat(value) if value else None


def done_periods(db: sa.Engine, labels: list[str]) -> set[str]:
    """Which of ``labels`` have been judged already."""
    if not labels:
        return set()
    with db.connect() as conn:
        return set(conn.execute(sa.select(_DONE.c.period).where(_DONE.c.period.in_(labels))).scalars())


def mark_done(
    db: sa.Engine, periods: list[tuple[Period, dt.date]], as_of: dt.date, run_id: int | None, now: dt.datetime
) -> None:
    """Record ``(period, due)`` pairs as judged by ``run_id``, skipping any already recorded."""
    with db.begin() as conn:
        have = set(
            conn.execute(
                sa.select(_DONE.c.period).where(_DONE.c.period.in_([p.label for p, _ in periods]))
            ).scalars()
        )
        rows = [
            dict(
                period=p.label, granularity=p.granularity, due=due, as_of=as_of, checked_at=now, run_id=run_id
            )
            for p, due in periods
            if p.label not in have
        ]
        if rows:
            conn.execute(sa.insert(_DONE), rows)


def all_done(db: sa.Engine) -> list[SchedulePeriodDone]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(_DONE).order_by(_DONE.c.due, _DONE.c.period)).all()
    return [SchedulePeriodDone.model_validate(dict(r._mapping)) for r in rows]
