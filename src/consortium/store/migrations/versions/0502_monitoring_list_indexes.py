"""monitoring: the prediction log's list key (a deployment's predictions newest first)

(deployment_id, created_at, id) replaces (deployment_id, created_at): the same ranges by time,
and a unique key for the paginated log (consortium.store.paging).

Revision ID: 0502_monitoring_list_indexes
Revises: 0501_monitoring_sampled
Create Date: 2026-12-02 19:00:00.000000
"""
from alembic import op

from consortium.store.paging import swap_indexes

revision = '0502_monitoring_list_indexes'
down_revision = '0501_monitoring_sampled'
branch_labels = None
depends_on = None

# (table, new index, its columns, the index it replaces)
LIST_INDEXES = [
    ('prediction_log', 'ix_prediction_log_dep_created_id', ['deployment_id', 'created_at', 'id'],
     ('ix_prediction_log_dep_created', ['deployment_id', 'created_at'])),
]


def upgrade() -> None:
    swap_indexes(op, LIST_INDEXES)


def downgrade() -> None:
    swap_indexes(op, LIST_INDEXES, downgrade=True)
