"""media kept: the message's media state, and Procrastinate's job queue schema

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:45:00

The job queue's tables and functions are Procrastinate 3.10.0's own schema, vendored beside
this file (sql/procrastinate_3.10.0_schema.sql, identical to `procrastinate schema --read`), so
the database does not change when the installed library does. Upgrading Procrastinate means a
new Alembic revision that applies the library's migration files for the versions in between.
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PROCRASTINATE_SCHEMA = Path(__file__).with_name("sql") / "procrastinate_3.10.0_schema.sql"


def upgrade():
    op.add_column("messages", sa.Column("media_state", sa.String(length=16), nullable=True))
    op.add_column("messages", sa.Column("media_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("messages", sa.Column("media_claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("messages", sa.Column("media_storage_key", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("media_stored_sha256", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("media_size", sa.BigInteger(), nullable=True))
    op.add_column("messages", sa.Column("media_content_type", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("media_stored_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("messages", sa.Column("media_error", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_messages_media_state"),
        "messages",
        "media_state IS NULL OR media_state IN ('pending', 'stored', 'expired', 'corrupt', 'failed', 'pruned')",
    )
    op.create_index(
        "ix_messages_media_pending", "messages", ["id"], postgresql_where=sa.text("media_state = 'pending'")
    )
    op.create_index(
        "ix_messages_media_stored",
        "messages",
        ["media_stored_at"],
        postgresql_where=sa.text("media_state = 'stored'"),
    )
    # Inbound media received before this revision is owed too: Meta keeps it 7 days.
    op.execute(
        "UPDATE messages SET media_state = 'pending' WHERE direction = 'in' "
        "AND type IN ('image', 'video', 'audio', 'document', 'sticker') AND media_id ~ '^[0-9]{1,64}$' "
        "AND deleted_at IS NULL AND received_at > now() - interval '7 days'"
    )
    # Straight to the driver's cursor, without parameters, so its % and : are not placeholders;
    # same connection, so same transaction as the rest of this revision.
    with op.get_bind().connection.driver_connection.cursor() as cursor:
        cursor.execute(PROCRASTINATE_SCHEMA.read_text())


def downgrade():
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                     JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%' LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || r.sig || ' CASCADE';
            END LOOP;
            FOR r IN SELECT tablename FROM pg_tables
                     WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate%' LOOP
                EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(r.tablename) || ' CASCADE';
            END LOOP;
            FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                     WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate%' AND t.typtype IN ('e', 'c') LOOP
                EXECUTE 'DROP TYPE IF EXISTS ' || quote_ident(r.typname) || ' CASCADE';
            END LOOP;
        END $$;
        """
    )
    op.drop_index("ix_messages_media_stored", table_name="messages")
    op.drop_index("ix_messages_media_pending", table_name="messages")
    op.drop_constraint(op.f("ck_messages_media_state"), "messages", type_="check")
    for column in (
        "media_error",
        "media_stored_at",
        "media_content_type",
        "media_size",
        "media_stored_sha256",
        "media_storage_key",
        "media_claimed_until",
        "media_attempts",
        "media_state",
    ):
        op.drop_column("messages", column)
