"""names per organization: projects and deployments are unique per owning organization, not per hub

A hub-wide unique name answered 409 "already exists" for a name another organization used, while
a GET of it answered 404: the name revealed what exists. Projects are now unique on
(created_by_org, name) and deployments on (org_id, name), as datasets and models already were;
deployments keep an index on name for bare-name lookups. Existing rows already satisfy the new,
weaker constraints. It changes a registry table too, so it depends on the registry branch.

Revision ID: 0401_projects_names_per_org
Revises: 0400_projects
Create Date: 2026-12-04 10:00:00.000000
"""
from alembic import op

revision = '0401_projects_names_per_org'
down_revision = '0400_projects'
branch_labels = None
depends_on = ('0200_registry',)


def upgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_constraint('uq_projects_name', type_='unique')
        batch_op.create_unique_constraint('uq_projects_org_name', ['created_by_org', 'name'])
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_constraint('uq_deployments_name', type_='unique')
        batch_op.create_unique_constraint('uq_deployments_org_name', ['org_id', 'name'])
        batch_op.create_index('ix_deployments_name', ['name'], unique=False)


def downgrade() -> None:
    """Back to hub-wide names: fails (as it must) if two organizations now share a name."""
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index('ix_deployments_name')
        batch_op.drop_constraint('uq_deployments_org_name', type_='unique')
        batch_op.create_unique_constraint('uq_deployments_name', ['name'])
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_constraint('uq_projects_org_name', type_='unique')
        batch_op.create_unique_constraint('uq_projects_name', ['name'])
