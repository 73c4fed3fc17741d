"""rectification_evidence: evidence files of rectification reports, with their sha256

Revision ID: 30df9a9e0855
Revises: 484d327c1c3d
Create Date: 2026-12-01 06:18:18.267225
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "30df9a9e0855"
down_revision: str | Sequence[str] | None = "484d327c1c3d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rectification_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("violation_key", sa.String(length=600), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rectification_evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rectification_evidence_sha256"), ["sha256"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_rectification_evidence_violation_key"), ["violation_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rectification_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rectification_evidence_violation_key"))
        batch_op.drop_index(batch_op.f("ix_rectification_evidence_sha256"))

    op.drop_table("rectification_evidence")
