"""jobs: job_executors, what a Ray dispatcher last reported about its cluster (CPUs, nodes)

The submission checks read the cluster's size from here (a train.workers or tune.parallel above
it is a 422 naming the CPUs) instead of calling the cluster per request.

Revision ID: 0302_jobs_executors
Revises: 0301_jobs_resolved
Create Date: 2026-12-02 18:45:00.000000
"""
import sqlalchemy as sa
from alembic import op

import consortium.store.tables.base

revision = '0302_jobs_executors'
down_revision = '0301_jobs_resolved'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_executors',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('cpus', sa.Integer(), nullable=False),
    sa.Column('nodes', sa.Integer(), nullable=False),
    sa.Column('resources', sa.JSON(), nullable=False),
    sa.Column('seen_at', consortium.store.tables.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_executors'))
    )


def downgrade() -> None:
    op.drop_table('job_executors')
