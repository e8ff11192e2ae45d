"""search: full-text search over what was said (texts, captions, document file names, notes)

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-02 01:10:00

A text search configuration `es_unaccent`: PostgreSQL's `spanish` with `unaccent` before the
Spanish snowball stemmer, so "cancion" finds "canción" and "factura" finds "facturas". One
GIN expression index over `search_document` (app/models/messages.py): an index, not a stored
column, so the migration adds no column and rewrites no row of `messages` (only the index is
built: about 20 s per million messages on 2 cores, see bench/RESULTS.md), and ingest writes
no second copy of each text. `unaccent` and `pg_trgm` are trusted extensions (PostgreSQL 13+):
the database owner may create them, also on Render.
"""

from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None

# Must stay the expression of app.models.messages.search_document() (the index is used only
# when a query spells it the same way); tests/test_search.py checks they agree.
SEARCH_DOCUMENT = (
    "to_tsvector('es_unaccent'::regconfig, coalesce(messages.text, '') || ' ' || "
    "translate(coalesce(messages.media_filename, ''), '._-', '   '))"
)


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE TEXT SEARCH CONFIGURATION es_unaccent (COPY = pg_catalog.spanish)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION es_unaccent "
        "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, spanish_stem"
    )
    # Building the index is the long part on a big table: give it memory for this transaction.
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    # Not partial: PostgreSQL keeps statistics of an index expression only for a whole-table
    # index, and the planner needs them to tell a rare word from a common one.
    op.execute(f"CREATE INDEX ix_messages_search ON messages USING gin ({SEARCH_DOCUMENT})")


def downgrade():
    op.execute("DROP INDEX IF EXISTS ix_messages_search")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS es_unaccent")
    # unaccent stays: dropping an extension another part of the database may use is not ours to do.
