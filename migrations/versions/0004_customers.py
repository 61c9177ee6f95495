"""customers and assets; provider sites and devices; tickets.customer becomes customer_id

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:00:00

Existing data: one customer per distinct (trimmed) customer string of the tickets, and each
ticket linked to its customer. A ticket without a customer belongs to our own business
(created by `liaison init-db`, not here: its name is a setting).
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

tickets = sa.table('tickets', sa.column('id', sa.Integer), sa.column('customer', sa.String),
                   sa.column('customer_id', sa.Integer))
customers = sa.table('customers', sa.column('id', sa.Integer), sa.column('name', sa.String),
                     sa.column('own', sa.Boolean), sa.column('notes', sa.Text),
                     sa.column('created_at', sa.DateTime(timezone=True)))


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a column with its REFERENCES clause in place (Alembic would want batch
        # mode, which recreates `tickets`: a table that `tasks` references).
        op.execute('ALTER TABLE tickets ADD COLUMN customer_id INTEGER REFERENCES customers (id)')
    else:
        op.add_column('tickets', sa.Column('customer_id', sa.Integer(),
                                           sa.ForeignKey('customers.id'), nullable=True))
    op.create_index(op.f('ix_tickets_customer_id'), 'tickets', ['customer_id'], unique=False)
    _link_existing_tickets()
    op.drop_column('tickets', 'customer')


def _create_tables() -> None:
    op.create_table('customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('own', sa.Boolean(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_index('uq_customers_own', 'customers', ['own'], unique=True,
                    sqlite_where=sa.text('own'), postgresql_where=sa.text('own'))
    op.create_table('assets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('serial', sa.String(length=200), nullable=True),
    sa.Column('manufacturer', sa.String(length=200), nullable=True),
    sa.Column('type', sa.String(length=100), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_assets_customer_id'), 'assets', ['customer_id'], unique=False)
    op.create_table('provider_sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_id', 'external_id', name='uq_provider_site')
    )
    op.create_index(op.f('ix_provider_sites_customer_id'), 'provider_sites', ['customer_id'],
                    unique=False)
    op.create_table('provider_devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('serial', sa.String(length=200), nullable=True),
    sa.Column('manufacturer', sa.String(length=200), nullable=True),
    sa.Column('type', sa.String(length=100), nullable=True),
    sa.Column('site_external_id', sa.String(length=100), nullable=True),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_id', 'external_id', name='uq_provider_device')
    )
    op.create_index(op.f('ix_provider_devices_asset_id'), 'provider_devices', ['asset_id'],
                    unique=False)


def _link_existing_tickets() -> None:
    connection = op.get_bind()
    raw_names = [name for name in connection.scalars(sa.select(tickets.c.customer).distinct())
                 if name and name.strip()]
    names = sorted({name.strip() for name in raw_names})
    if not names:
        return
    now = datetime.now(UTC)
    connection.execute(sa.insert(customers), [
        {'name': name, 'own': False, 'notes': '', 'created_at': now} for name in names])
    ids = dict(connection.execute(sa.select(customers.c.name, customers.c.id)).all())
    for raw in raw_names:
        connection.execute(sa.update(tickets).where(tickets.c.customer == raw)
                           .values(customer_id=ids[raw.strip()]))


def downgrade() -> None:
    op.add_column('tickets', sa.Column('customer', sa.String(length=200), nullable=True))
    names = (sa.select(customers.c.name).where(customers.c.id == tickets.c.customer_id)
             .scalar_subquery())
    op.execute(sa.update(tickets).values(customer=names))
    op.drop_index(op.f('ix_tickets_customer_id'), table_name='tickets')
    op.drop_column('tickets', 'customer_id')  # SQLite >= 3.35 drops a column-level REFERENCES
    op.drop_index(op.f('ix_provider_devices_asset_id'), table_name='provider_devices')
    op.drop_table('provider_devices')
    op.drop_index(op.f('ix_provider_sites_customer_id'), table_name='provider_sites')
    op.drop_table('provider_sites')
    op.drop_index(op.f('ix_assets_customer_id'), table_name='assets')
    op.drop_table('assets')
    op.drop_index('uq_customers_own', table_name='customers')
    op.drop_table('customers')

