"""article_topic sentiment: an article's tone for each topic it matched

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('articletopic', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sentiment', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('sentiment_label', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('articletopic', schema=None) as batch_op:
        batch_op.drop_column('sentiment_label')
        batch_op.drop_column('sentiment')
