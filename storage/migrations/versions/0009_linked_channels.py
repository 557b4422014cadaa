"""linked channels: one person on two messengers, and where their alerts go

Revision ID: 0009_linked_channels
Revises: 0008_phone_typed
Create Date: 2026-12-07 03:10:00.000000

``linkcode`` holds the one-time codes that attach a second messenger account to a person (their
SHA-256 only); ``user.alert_channel`` is the one channel a person chose for alerts (NULL: every
channel they have). An alert owed on a person's second channel is a ledger part of its own
(``text:warning@zalo``), so ``delivery.part`` grows from 16 to 40 characters.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009_linked_channels'
down_revision: str | None = '0008_phone_typed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('linkcode',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    with op.batch_alter_table('linkcode', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_linkcode_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_channel', sa.String(length=16), nullable=True))
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.alter_column(
            'part', existing_type=sa.String(length=16), type_=sa.String(length=40)
        )


def downgrade() -> None:
    # Rows owed on a second channel have no place in 16 characters: they go with the column.
    op.execute(sa.text("DELETE FROM delivery WHERE part LIKE '%@%'"))
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.alter_column(
            'part', existing_type=sa.String(length=40), type_=sa.String(length=16)
        )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('alert_channel')
    with op.batch_alter_table('linkcode', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_linkcode_user_id'))
    op.drop_table('linkcode')
