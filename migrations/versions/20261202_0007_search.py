"""search: full-text search over what was said (texts, captions, document file names, notes)

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-02 01:10:00

A text search configuration `es_unaccent`: PostgreSQL's `spanish` with `unaccent` before the
Spanish snowball stemmer, so "cancion" finds "canción" and "factura" finds "facturas". A stored
generated column `messages.search_vector` (the text or caption and the document's file name as
a `tsvector`) with a GIN index. Chosen over a GIN index on the expression after measuring both
at 1 M messages (bench/RESULTS.md, "Message search"): a search reads the stored vectors instead
of running the Spanish stemmer again on every message it filters (a common word: 4 ms of SQL
against 45 ms), and the planner gets real statistics of the column to tell a rare word from a
common one; an INSERT costs about 0.06 ms more. The price is the migration: adding the column
rewrites the table under an exclusive lock, 14 s for the column and the index at a million
messages on 2 cores (the webhook waits or answers 503 meanwhile, and Meta delivers again), and
~40 % more heap. `unaccent` is a trusted extension (PostgreSQL 13+): the database owner may
create it, also on Render.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# As app.models.messages.SEARCH_VECTOR_SQL (a migration does not import the app's models).
SEARCH_VECTOR = (
    "to_tsvector('es_unaccent'::regconfig, coalesce(text, '') || ' ' || "
    "translate(coalesce(media_filename, ''), '._-', '   '))"
)


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE TEXT SEARCH CONFIGURATION es_unaccent (COPY = pg_catalog.spanish)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION es_unaccent "
        "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, spanish_stem"
    )
    # The long part on a big table: one rewrite of `messages` that computes every vector.
    op.execute(f"ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({SEARCH_VECTOR}) STORED")
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.execute("CREATE INDEX ix_messages_search ON messages USING gin (search_vector)")


def downgrade():
    op.execute("DROP INDEX IF EXISTS ix_messages_search")
    op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_vector")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS es_unaccent")
    # unaccent stays: dropping an extension another part of the database may use is not ours to do.
