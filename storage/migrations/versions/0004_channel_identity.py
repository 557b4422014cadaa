"""channel identity: a person's id on each messenger moves to its own table

Revision ID: 0004_channel_identity
Revises: 0003_delivery_retry
Create Date: 2026-12-07 00:10:00.000000

``user.telegram_id`` (a number) and ``user.zalo_id`` become rows of ``channelidentity``
(channel, external id as a string). The downgrade writes them back; an identity on any other
channel has no column to go back to and is dropped with the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004_channel_identity'
down_revision: str | None = '0003_delivery_retry'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Lightweight table shapes for the data steps (never the app's models: they change later).
_user = sa.table(
    'user',
    sa.column('id', sa.Integer()),
    sa.column('telegram_id', sa.BigInteger()),
    sa.column('zalo_id', sa.String(length=64)),
    sa.column('created_at', sa.DateTime(timezone=True)),
)
_identity = sa.table(
    'channelidentity',
    sa.column('user_id', sa.Integer()),
    sa.column('channel', sa.String(length=16)),
    sa.column('external_id', sa.String(length=64)),
    sa.column('created_at', sa.DateTime(timezone=True)),
)
_COPIED = (('telegram', 'telegram_id'), ('zalo', 'zalo_id'))


def upgrade() -> None:
    op.create_table('channelidentity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'external_id'),
    sa.UniqueConstraint('user_id', 'channel')
    )
    with op.batch_alter_table('channelidentity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channelidentity_user_id'), ['user_id'], unique=False)

    for channel, column in _COPIED:
        source = _user.c[column]
        op.execute(
            _identity.insert().from_select(
                ['user_id', 'channel', 'external_id', 'created_at'],
                sa.select(
                    _user.c.id,
                    sa.literal(channel, sa.String(length=16)),
                    sa.cast(source, sa.String(length=64)),
                    _user.c.created_at,
                ).where(source.is_not(None)),
            )
        )


def downgrade() -> None:
    for channel, column in _COPIED:
        value = sa.select(_identity.c.external_id).where(
            _identity.c.user_id == _user.c.id, _identity.c.channel == channel
        )
        target = _user.c[column]
        op.execute(
            _user.update()
            .where(target.is_(None), value.exists())
            .values({column: sa.cast(value.scalar_subquery(), target.type)})
        )
    with op.batch_alter_table('channelidentity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channelidentity_user_id'))

    op.drop_table('channelidentity')
