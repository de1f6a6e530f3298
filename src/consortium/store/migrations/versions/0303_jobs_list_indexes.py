"""jobs: the paginated lists' keys (an organization's jobs newest first, a job's events)

As 0003_foundation_list_indexes: the list's filter column followed by its key, replacing the
single-column index on the same leading column.

Revision ID: 0303_jobs_list_indexes
Revises: 0302_jobs_executors
Create Date: 2026-12-02 19:00:00.000000
"""
from alembic import op

from consortium.store.paging import swap_indexes

revision = '0303_jobs_list_indexes'
down_revision = '0302_jobs_executors'
branch_labels = None
depends_on = None

# (table, new index, its columns, the single-column index it replaces)
LIST_INDEXES = [
    ('jobs', 'ix_jobs_org_created', ['org_id', 'created_at', 'id'], ('ix_jobs_org_id', ['org_id'])),
    ('job_events', 'ix_job_events_job_id_id', ['job_id', 'id'], ('ix_job_events_job_id', ['job_id'])),
]


def upgrade() -> None:
    swap_indexes(op, LIST_INDEXES)


def downgrade() -> None:
    swap_indexes(op, LIST_INDEXES, downgrade=True)
