"""Initial schema: agents, tokens, business numbers, contacts, conversations, messages,
status events and raw webhook deliveries.

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 23:04:21.726016

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    # Trigram search on contact names and numbers (`q` on the conversation list).
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=16), server_default='agent', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'agent')", name=op.f('ck_agents_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents'))
    )
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.create_index('uq_agents_email_lower', [sa.literal_column("lower(email)")], unique=True)

    op.create_table('business_numbers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone_number_id', sa.Text(), nullable=False),
    sa.Column('display_phone_number', sa.Text(), nullable=True),
    sa.Column('waba_id', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_business_numbers')),
    sa.UniqueConstraint('phone_number_id', name=op.f('uq_business_numbers_phone_number_id'))
    )
    op.create_table('contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wa_id', sa.Text(), nullable=True),
    sa.Column('user_id', sa.Text(), nullable=True),
    sa.Column('profile_name', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('wa_id IS NOT NULL OR user_id IS NOT NULL', name=op.f('ck_contacts_has_identity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index('uq_contacts_user_id', ['user_id'], unique=True, postgresql_where=sa.text('user_id IS NOT NULL'))
        batch_op.create_index('uq_contacts_wa_id', ['wa_id'], unique=True, postgresql_where=sa.text('wa_id IS NOT NULL'))

    op.create_table('status_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('wamid', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recipient_id', sa.Text(), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error_title', sa.Text(), nullable=True),
    sa.Column('error_details', sa.Text(), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_events')),
    sa.UniqueConstraint('wamid', 'status', name=op.f('uq_status_events_wamid_status'))
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='1', nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('body_sha256', name=op.f('uq_webhook_deliveries_body_sha256'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_last_received_at', ['last_received_at'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_api_tokens_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_api_tokens_agent_id', ['agent_id'], unique=False)

    op.create_table('conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_number_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='open', nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('last_activity_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_message_id', sa.BigInteger(), nullable=True),
    sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_agent_message_id', sa.BigInteger(), nullable=True),
    sa.Column('last_customer_message_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unread_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('open', 'pending', 'resolved')", name=op.f('ck_conversations_status')),
    sa.CheckConstraint('unread_count >= 0', name=op.f('ck_conversations_unread_not_negative')),
    sa.ForeignKeyConstraint(['assignee_id'], ['agents.id'], name=op.f('fk_conversations_assignee_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['business_number_id'], ['business_numbers.id'], name=op.f('fk_conversations_business_number_id_business_numbers')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_conversations_contact_id_contacts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations')),
    sa.UniqueConstraint('business_number_id', 'contact_id', name=op.f('uq_conversations_business_number_id_contact_id'))
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_activity', [sa.literal_column('last_activity_at DESC'), sa.literal_column('id DESC')], unique=False)
        batch_op.create_index('ix_conversations_assignee_activity', ['assignee_id', sa.literal_column('last_activity_at DESC'), sa.literal_column('id DESC')], unique=False)
        batch_op.create_index('ix_conversations_contact_id', ['contact_id'], unique=False)
        batch_op.create_index('ix_conversations_status_activity', ['status', sa.literal_column('last_activity_at DESC'), sa.literal_column('id DESC')], unique=False)
        batch_op.create_index('ix_conversations_updated_at', ['updated_at'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('wamid', sa.Text(), nullable=True),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('sender', sa.String(length=16), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('media_id', sa.Text(), nullable=True),
    sa.Column('media_mime_type', sa.Text(), nullable=True),
    sa.Column('media_sha256', sa.Text(), nullable=True),
    sa.Column('media_filename', sa.Text(), nullable=True),
    sa.Column('latitude', sa.Double(), nullable=True),
    sa.Column('longitude', sa.Double(), nullable=True),
    sa.Column('location_name', sa.Text(), nullable=True),
    sa.Column('location_address', sa.Text(), nullable=True),
    sa.Column('reply_to_wamid', sa.Text(), nullable=True),
    sa.Column('forwarded', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('reaction_to_wamid', sa.Text(), nullable=True),
    sa.Column('reaction_emoji', sa.Text(), nullable=True),
    sa.Column('edited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('status_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error_title', sa.Text(), nullable=True),
    sa.Column('error_details', sa.Text(), nullable=True),
    sa.Column('is_read', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.CheckConstraint("direction IN ('in', 'out')", name=op.f('ck_messages_direction')),
    sa.CheckConstraint("sender IN ('customer', 'agent', 'system')", name=op.f('ck_messages_sender')),
    sa.CheckConstraint("status IS NULL OR status IN ('pending', 'sent', 'delivered', 'read', 'played', 'failed')", name=op.f('ck_messages_status')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_messages_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_messages_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('wamid', name=op.f('uq_messages_wamid'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_agent_id', ['agent_id'], unique=False, postgresql_where=sa.text('agent_id IS NOT NULL'))
        batch_op.create_index('ix_messages_conversation_sent', ['conversation_id', 'sent_at', 'id'], unique=False)
        batch_op.create_index('ix_messages_conversation_unread', ['conversation_id'], unique=False, postgresql_where=sa.text("direction = 'in' AND NOT is_read"))
        batch_op.create_index('ix_messages_reaction_target', ['reaction_to_wamid'], unique=False, postgresql_where=sa.text('reaction_to_wamid IS NOT NULL'))

    # conversations <-> messages reference each other: add these once both tables exist.
    op.create_foreign_key(
        op.f('fk_conversations_last_message_id_messages'), 'conversations', 'messages',
        ['last_message_id'], ['id'], ondelete='SET NULL',
    )
    op.create_foreign_key(
        op.f('fk_conversations_last_agent_message_id_messages'), 'conversations', 'messages',
        ['last_agent_message_id'], ['id'], ondelete='SET NULL',
    )
    op.execute(
        "CREATE INDEX ix_contacts_search_trgm ON contacts USING gin "
        "((coalesce(profile_name, '') || ' ' || coalesce(wa_id, '')) gin_trgm_ops)"
    )


def downgrade():
    op.drop_constraint(op.f('fk_conversations_last_message_id_messages'), 'conversations', type_='foreignkey')
    op.drop_constraint(op.f('fk_conversations_last_agent_message_id_messages'), 'conversations', type_='foreignkey')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_reaction_target', postgresql_where=sa.text('reaction_to_wamid IS NOT NULL'))
        batch_op.drop_index('ix_messages_conversation_unread', postgresql_where=sa.text("direction = 'in' AND NOT is_read"))
        batch_op.drop_index('ix_messages_conversation_sent')
        batch_op.drop_index('ix_messages_agent_id', postgresql_where=sa.text('agent_id IS NOT NULL'))

    op.drop_table('messages')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_updated_at')
        batch_op.drop_index('ix_conversations_status_activity')
        batch_op.drop_index('ix_conversations_contact_id')
        batch_op.drop_index('ix_conversations_assignee_activity')
        batch_op.drop_index('ix_conversations_activity')

    op.drop_table('conversations')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_api_tokens_agent_id')

    op.drop_table('api_tokens')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_last_received_at')

    op.drop_table('webhook_deliveries')
    op.drop_table('status_events')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('uq_contacts_wa_id', postgresql_where=sa.text('wa_id IS NOT NULL'))
        batch_op.drop_index('uq_contacts_user_id', postgresql_where=sa.text('user_id IS NOT NULL'))
        batch_op.drop_index('ix_contacts_search_trgm')

    op.drop_table('contacts')
    op.drop_table('business_numbers')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index('uq_agents_email_lower')

    op.drop_table('agents')
