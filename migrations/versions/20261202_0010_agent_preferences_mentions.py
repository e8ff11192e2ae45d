"""agent preferences and mentions: language, time zone and notifications on the agent's row

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:15:00

The language and time zone move from the session to `agents` (NULL follows the browser), beside
the browser notification preferences. `mentions` records each agent named with `@` in a private
note. A partial index on the conversations with unread messages serves the notifications' feed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("agents", sa.Column("language", sa.String(length=8), nullable=True))
    op.add_column("agents", sa.Column("time_zone", sa.Text(), nullable=True))
    op.add_column("agents", sa.Column("notify_desktop", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("agents", sa.Column("notify_sound", sa.Boolean(), server_default="true", nullable=False))
    op.add_column(
        "agents",
        sa.Column("notify_scope", sa.String(length=24), server_default="mine_and_unassigned", nullable=False),
    )
    op.create_check_constraint(op.f("ck_agents_language"), "agents", "language IS NULL OR language IN ('es', 'en')")
    op.create_check_constraint(
        op.f("ck_agents_notify_scope"), "agents", "notify_scope IN ('mine_and_unassigned', 'all')"
    )
    op.create_table(
        "mentions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_mentions_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_mentions_message_id_messages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_mentions_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mentions")),
        sa.UniqueConstraint("message_id", "agent_id", name=op.f("uq_mentions_message_id_agent_id")),
    )
    op.create_index("ix_mentions_agent", "mentions", ["agent_id", sa.text("id DESC")], unique=False)
    op.create_index(
        "ix_mentions_agent_unread",
        "mentions",
        ["agent_id", "id"],
        unique=False,
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.create_index(
        "ix_conversations_unread_activity",
        "conversations",
        [sa.text("last_activity_at DESC"), sa.text("id DESC")],
        unique=False,
        postgresql_where=sa.text("unread_count > 0"),
    )


def downgrade():
    op.drop_index("ix_conversations_unread_activity", table_name="conversations")
    op.drop_index("ix_mentions_agent_unread", table_name="mentions")
    op.drop_index("ix_mentions_agent", table_name="mentions")
    op.drop_table("mentions")
    op.drop_constraint(op.f("ck_agents_notify_scope"), "agents", type_="check")
    op.drop_constraint(op.f("ck_agents_language"), "agents", type_="check")
    for column in ("notify_scope", "notify_sound", "notify_desktop", "time_zone", "language"):
        op.drop_column("agents", column)
