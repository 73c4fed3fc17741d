"""meeting_minutes_parts: which parts of a meeting's minutes have text, as bits, and two covering indexes

The meeting rules read, for every meeting of a span, whether each part of its minutes holds something
besides white space.  That was computed in SQL from the minutes' text at every check (reading every wide
meeting row); it is now a small integer filled wherever a meeting is written
(``facts.tables.minutes_parts``), backfilled here with that same SQL.  Two covering indexes serve the
load: the meetings of a span with their parts (``ix_meeting_date_parts``) and each meeting's attendance
grouped by status and opinion (``ix_attendance_meeting_status``).

Revision ID: a5e6f74bb0ea
Revises: 30df9a9e0855
Create Date: 2026-12-01 19:45:00
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a5e6f74bb0ea"
down_revision: str | Sequence[str] | None = "30df9a9e0855"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the text parts, in the order of their bits (as ``facts.tables.MINUTES_TEXT_COLUMNS``, copied: a migration
#: must not change when the code does)
COLUMNS = ("minutes_time", "minutes_place", "minutes_agenda", "minutes_content", "minutes_outcome", "minutes_recorder")
#: what Python's ``str.strip()`` removes (every ``c.isspace()``; tests/test_minutes_parts.py keeps it so)
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def parts_expression(table: sa.TableClause) -> sa.ColumnElement[int]:
    """``minutes_parts`` computed in SQL from the text columns of ``table`` (the meeting table)."""
    bits = [
        sa.case(
            (sa.func.length(sa.func.ltrim(sa.func.coalesce(table.c[col], ""), sa.literal(WHITESPACE))) > 0, 1 << i),
            else_=0,
        )
        for i, col in enumerate(COLUMNS)
    ]
    return functools.reduce(operator.add, bits)


def upgrade() -> None:
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.add_column(sa.Column("minutes_parts", sa.Integer(), nullable=False, server_default="0"))
    meeting = sa.table("meeting", *(sa.column(col, sa.String()) for col in COLUMNS), sa.column("minutes_parts"))
    op.execute(sa.update(meeting).values(minutes_parts=parts_expression(meeting)))
    op.create_index("ix_meeting_date_parts", "meeting", ["date", "org", "kind", "id", "minutes_parts"], unique=False)
    op.create_index(
        "ix_attendance_meeting_status",
        "meeting_attendance",
        ["meeting", "status", "opinion_given", "member"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_attendance_meeting_status", table_name="meeting_attendance")
    op.drop_index("ix_meeting_date_parts", table_name="meeting")
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.drop_column("minutes_parts")
