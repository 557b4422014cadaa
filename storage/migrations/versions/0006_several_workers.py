"""several workers: update ids taken by a worker, and the shared send budget

Revision ID: 0006_several_workers
Revises: 0005_delivery_claim
Create Date: 2026-12-07 00:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006_several_workers'
down_revision: str | None = '0005_delivery_claim'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'receivedupdate',
        sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('update_id'),
    )
    with op.batch_alter_table('receivedupdate', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_receivedupdate_received_at'), ['received_at'], unique=False
        )
    op.create_table(
        'sendslot',
        sa.Column('slot', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('chat_id', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('slot'),
    )
    with op.batch_alter_table('sendslot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sendslot_chat_id'), ['chat_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sendslot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sendslot_chat_id'))
    op.drop_table('sendslot')
    with op.batch_alter_table('receivedupdate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receivedupdate_received_at'))
    op.drop_table('receivedupdate')
