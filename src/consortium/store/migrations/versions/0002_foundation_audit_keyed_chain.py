"""foundation: the keyed audit chain (audit_head.keyed_from, sealed_at, key_id, seal)

Events already in the chain stay as they are (plain SHA-256 links); at its first start after this
migration the hub seals them with one MAC under the audit key and keys every later event
(``consortium.governance.audit.AuditChain.ensure_head``).

Revision ID: 0002_foundation_audit_keyed
Revises: 0001_foundation
Create Date: 2026-12-02 14:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import consortium.store.tables.base

revision = '0002_foundation_audit_keyed'
down_revision = '0001_foundation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keyed_from', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.add_column(sa.Column('sealed_at', consortium.store.tables.base.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('seal', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('seal')
        batch_op.drop_column('key_id')
        batch_op.drop_column('sealed_at')
        batch_op.drop_column('keyed_from')
