"""monitoring: prediction_log.sampled (false: kept only so that a long answer can get feedback)

Revision ID: 0501_monitoring_sampled
Revises: 0500_monitoring
Create Date: 2026-11-25 07:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0501_monitoring_sampled'
down_revision = '0500_monitoring'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('prediction_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sampled', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('prediction_log', schema=None) as batch_op:
        batch_op.drop_column('sampled')
