"""agents.session_generation: ending every session of an agent

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # Existing rows get 0; session cookies issued before this carry no generation and end.
    op.add_column('agents', sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    op.drop_column('agents', 'session_generation')
