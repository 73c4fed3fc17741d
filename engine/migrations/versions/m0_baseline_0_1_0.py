"""The schema of partyrules 0.1.0, the last release made before migrations existed.

Revision ID: baseline_0_1_0
Revises:
Create Date: 2026-12-01 03:22:25.028507
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "baseline_0_1_0"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "alert_outbox",
    "check_run",
    "declaration",
    "dues",
    "election",
    "fact_version",
    "field_visit",
    "import_run",
    "interview",
    "meeting",
    "meeting_attendance",
    "meeting_topic",
    "member",
    "member_extra_org",
    "member_role",
    "minutes_sig",
    "org",
    "pack_approval",
    "pack_version",
    "petition",
    "promotion",
    "schedule_period_done",
    "schedule_state",
    "signoff",
    "violation",
    "violation_event",
    "alert_delivery",
)


def upgrade() -> None:
    # A 0.1.0 database made before migrations has these tables already: create only what is missing.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "alert_outbox" not in existing:
        op.create_table(
            "alert_outbox",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("dedup", sa.String(length=600), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("occurrence", sa.String(length=100), nullable=False),
            sa.Column("severity", sa.String(length=16), nullable=False),
            sa.Column("rule", sa.String(length=200), nullable=True),
            sa.Column("org", sa.String(length=200), nullable=True),
            sa.Column("org_path", sa.JSON(), nullable=False),
            sa.Column("title", sa.Text(), nullable=False),
            sa.Column("message", sa.Text(), nullable=False),
            sa.Column("payload", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("dedup"),
        )
        with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_alert_outbox_created_at"), ["created_at"], unique=False)
            batch_op.create_index(batch_op.f("ix_alert_outbox_org"), ["org"], unique=False)
    if "check_run" not in existing:
        op.create_table(
            "check_run",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("pack_hash", sa.String(length=32), nullable=False),
            sa.Column("pack_root", sa.String(), nullable=False),
            sa.Column("period", sa.String(length=40), nullable=False),
            sa.Column("as_of", sa.Date(), nullable=False),
            sa.Column("grace_days", sa.Integer(), nullable=False),
            sa.Column("trigger", sa.String(length=32), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("subjects", sa.Integer(), nullable=False),
            sa.Column("findings", sa.Integer(), nullable=False),
            sa.Column("new", sa.Integer(), nullable=False),
            sa.Column("resolved", sa.Integer(), nullable=False),
            sa.Column("seconds_sql", sa.Float(), nullable=False),
            sa.Column("seconds_match", sa.Float(), nullable=False),
            sa.Column("seconds_store", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if "declaration" not in existing:
        op.create_table(
            "declaration",
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("member", sa.String(length=200), nullable=False),
            sa.Column("year", sa.Integer(), nullable=False),
            sa.Column("filed", sa.Date(), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
        with op.batch_alter_table("declaration", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_declaration_member"), ["member"], unique=False)
    if "dues" not in existing:
        op.create_table(
            "dues",
            sa.Column("member", sa.String(length=200), nullable=False),
            sa.Column("month", sa.String(length=7), nullable=False),
            sa.Column("amount", sa.Float(), nullable=False),
            sa.Column("paid_on", sa.Date(), nullable=False),
            sa.Column("base", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("member", "month"),
        )
    if "election" not in existing:
        op.create_table(
            "election",
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("org", sa.String(length=200), nullable=False),
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("term_years", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("key"),
        )
        with op.batch_alter_table("election", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_election_org"), ["org"], unique=False)
    if "fact_version" not in existing:
        op.create_table(
            "fact_version",
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("type", sa.String(length=32), nullable=False),
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.Column("content", sa.String(), nullable=False),
            sa.Column("current", sa.Boolean(), nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("import_id", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("seq"),
            sa.UniqueConstraint("type", "key", "version"),
        )
        with op.batch_alter_table("fact_version", schema=None) as batch_op:
            batch_op.create_index("ix_fact_version_current", ["type", "key", "current"], unique=False)
            batch_op.create_index(batch_op.f("ix_fact_version_import_id"), ["import_id"], unique=False)
    if "field_visit" not in existing:
        op.create_table(
            "field_visit",
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("member", sa.String(length=200), nullable=False),
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("place", sa.String(), nullable=True),
            sa.Column("topic", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("key"),
        )
        with op.batch_alter_table("field_visit", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_field_visit_member"), ["member"], unique=False)
    if "import_run" not in existing:
        op.create_table(
            "import_run",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("files", sa.String(), nullable=False),
            sa.Column("added", sa.Integer(), nullable=False),
            sa.Column("unchanged", sa.Integer(), nullable=False),
            sa.Column("corrected", sa.Integer(), nullable=False),
            sa.Column("rejected", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if "interview" not in existing:
        op.create_table(
            "interview",
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("interviewer", sa.String(length=200), nullable=False),
            sa.Column("interviewee", sa.String(length=200), nullable=False),
            sa.Column("kind", sa.String(length=32), nullable=False),
            sa.Column("topic", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("key"),
        )
        with op.batch_alter_table("interview", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_interview_interviewee"), ["interviewee"], unique=False)
            batch_op.create_index(batch_op.f("ix_interview_interviewer"), ["interviewer"], unique=False)
    if "meeting" not in existing:
        op.create_table(
            "meeting",
            sa.Column("id", sa.String(length=200), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("org", sa.String(length=200), nullable=False),
            sa.Column("kind", sa.String(length=32), nullable=False),
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("host", sa.String(), nullable=True),
            sa.Column("lecturer", sa.String(length=200), nullable=True),
            sa.Column("has_minutes", sa.Boolean(), nullable=False),
            sa.Column("minutes_time", sa.String(), nullable=True),
            sa.Column("minutes_place", sa.String(), nullable=True),
            sa.Column("minutes_recorder", sa.String(), nullable=True),
            sa.Column("minutes_agenda", sa.String(), nullable=True),
            sa.Column("minutes_content", sa.String(), nullable=True),
            sa.Column("minutes_outcome", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("meeting", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_meeting_date"), ["date"], unique=False)
            batch_op.create_index(batch_op.f("ix_meeting_lecturer"), ["lecturer"], unique=False)
            batch_op.create_index("ix_meeting_org_kind_date", ["org", "kind", "date"], unique=False)
    if "meeting_attendance" not in existing:
        op.create_table(
            "meeting_attendance",
            sa.Column("meeting", sa.String(length=200), nullable=False),
            sa.Column("member", sa.String(length=200), nullable=False),
            sa.Column("status", sa.String(length=8), nullable=False),
            sa.Column("opinion_given", sa.Boolean(), nullable=False),
            sa.Column("reason", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("meeting", "member"),
        )
        with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
            batch_op.create_index("ix_attendance_member", ["member", "status"], unique=False)
    if "meeting_topic" not in existing:
        op.create_table(
            "meeting_topic",
            sa.Column("meeting", sa.String(length=200), nullable=False),
            sa.Column("topic", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("meeting", "topic"),
        )
        with op.batch_alter_table("meeting_topic", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_meeting_topic_topic"), ["topic"], unique=False)
    if "member" not in existing:
        op.create_table(
            "member",
            sa.Column("id", sa.String(length=200), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("org", sa.String(length=200), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("category", sa.String(length=16), nullable=False),
            sa.Column("joined", sa.Date(), nullable=True),
            sa.Column("left", sa.Date(), nullable=True),
            sa.Column("unit", sa.String(length=200), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("member", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_member_org"), ["org"], unique=False)
    if "member_extra_org" not in existing:
        op.create_table(
            "member_extra_org",
            sa.Column("member", sa.String(length=200), nullable=False),
            sa.Column("org", sa.String(length=200), nullable=False),
            sa.PrimaryKeyConstraint("member", "org"),
        )
        with op.batch_alter_table("member_extra_org", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_member_extra_org_org"), ["org"], unique=False)
    if "member_role" not in existing:
        op.create_table(
            "member_role",
            sa.Column("member", sa.String(length=200), nullable=False),
            sa.Column("role", sa.String(length=32), nullable=False),
            sa.PrimaryKeyConstraint("member", "role"),
        )
        with op.batch_alter_table("member_role", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_member_role_role"), ["role"], unique=False)
    if "minutes_sig" not in existing:
        op.create_table(
            "minutes_sig",
            sa.Column("meeting", sa.String(length=200), nullable=False),
            sa.Column("b0", sa.BigInteger(), nullable=False),
            sa.Column("b1", sa.BigInteger(), nullable=False),
            sa.Column("b2", sa.BigInteger(), nullable=False),
            sa.Column("b3", sa.BigInteger(), nullable=False),
            sa.Column("b4", sa.BigInteger(), nullable=False),
            sa.Column("b5", sa.BigInteger(), nullable=False),
            sa.Column("b6", sa.BigInteger(), nullable=False),
            sa.Column("b7", sa.BigInteger(), nullable=False),
            sa.Column("b8", sa.BigInteger(), nullable=False),
            sa.Column("b9", sa.BigInteger(), nullable=False),
            sa.Column("b10", sa.BigInteger(), nullable=False),
            sa.Column("b11", sa.BigInteger(), nullable=False),
            sa.Column("b12", sa.BigInteger(), nullable=False),
            sa.Column("b13", sa.BigInteger(), nullable=False),
            sa.Column("b14", sa.BigInteger(), nullable=False),
            sa.Column("b15", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("meeting"),
        )
        with op.batch_alter_table("minutes_sig", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_minutes_sig_b0"), ["b0"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b1"), ["b1"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b10"), ["b10"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b11"), ["b11"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b12"), ["b12"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b13"), ["b13"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b14"), ["b14"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b15"), ["b15"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b2"), ["b2"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b3"), ["b3"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b4"), ["b4"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b5"), ["b5"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b6"), ["b6"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b7"), ["b7"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b8"), ["b8"], unique=False)
            batch_op.create_index(batch_op.f("ix_minutes_sig_b9"), ["b9"], unique=False)
    if "org" not in existing:
        op.create_table(
            "org",
            sa.Column("id", sa.String(length=200), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("kind", sa.String(length=32), nullable=False),
            sa.Column("parent", sa.String(length=200), nullable=True),
            sa.Column("established", sa.Date(), nullable=True),
            sa.Column("dissolved", sa.Date(), nullable=True),
            sa.Column("term_years", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("org", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_org_kind"), ["kind"], unique=False)
            batch_op.create_index(batch_op.f("ix_org_parent"), ["parent"], unique=False)
    if "pack_approval" not in existing:
        op.create_table(
            "pack_approval",
            sa.Column("hash", sa.String(length=32), nullable=False),
            sa.Column("root", sa.String(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("flipped_share", sa.Float(), nullable=True),
            sa.Column("decided_by", sa.String(length=200), nullable=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
            sa.Column("files", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("hash"),
        )
    if "pack_version" not in existing:
        op.create_table(
            "pack_version",
            sa.Column("hash", sa.String(length=32), nullable=False),
            sa.Column("root", sa.String(), nullable=False),
            sa.Column("first_used", sa.DateTime(timezone=True), nullable=False),
            sa.Column("rules", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("hash"),
        )
    if "petition" not in existing:
        op.create_table(
            "petition",
            sa.Column("id", sa.String(length=200), nullable=False),
            sa.Column("received", sa.Date(), nullable=False),
            sa.Column("registered", sa.Date(), nullable=True),
            sa.Column("accepted", sa.Date(), nullable=True),
            sa.Column("closed", sa.Date(), nullable=True),
            sa.Column("subject", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    if "promotion" not in existing:
        op.create_table(
            "promotion",
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("member", sa.String(length=200), nullable=False),
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("position", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("key"),
        )
        with op.batch_alter_table("promotion", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_promotion_member"), ["member"], unique=False)
    if "schedule_period_done" not in existing:
        op.create_table(
            "schedule_period_done",
            sa.Column("period", sa.String(length=16), nullable=False),
            sa.Column("granularity", sa.String(length=8), nullable=False),
            sa.Column("due", sa.Date(), nullable=False),
            sa.Column("as_of", sa.Date(), nullable=False),
            sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("run_id", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("period"),
        )
    if "schedule_state" not in existing:
        op.create_table(
            "schedule_state",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("value", sa.String(length=200), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )
    if "signoff" not in existing:
        op.create_table(
            "signoff",
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("document", sa.String(length=200), nullable=False),
            sa.Column("unit", sa.String(length=200), nullable=True),
            sa.Column("signer", sa.String(length=200), nullable=True),
            sa.Column("date", sa.Date(), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
        with op.batch_alter_table("signoff", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_signoff_document"), ["document"], unique=False)
    if "violation" not in existing:
        op.create_table(
            "violation",
            sa.Column("key", sa.String(length=600), nullable=False),
            sa.Column("rule", sa.String(length=200), nullable=False),
            sa.Column("rule_version", sa.String(length=32), nullable=False),
            sa.Column("pack_hash", sa.String(length=32), nullable=False),
            sa.Column("severity", sa.String(length=16), nullable=False),
            sa.Column("title", sa.Text(), nullable=False),
            sa.Column("basis", sa.Text(), nullable=False),
            sa.Column("subject_type", sa.String(length=16), nullable=False),
            sa.Column("subject_id", sa.String(length=400), nullable=False),
            sa.Column("org", sa.String(length=200), nullable=True),
            sa.Column("org_name", sa.String(), nullable=True),
            sa.Column("member", sa.String(length=200), nullable=True),
            sa.Column("period", sa.String(length=16), nullable=False),
            sa.Column("message", sa.Text(), nullable=False),
            sa.Column("evidence", sa.JSON(), nullable=False),
            sa.Column("org_path", sa.JSON(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_run", sa.Integer(), nullable=True),
            sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("resolution", sa.Text(), nullable=True),
            sa.Column("owner", sa.String(), nullable=True),
            sa.Column("deadline", sa.Date(), nullable=True),
            sa.Column("plan", sa.Text(), nullable=True),
            sa.Column("waiver_reason", sa.Text(), nullable=True),
            sa.Column("waiver_approver", sa.String(), nullable=True),
            sa.Column("waiver_expires", sa.Date(), nullable=True),
            sa.Column("escalation_level", sa.Integer(), nullable=False),
            sa.Column("rule_retired", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
        with op.batch_alter_table("violation", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_violation_org"), ["org"], unique=False)
            batch_op.create_index("ix_violation_rule_period", ["rule", "period"], unique=False)
            batch_op.create_index(batch_op.f("ix_violation_status"), ["status"], unique=False)
    if "violation_event" not in existing:
        op.create_table(
            "violation_event",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("key", sa.String(length=600), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("actor", sa.String(length=200), nullable=False),
            sa.Column("action", sa.String(length=32), nullable=False),
            sa.Column("from_status", sa.String(), nullable=True),
            sa.Column("to_status", sa.String(), nullable=True),
            sa.Column("note", sa.Text(), nullable=True),
            sa.Column("run_id", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("violation_event", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_violation_event_key"), ["key"], unique=False)
    if "alert_delivery" not in existing:
        op.create_table(
            "alert_delivery",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("outbox_id", sa.Integer(), nullable=False),
            sa.Column("channel", sa.String(length=100), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("claimed_by", sa.String(length=64), nullable=True),
            sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
            sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.ForeignKeyConstraint(
                ["outbox_id"],
                ["alert_outbox.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("outbox_id", "channel"),
        )
        with op.batch_alter_table("alert_delivery", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_alert_delivery_channel"), ["channel"], unique=False)
            batch_op.create_index("ix_alert_delivery_due", ["status", "next_attempt_at"], unique=False)
            batch_op.create_index(batch_op.f("ix_alert_delivery_outbox_id"), ["outbox_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_delivery_outbox_id"))
        batch_op.drop_index("ix_alert_delivery_due")
        batch_op.drop_index(batch_op.f("ix_alert_delivery_channel"))

    op.drop_table("alert_delivery")
    with op.batch_alter_table("violation_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_violation_event_key"))

    op.drop_table("violation_event")
    with op.batch_alter_table("violation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_violation_status"))
        batch_op.drop_index("ix_violation_rule_period")
        batch_op.drop_index(batch_op.f("ix_violation_org"))

    op.drop_table("violation")
    with op.batch_alter_table("signoff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signoff_document"))

    op.drop_table("signoff")
    op.drop_table("schedule_state")
    op.drop_table("schedule_period_done")
    with op.batch_alter_table("promotion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotion_member"))

    op.drop_table("promotion")
    op.drop_table("petition")
    op.drop_table("pack_version")
    op.drop_table("pack_approval")
    with op.batch_alter_table("org", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_parent"))
        batch_op.drop_index(batch_op.f("ix_org_kind"))

    op.drop_table("org")
    with op.batch_alter_table("minutes_sig", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b9"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b8"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b7"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b6"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b5"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b4"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b3"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b2"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b15"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b14"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b13"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b12"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b11"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b10"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b1"))
        batch_op.drop_index(batch_op.f("ix_minutes_sig_b0"))

    op.drop_table("minutes_sig")
    with op.batch_alter_table("member_role", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_role_role"))

    op.drop_table("member_role")
    with op.batch_alter_table("member_extra_org", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_extra_org_org"))

    op.drop_table("member_extra_org")
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_org"))

    op.drop_table("member")
    with op.batch_alter_table("meeting_topic", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_topic_topic"))

    op.drop_table("meeting_topic")
    with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
        batch_op.drop_index("ix_attendance_member")

    op.drop_table("meeting_attendance")
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.drop_index("ix_meeting_org_kind_date")
        batch_op.drop_index(batch_op.f("ix_meeting_lecturer"))
        batch_op.drop_index(batch_op.f("ix_meeting_date"))

    op.drop_table("meeting")
    with op.batch_alter_table("interview", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interview_interviewer"))
        batch_op.drop_index(batch_op.f("ix_interview_interviewee"))

    op.drop_table("interview")
    op.drop_table("import_run")
    with op.batch_alter_table("field_visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_field_visit_member"))

    op.drop_table("field_visit")
    with op.batch_alter_table("fact_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fact_version_import_id"))
        batch_op.drop_index("ix_fact_version_current")

    op.drop_table("fact_version")
    with op.batch_alter_table("election", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_election_org"))

    op.drop_table("election")
    op.drop_table("dues")
    with op.batch_alter_table("declaration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_declaration_member"))

    op.drop_table("declaration")
    op.drop_table("check_run")
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_outbox_org"))
        batch_op.drop_index(batch_op.f("ix_alert_outbox_created_at"))

    op.drop_table("alert_outbox")
