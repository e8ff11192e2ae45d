"""business hours: the settings row and the automatic replies owed

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-02 01:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "business_hours",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False),
        sa.Column("week", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("holidays", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("away_message", sa.Text(), server_default="", nullable=False),
        sa.Column("greeting_enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("greeting_message", sa.Text(), server_default="", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_business_hours_single_row")),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["agents.id"], name=op.f("fk_business_hours_updated_by_id_agents"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_hours")),
    )
    op.create_table(
        "auto_replies",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("reply_message_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('away', 'greeting')", name=op.f("ck_auto_replies_kind")),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'failed', 'skipped')", name=op.f("ck_auto_replies_state")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_auto_replies_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_auto_replies_message_id_messages"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["reply_message_id"],
            ["messages.id"],
            name=op.f("fk_auto_replies_reply_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auto_replies")),
        sa.UniqueConstraint(
            "conversation_id", "kind", "period_start", name=op.f("uq_auto_replies_conversation_id_kind_period_start")
        ),
    )
    op.create_index(
        "ix_auto_replies_pending", "auto_replies", ["id"], unique=False, postgresql_where=sa.text("state = 'pending'")
    )


def downgrade():
    op.drop_index("ix_auto_replies_pending", table_name="auto_replies", postgresql_where=sa.text("state = 'pending'"))
    op.drop_table("auto_replies")
    op.drop_table("business_hours")
