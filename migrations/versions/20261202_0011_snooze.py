"""snooze: status 'snoozed' and conversations.snoozed_until, with the wake job's index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:15:00

The status CHECK is replaced by one that also allows 'snoozed' (added NOT VALID, then
validated: the scan holds only a SHARE UPDATE EXCLUSIVE lock, so the inbox keeps writing).
The new column is nullable without a default: adding it rewrites nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("conversations", sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f("ck_conversations_status"), "conversations", type_="check")
    op.execute(
        "ALTER TABLE conversations ADD CONSTRAINT ck_conversations_status "
        "CHECK (status IN ('open', 'pending', 'resolved', 'snoozed')) NOT VALID"
    )
    op.execute("ALTER TABLE conversations VALIDATE CONSTRAINT ck_conversations_status")
    op.create_check_constraint(
        op.f("ck_conversations_snoozed_until_only_snoozed"), "conversations", "snoozed_until IS NULL OR status = 'snoozed'"
    )
    op.create_index(
        "ix_conversations_snoozed_until",
        "conversations",
        ["snoozed_until"],
        unique=False,
        postgresql_where=sa.text("status = 'snoozed'"),
    )


def downgrade():
    # Snoozed conversations are open again (the old constraint knows no 'snoozed').
    op.execute("UPDATE conversations SET status = 'open', snoozed_until = NULL WHERE status = 'snoozed'")
    op.drop_index("ix_conversations_snoozed_until", table_name="conversations", postgresql_where=sa.text("status = 'snoozed'"))
    op.drop_constraint(op.f("ck_conversations_snoozed_until_only_snoozed"), "conversations", type_="check")
    op.drop_constraint(op.f("ck_conversations_status"), "conversations", type_="check")
    op.create_check_constraint(op.f("ck_conversations_status"), "conversations", "status IN ('open', 'pending', 'resolved')")
    op.drop_column("conversations", "snoozed_until")
