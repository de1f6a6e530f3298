"""throttle: login and invitation throttles, creation rate limits

One counter per policy and subject (``login-account:<email hash>``, ``login-address:<ip>``,
``accept-address:<ip>``, ``org-create:<user id>``), in the database so that every hub replica
shares them (security issue 15, findings 6 and 14e).

Revision ID: 0010_throttle
Revises: 0001_foundation
Create Date: 2026-12-02 14:00:40.675094
"""
import sqlalchemy as sa
from alembic import op

import consortium.store.tables.base

revision = '0010_throttle'
down_revision = '0001_foundation'
branch_labels = ('throttle',)
depends_on = None


def upgrade() -> None:
    op.create_table('throttles',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_at', consortium.store.tables.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', consortium.store.tables.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('blocked_until', consortium.store.tables.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_throttles'))
    )
    with op.batch_alter_table('throttles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_throttles_last_at'), ['last_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('throttles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_throttles_last_at'))

    op.drop_table('throttles')
