"""sendslot.worker: which worker booked a slot

Revision ID: 0014_sendslot_worker
Revises: 0013_article_source_unindexed
Create Date: 2026-12-08 01:15:00.000000

A worker told whether others are sending by comparing the slots booked in the second before its
own with the slots it remembered booking. Its bookings run in several threads at once, and a
slot committed by one of them but not yet seen by the event loop counted as another worker's:
one process alone on PostgreSQL took itself for crowded in a fifth of its bookings under load
(and left slots free and held its fan-out back for nobody). Each slot now says who booked it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0014_sendslot_worker'
down_revision: str | None = '0013_article_source_unindexed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sendslot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('worker', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sendslot', schema=None) as batch_op:
        batch_op.drop_column('worker')
