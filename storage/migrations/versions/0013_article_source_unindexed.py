"""article.source_id without its index: no query looks articles up by source

Revision ID: 0013_article_source_unindexed
Revises: 0012_room_identity
Create Date: 2026-12-07 20:00:00.000000

Every stored article paid one more B-tree insertion for ``ix_article_source_id`` (about 0.3 % of
a scan batch's instructions), and no statement reads it: articles are found by canonical URL,
fingerprint, story and publication time, and a source is deactivated, never deleted, so the
foreign key's check on a parent delete does not run either. The column and its foreign key stay.
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0013_article_source_unindexed'
down_revision: str | None = '0012_room_identity'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('article', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_article_source_id'))


def downgrade() -> None:
    with op.batch_alter_table('article', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_article_source_id'), ['source_id'], unique=False)
