"""contact profile: the team's name for a contact, notes and custom attributes

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02 01:10:00

`display_name` is the team's name for the contact (WhatsApp's `profile_name` stays apart and
is never overwritten by it); the list's search (`q`) covers it, so the trigram index on
contacts is rebuilt over display name, profile name and number.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OLD_SEARCH = "(coalesce(profile_name, '') || ' ' || coalesce(wa_id, ''))"
NEW_SEARCH = "(coalesce(display_name, '') || ' ' || coalesce(profile_name, '') || ' ' || coalesce(wa_id, ''))"


def upgrade():
    op.add_column("contacts", sa.Column("display_name", sa.Text(), nullable=True))
    op.add_column("contacts", sa.Column("notes", sa.Text(), nullable=True))
    op.add_column(
        "contacts",
        sa.Column(
            "attributes", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
    )
    op.create_check_constraint(op.f("ck_contacts_notes_length"), "contacts", "char_length(notes) <= 10000")
    op.create_check_constraint(op.f("ck_contacts_attributes_object"), "contacts", "jsonb_typeof(attributes) = 'object'")
    op.execute("DROP INDEX ix_contacts_search_trgm")
    op.execute(f"CREATE INDEX ix_contacts_search_trgm ON contacts USING gin ({NEW_SEARCH} gin_trgm_ops)")


def downgrade():
    op.execute("DROP INDEX ix_contacts_search_trgm")
    op.execute(f"CREATE INDEX ix_contacts_search_trgm ON contacts USING gin ({OLD_SEARCH} gin_trgm_ops)")
    op.drop_constraint(op.f("ck_contacts_attributes_object"), "contacts", type_="check")
    op.drop_constraint(op.f("ck_contacts_notes_length"), "contacts", type_="check")
    op.drop_column("contacts", "attributes")
    op.drop_column("contacts", "notes")
    op.drop_column("contacts", "display_name")
