"""e-mail channel: inbound mail, automated e-mail rules, IMAP positions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mail_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('account', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mail_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_rules_position'), ['position'], unique=False)

    op.create_table('mail_inbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('envelope_from', sa.String(length=300), nullable=True),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('sender', sa.String(length=300), nullable=True),
    sa.Column('subject', sa.String(length=500), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['rule_id'], ['mail_rules.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mail_inbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_inbox_message_id'), ['message_id'], unique=False)
        batch_op.create_index('ix_mail_inbox_sender', ['sender', 'received_at'], unique=False)
        batch_op.create_index('ix_mail_inbox_status', ['status', 'id'], unique=False)

    op.create_table('mail_imap_state',
    sa.Column('mailbox', sa.String(length=500), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('mailbox')
    )


def downgrade() -> None:
    op.drop_table('mail_imap_state')
    with op.batch_alter_table('mail_inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_inbox_status')
        batch_op.drop_index('ix_mail_inbox_sender')
        batch_op.drop_index(batch_op.f('ix_mail_inbox_message_id'))

    op.drop_table('mail_inbox')
    with op.batch_alter_table('mail_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_rules_position'))

    op.drop_table('mail_rules')
