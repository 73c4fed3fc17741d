"""import_run_status: an import run is finished ok or failed, with the reason (issue 11)

A chunk the database keeps refusing stops the import; the run says so and a re-run of the same
files resumes.  Rows from before are finished imports: ``ok``.

Revision ID: 5d1c0a7e9b21
Revises: 36a9479c1fde
Create Date: 2026-12-01 04:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d1c0a7e9b21"
down_revision: str | Sequence[str] | None = "36a9479c1fde"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="ok"))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_run", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.drop_column("status")
