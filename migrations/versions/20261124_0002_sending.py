"""sending: attempts, idempotency keys, templates, canned responses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 23:15:14.261728

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('message_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.Text(), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('language', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('category', sa.Text(), nullable=True),
    sa.Column('components', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('placeholders', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates')),
    sa.UniqueConstraint('name', 'language', name=op.f('uq_message_templates_name_language'))
    )
    op.create_table('canned_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('short_code', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['agents.id'], name=op.f('fk_canned_responses_created_by_id_agents'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_canned_responses'))
    )
    with op.batch_alter_table('canned_responses', schema=None) as batch_op:
        batch_op.create_index('uq_canned_responses_short_code_lower', [sa.literal_column('lower(short_code)')], unique=True)

    op.create_table('idempotency_keys',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_idempotency_keys_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_idempotency_keys_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('agent_id', 'key', name=op.f('uq_idempotency_keys_agent_id_key'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_created_at', ['created_at'], unique=False)

    op.create_table('send_attempts',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('wamid', sa.Text(), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error_title', sa.Text(), nullable=True),
    sa.Column('error_details', sa.Text(), nullable=True),
    sa.Column('fbtrace_id', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_send_attempts_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_send_attempts_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_send_attempts'))
    )
    with op.batch_alter_table('send_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_send_attempts_message_id', ['message_id'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template_name', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('template_language', sa.Text(), nullable=True))

    # A message is 'accepted' once Graph gives it a wamid, before Meta's first tick.
    op.drop_constraint(op.f('ck_messages_status'), 'messages', type_='check')
    op.create_check_constraint(
        op.f('ck_messages_status'), 'messages',
        "status IS NULL OR status IN ('pending', 'accepted', 'sent', 'delivered', 'read', 'played', 'failed')",
    )


def downgrade():
    op.drop_constraint(op.f('ck_messages_status'), 'messages', type_='check')
    op.create_check_constraint(
        op.f('ck_messages_status'), 'messages',
        "status IS NULL OR status IN ('pending', 'sent', 'delivered', 'read', 'played', 'failed')",
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('template_language')
        batch_op.drop_column('template_name')

    with op.batch_alter_table('send_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_send_attempts_message_id')

    op.drop_table('send_attempts')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_created_at')

    op.drop_table('idempotency_keys')
    with op.batch_alter_table('canned_responses', schema=None) as batch_op:
        batch_op.drop_index('uq_canned_responses_short_code_lower')

    op.drop_table('canned_responses')
    op.drop_table('message_templates')
