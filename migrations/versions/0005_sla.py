"""provider SLAs: targets per provider and priority, breaches found by the worker

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sla_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_id', 'metric', 'priority', name='uq_sla_target')
    )
    op.create_index(op.f('ix_sla_targets_provider_id'), 'sla_targets', ['provider_id'], unique=False)
    op.create_table('sla_breaches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('target_minutes', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('overdue_seconds', sa.Integer(), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_id', 'provider_id', 'metric', name='uq_sla_breach_once')
    )
    op.create_index(op.f('ix_sla_breaches_detected_at'), 'sla_breaches', ['detected_at'], unique=False)
    op.create_index(op.f('ix_sla_breaches_provider_id'), 'sla_breaches', ['provider_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sla_breaches_provider_id'), table_name='sla_breaches')
    op.drop_index(op.f('ix_sla_breaches_detected_at'), table_name='sla_breaches')
    op.drop_table('sla_breaches')
    op.drop_index(op.f('ix_sla_targets_provider_id'), table_name='sla_targets')
    op.drop_table('sla_targets')
