"""protection: dataset withdrawals, the model versions they mark, retention rules (issue 19)

Revision ID: 0710_protection
Revises: 0001_foundation
Create Date: 2026-12-03 07:05:00
"""
import sqlalchemy as sa
from alembic import op

import consortium.store.tables.base

revision = '0710_protection'
down_revision = '0001_foundation'
branch_labels = ('protection',)
depends_on = ['0100_data', '0200_registry']

T = consortium.store.tables.base.UTCDateTime


def upgrade() -> None:
    op.create_table('dataset_withdrawals',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('org_id', sa.String(length=32), nullable=False),
    sa.Column('dataset_id', sa.String(length=32), nullable=False),
    sa.Column('dataset', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('checksum', sa.String(length=71), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('row_count', sa.BigInteger(), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('effects', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', T(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_dataset_withdrawals_created_by_users')),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_dataset_withdrawals_org_id_organizations'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_withdrawals')))
    op.create_index('ix_dataset_withdrawals_org_created', 'dataset_withdrawals', ['org_id', 'created_at', 'id'])
    op.create_index('ix_dataset_withdrawals_dataset', 'dataset_withdrawals', ['dataset_id'])
    op.create_table('withdrawn_model_versions',
    sa.Column('version_id', sa.String(length=32), nullable=False),
    sa.Column('withdrawal_id', sa.String(length=32), nullable=False),
    sa.Column('model_id', sa.String(length=32), nullable=False),
    sa.Column('owner_org_id', sa.String(length=32), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('via', sa.String(length=200), nullable=False),
    sa.Column('created_at', T(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['withdrawal_id'], ['dataset_withdrawals.id'],
                            name=op.f('fk_withdrawn_model_versions_withdrawal_id_dataset_withdrawals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('version_id', 'withdrawal_id', name=op.f('pk_withdrawn_model_versions')))
    op.create_index(op.f('ix_withdrawn_model_versions_owner_org_id'), 'withdrawn_model_versions', ['owner_org_id'])
    op.create_table('retention_rules',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('org_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('target_id', sa.String(length=32), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('set_by', sa.String(length=32), nullable=True),
    sa.Column('updated_at', T(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_retention_rules_org_id_organizations'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['set_by'], ['users.id'], name=op.f('fk_retention_rules_set_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_rules')),
    sa.UniqueConstraint('org_id', 'kind', 'target_id', name='uq_retention_rules_org_kind_target'))
    op.create_index(op.f('ix_retention_rules_org_id'), 'retention_rules', ['org_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_retention_rules_org_id'), table_name='retention_rules')
    op.drop_table('retention_rules')
    op.drop_index(op.f('ix_withdrawn_model_versions_owner_org_id'), table_name='withdrawn_model_versions')
    op.drop_table('withdrawn_model_versions')
    op.drop_index('ix_dataset_withdrawals_dataset', table_name='dataset_withdrawals')
    op.drop_index('ix_dataset_withdrawals_org_created', table_name='dataset_withdrawals')
    op.drop_table('dataset_withdrawals')
