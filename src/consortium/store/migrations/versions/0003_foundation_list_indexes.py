"""foundation: the paginated lists' keys (tokens, invitations, grants, audit events)

Every list of the API pages by key (consortium.store.paging): WHERE filter AND key > last key
ORDER BY key LIMIT n. Each index here is the list's filter column followed by its key, so a page
is one index range from the last key, whatever the page's depth. Each replaces the single-column
index on the same leading column (a lookup by that column alone uses the new one), so writes
keep the same number of indexes. To add a list's index later: add it to LIST_INDEXES (and, for
another stage's table, to that stage's list-indexes migration).

Revision ID: 0003_foundation_list_indexes
Revises: 0002_foundation_audit_keyed
Create Date: 2026-12-02 19:00:00.000000
"""
from alembic import op

from consortium.store.paging import swap_indexes

revision = '0003_foundation_list_indexes'
down_revision = '0002_foundation_audit_keyed'
branch_labels = None
depends_on = None

# (table, new index, its columns, the single-column index it replaces)
LIST_INDEXES = [
    ('api_tokens', 'ix_api_tokens_org_created', ['org_id', 'created_at', 'id'], ('ix_api_tokens_org_id', ['org_id'])),
    ('invitations', 'ix_invitations_org_created', ['org_id', 'created_at', 'id'],
     ('ix_invitations_org_id', ['org_id'])),
    ('grants', 'ix_grants_owner_created', ['owner_org_id', 'created_at', 'id'],
     ('ix_grants_owner_org_id', ['owner_org_id'])),
    ('grants', 'ix_grants_grantee_created', ['grantee_org_id', 'created_at', 'id'],
     ('ix_grants_grantee_org_id', ['grantee_org_id'])),
    ('grants', 'ix_grants_project_created', ['grantee_project_id', 'created_at', 'id'],
     ('ix_grants_grantee_project_id', ['grantee_project_id'])),
    ('audit_events', 'ix_audit_events_actor_seq', ['actor_org_id', 'seq'],
     ('ix_audit_events_actor_org_id', ['actor_org_id'])),
    ('audit_events', 'ix_audit_events_resource_seq', ['resource_org_id', 'seq'],
     ('ix_audit_events_resource_org_id', ['resource_org_id'])),
    ('audit_events', 'ix_audit_events_project_seq', ['project_id', 'seq'],
     ('ix_audit_events_project_id', ['project_id'])),
]


def upgrade() -> None:
    swap_indexes(op, LIST_INDEXES)


def downgrade() -> None:
    swap_indexes(op, LIST_INDEXES, downgrade=True)
