"""two-way tickets: the providers' inbound switch and callback key, the inbound queue, the
provider tickets linked to tasks

Revision ID: 0009_twoway
Revises: 0008
Create Date: 2026-12-10 09:00:00

New tables only; every existing provider gets its inbound row: off, with a callback key.
"""

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0009_twoway'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provider_inbound',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('callback_key', sa.String(length=64), nullable=False),
    sa.Column('poll_cursor', sa.DateTime(timezone=True), nullable=True),
    sa.Column('own_member', sa.String(length=100), nullable=True),
    sa.Column('callback_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id'),
    sa.UniqueConstraint('callback_key')
    )
    op.create_table('inbound_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('ticket_ref', sa.String(length=100), nullable=False),
    sa.Column('change_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_id', 'ticket_ref', 'change_key', name='uq_inbound_item')
    )
    op.create_index('ix_inbound_items_status', 'inbound_items', ['status', 'provider_id', 'id'],
                    unique=False)
    op.create_table('provider_tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('linked', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=120), nullable=True),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('last_note_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_id', 'external_id', name='uq_provider_ticket')
    )
    op.create_index(op.f('ix_provider_tickets_task_id'), 'provider_tickets', ['task_id'],
                    unique=False)
    _inbound_rows_for_existing_providers()


def _inbound_rows_for_existing_providers() -> None:
    bind = op.get_bind()
    providers = sa.table('providers', sa.column('id', sa.Integer))
    inbound = sa.table('provider_inbound', sa.column('provider_id', sa.Integer),
                       sa.column('enabled', sa.Boolean), sa.column('callback_key', sa.String),
                       sa.column('updated_at', sa.DateTime(timezone=True)))
    now = datetime.now(UTC)
    for (provider_id,) in bind.execute(sa.select(providers.c.id)):
        bind.execute(inbound.insert().values(provider_id=provider_id, enabled=False,
                                             callback_key=secrets.token_urlsafe(32),
                                             updated_at=now))


def downgrade() -> None:
    op.drop_index(op.f('ix_provider_tickets_task_id'), table_name='provider_tickets')
    op.drop_table('provider_tickets')
    op.drop_index('ix_inbound_items_status', table_name='inbound_items')
    op.drop_table('inbound_items')
    op.drop_table('provider_inbound')
