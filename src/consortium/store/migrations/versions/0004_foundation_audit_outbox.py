"""foundation: the audit outbox, where an API change's events wait (milliseconds) for the chain

A change commits its events here with itself, without taking the chain's head row; the audit group
commit moves them onto the chain, many requests' at once (consortium.governance.audit).

Revision ID: 0004_foundation_audit_outbox
Revises: 0003_foundation_list_indexes
Create Date: 2026-12-06 21:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

import consortium.store.tables.base

revision = '0004_foundation_audit_outbox'
down_revision = '0003_foundation_list_indexes'
branch_labels = None
depends_on = None

T = consortium.store.tables.base.UTCDateTime


def upgrade() -> None:
    op.create_table('audit_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('time', T(timezone=True), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('actor_user_id', sa.String(length=32), nullable=True),
    sa.Column('actor_org_id', sa.String(length=32), nullable=True),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('resource_type', sa.String(length=32), nullable=True),
    sa.Column('resource_id', sa.String(length=128), nullable=True),
    sa.Column('resource_org_id', sa.String(length=32), nullable=True),
    sa.Column('project_id', sa.String(length=32), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_outbox')))


def downgrade() -> None:
    op.drop_table('audit_outbox')
