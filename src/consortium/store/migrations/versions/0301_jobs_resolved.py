"""jobs: jobs.resolved holds what the submission checks resolved, beside the recipe

Until now the checks' findings (dataset ids, versions and owners; the planned privacy spend) rode
inside the stored recipe under a private "_resolved" key that every reader had to strip. The
recipe column now holds the validated recipe only, which the worker loads as it is. Existing rows
move their "_resolved" into the new column.

Revision ID: 0301_jobs_resolved
Revises: 0300_jobs
Create Date: 2026-12-02 15:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0301_jobs_resolved'
down_revision = '0300_jobs'
branch_labels = None
depends_on = None

jobs = sa.table('jobs', sa.column('id', sa.String), sa.column('recipe', sa.JSON), sa.column('resolved', sa.JSON))


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolved', sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
    conn = op.get_bind()
    for job_id, recipe in conn.execute(sa.select(jobs.c.id, jobs.c.recipe)).all():
        if isinstance(recipe, dict) and "_resolved" in recipe:
            rest = {k: v for k, v in recipe.items() if k != "_resolved"}
            conn.execute(jobs.update().where(jobs.c.id == job_id)
                         .values(recipe=rest, resolved=recipe["_resolved"] or {}))


def downgrade() -> None:
    conn = op.get_bind()
    for job_id, recipe, resolved in conn.execute(sa.select(jobs.c.id, jobs.c.recipe, jobs.c.resolved)).all():
        if resolved:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(recipe={**recipe, "_resolved": resolved}))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('resolved')
