"""scheduled jobs of the workers (polling, nightly runs, housekeeping)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 14:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scheduled_jobs',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_by', sa.String(length=80), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('last_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_result', sa.JSON(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_index(op.f('ix_scheduled_jobs_due_at'), 'scheduled_jobs', ['due_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_scheduled_jobs_due_at'), table_name='scheduled_jobs')
    op.drop_table('scheduled_jobs')
