"""control: the control-plane revision (one row), bumped with every revocation and access change

Each hub replica caches principals and grants and re-reads this row at most every 0.5 s; when it
moved, the replica drops its caches, so a token, session or grant revoked on one replica is
refused by every other within a second (``consortium.governance.control_cache``).

Revision ID: 0020_control
Revises: 0001_foundation
Create Date: 2026-12-02 19:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0020_control'
down_revision = '0001_foundation'
branch_labels = ('control',)
depends_on = None


def upgrade() -> None:
    table = op.create_table('control_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_control_revision'))
    )
    op.bulk_insert(table, [{'id': 1, 'revision': 0}])


def downgrade() -> None:
    op.drop_table('control_revision')
