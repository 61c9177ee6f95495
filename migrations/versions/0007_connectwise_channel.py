"""ConnectWise channel: connections (private key sealed), settings and per-customer overrides, mappings, look-ups, agreement-sync runs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:11:00.528377
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('psa_connections',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('company_id', sa.String(length=120), nullable=False),
    sa.Column('public_key', sa.String(length=200), nullable=False),
    sa.Column('private_key_sealed', sa.Text(), nullable=False),
    sa.Column('client_id', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id')
    )
    op.create_table('psa_lookups',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', 'kind', 'scope')
    )
    op.create_table('psa_mappings',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ours', sa.String(length=120), nullable=False),
    sa.Column('theirs', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', 'kind', 'ours')
    )
    op.create_table('psa_customer_settings',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', 'customer_id')
    )
    op.create_table('psa_settings',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id')
    )
    op.create_table('psa_sync_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('psa_sync_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_psa_sync_runs_provider_id'), ['provider_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('psa_sync_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_psa_sync_runs_provider_id'))

    op.drop_table('psa_sync_runs')
    op.drop_table('psa_settings')
    op.drop_table('psa_customer_settings')
    op.drop_table('psa_mappings')
    op.drop_table('psa_lookups')
    op.drop_table('psa_connections')
