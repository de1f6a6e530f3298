"""data: datasets.last_version (the highest version number ever given, so a deleted version's
number is never reused)

Revision ID: 0101_data_last_version
Revises: 0100_data
Create Date: 2026-11-25 07:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0101_data_last_version'
down_revision = '0100_data'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_version', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE datasets SET last_version = (SELECT COALESCE(MAX(v.version), 0) "
               "FROM dataset_versions v WHERE v.dataset_id = datasets.id)")


def downgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_column('last_version')
