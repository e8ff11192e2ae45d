"""inbox version: a sequence bumped after every commit that changes what the inbox shows

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 07:00:00

The inbox's polls answer 304 while `last_value` of this sequence (and the rest of the fragment's
key: the agent, the query, the locale, the minute) is what the browser last saw; app/cache.py
bumps it with nextval once a writing transaction has committed. A sequence is outside
transactions, so bumping it takes no lock and never waits on another writer.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE SEQUENCE inbox_version")


def downgrade():
    op.execute("DROP SEQUENCE inbox_version")
