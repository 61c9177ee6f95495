"""inbound mail stored once per Message-ID and sender, with a count of repeats

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00

Mail stored before this revision keeps dedupe_key NULL: its repeats are still caught when
they are processed (same Message-ID: status duplicate), only no longer at intake.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mail_inbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dedupe_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('repeats', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index('ux_mail_inbox_dedupe_key', ['dedupe_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('mail_inbox', schema=None) as batch_op:
        batch_op.drop_index('ux_mail_inbox_dedupe_key')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('repeats')
        batch_op.drop_column('dedupe_key')
