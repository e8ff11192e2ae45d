"""reports: conversation events, hourly counters, and the open period and wait on conversations

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 06:00:00

The backfill is set-based SQL (a few statements over `messages`, one pass each):

- `report_hours`: every visible message counted by UTC hour, direction and shard (one GROUP BY),
  then every event below by its kind;
- first responses, exactly as the services record them from now on: the messages of each
  conversation in order (window functions), a stretch starting at a customer's message after the
  team's reply, answered by the team's next reply. The business-hours wait is computed with
  app/whatsapp/business_hours.py (the one rule): in SQL it equals the wall-clock wait while the
  hours are off (the default); when an admin has switched them on, the stretches are read in
  batches and each wait is computed in Python;
- `opened` at each conversation's first visible message; `conversations.opened_at` the same and
  `awaiting_reply_since` the start of a still unanswered stretch (for conversations not resolved);
- there was no status history before this revision: a resolved conversation gets one `resolved`
  at its `updated_at` (the closest record of when it happened), reopenings before it are unknown.

Cost measured by bench/reports_benchmark.py (bench/RESULTS.md, "Reports"): 60 s (1 M messages over
a year, 100,000 conversations) and 70 s (1 M messages in 30 days) on the 2-core machine under a
load average of 6–9, business hours on (500,000 first responses whose business seconds are
computed in Python), with `messages` read and `conversations` locked meanwhile: run it in a quiet
moment. The business seconds are written by an UPDATE after the INSERT, so `conversation_events`
starts with one dead version per first response (autovacuum reclaims it).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

VISIBLE = "type NOT IN ('reaction', 'edit', 'revoke', 'note', 'event')"  # snooze's thread events (0011) are no messages either
STRETCHES = f"""
CREATE TEMPORARY TABLE report_stretches ON COMMIT DROP AS
WITH visible AS (
    SELECT conversation_id, id, sent_at, agent_id, sender = 'customer' AS from_customer
    FROM messages
    WHERE {VISIBLE} AND (sender = 'customer' OR (sender = 'agent' AND direction = 'out'))
), marked AS (
    SELECT *, lag(from_customer) OVER (PARTITION BY conversation_id ORDER BY sent_at, id) AS previous_from_customer
    FROM visible
), grouped AS (
    SELECT *, count(*) FILTER (WHERE from_customer AND previous_from_customer IS DISTINCT FROM true)
        OVER (PARTITION BY conversation_id ORDER BY sent_at, id) AS stretch
    FROM marked
)
SELECT conversation_id, stretch,
    min(sent_at) FILTER (WHERE from_customer) AS since,
    min(sent_at) FILTER (WHERE NOT from_customer) AS answered_at,
    (array_agg(agent_id ORDER BY sent_at, id) FILTER (WHERE NOT from_customer))[1] AS agent_id
FROM grouped
WHERE stretch > 0
GROUP BY conversation_id, stretch
"""


def _schedule(bind):
    """The business hours in force, or None while they are off (every second a business second)."""
    from app.whatsapp.business_hours import ScheduleError, parse_schedule  # pure code, no Flask

    row = bind.execute(sa.text("SELECT time_zone, week, holidays, enabled FROM business_hours WHERE id = 1")).first()
    if row is None or not row.enabled:
        return None
    try:
        return parse_schedule(
            {"time_zone": row.time_zone, "week": row.week, "holidays": row.holidays, "enabled": row.enabled}
        )
    except ScheduleError:
        return None


def _backfill():
    bind = op.get_bind()
    op.execute(
        f"""
        INSERT INTO report_hours (hour, metric, shard, count)
        SELECT date_trunc('hour', sent_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', direction, conversation_id % 4, count(*)
        FROM messages WHERE {VISIBLE}
        GROUP BY 1, 2, 3
        """
    )
    op.execute(STRETCHES)
    first_responses = """
        INSERT INTO conversation_events (conversation_id, kind, at, agent_id, assignee_id, seconds, business_seconds)
        SELECT s.conversation_id, 'first_response', s.answered_at, s.agent_id, c.assignee_id,
            greatest(0, extract(epoch FROM s.answered_at - s.since)), {business}
        FROM report_stretches s JOIN conversations c ON c.id = s.conversation_id
        WHERE s.answered_at IS NOT NULL
    """
    schedule = _schedule(bind)
    if schedule is None:
        op.execute(first_responses.format(business="greatest(0, extract(epoch FROM s.answered_at - s.since))"))
    else:
        from app.whatsapp.business_hours import business_seconds

        op.execute(first_responses.format(business="NULL"))
        rows = bind.execute(
            sa.text(
                "SELECT id, at - make_interval(secs => seconds) AS since, at FROM conversation_events WHERE kind = 'first_response'"
            )
        ).all()
        for start in range(0, len(rows), 5000):
            batch = rows[start : start + 5000]
            bind.execute(
                sa.text(
                    "UPDATE conversation_events e SET business_seconds = v.b "
                    "FROM unnest(CAST(:ids AS bigint[]), CAST(:bs AS double precision[])) AS v(id, b) WHERE e.id = v.id"
                ),
                {"ids": [r.id for r in batch], "bs": [business_seconds(schedule, r.since, r.at) for r in batch]},
            )
    op.execute(
        f"""
        UPDATE conversations c SET opened_at = f.first_at
        FROM (SELECT conversation_id, min(sent_at) AS first_at FROM messages WHERE {VISIBLE} GROUP BY conversation_id) f
        WHERE c.id = f.conversation_id
        """
    )
    op.execute(
        """
        UPDATE conversations c SET awaiting_reply_since = s.since
        FROM (SELECT DISTINCT ON (conversation_id) conversation_id, since, answered_at
              FROM report_stretches ORDER BY conversation_id, stretch DESC) s
        WHERE c.id = s.conversation_id AND s.answered_at IS NULL AND c.status <> 'resolved'
        """
    )
    op.execute(
        """
        INSERT INTO conversation_events (conversation_id, kind, at, assignee_id)
        SELECT id, 'opened', opened_at, assignee_id FROM conversations WHERE opened_at IS NOT NULL
        """
    )
    op.execute(
        """
        INSERT INTO conversation_events (conversation_id, kind, at, assignee_id, seconds)
        SELECT id, 'resolved', updated_at, assignee_id,
            greatest(0, extract(epoch FROM updated_at - coalesce(opened_at, created_at)))
        FROM conversations WHERE status = 'resolved'
        """
    )
    op.execute(
        """
        INSERT INTO report_hours (hour, metric, shard, count)
        SELECT date_trunc('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', kind, conversation_id % 4, count(*)
        FROM conversation_events
        GROUP BY 1, 2, 3
        """
    )


def upgrade():
    op.add_column("conversations", sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("conversations", sa.Column("awaiting_reply_since", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "conversation_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("business_seconds", sa.Double(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('opened', 'reopened', 'resolved', 'first_response')", name=op.f("ck_conversation_events_kind")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_events_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_conversation_events_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["agents.id"], name=op.f("fk_conversation_events_assignee_id_agents"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_events")),
    )
    op.create_table(
        "report_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "metric IN ('in', 'out', 'opened', 'reopened', 'resolved', 'first_response')",
            name=op.f("ck_report_hours_metric"),
        ),
        sa.PrimaryKeyConstraint("hour", "metric", "shard", name=op.f("pk_report_hours")),
    )
    _backfill()
    op.execute("ANALYZE conversation_events")
    # The indexes after the backfill: built once rather than kept up row by row.
    op.create_index(
        "ix_conversation_events_kind_at",
        "conversation_events",
        ["kind", "at"],
        unique=False,
        postgresql_include=["id", "seconds", "business_seconds", "agent_id", "assignee_id"],
    )
    op.create_index("ix_conversation_events_conversation_id", "conversation_events", ["conversation_id"], unique=False)
    op.create_index(
        "ix_conversations_awaiting_reply",
        "conversations",
        ["awaiting_reply_since"],
        unique=False,
        postgresql_where=sa.text("awaiting_reply_since IS NOT NULL AND status = 'open'"),
    )


def downgrade():
    op.drop_index(
        "ix_conversations_awaiting_reply",
        table_name="conversations",
        postgresql_where=sa.text("awaiting_reply_since IS NOT NULL AND status = 'open'"),
    )
    op.drop_table("report_hours")
    op.drop_table("conversation_events")
    op.drop_column("conversations", "awaiting_reply_since")
    op.drop_column("conversations", "opened_at")
