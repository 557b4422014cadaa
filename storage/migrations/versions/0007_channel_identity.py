"""channel identity: a person's id on each messenger moves to its own table

Revision ID: 0007_channel_identity
Revises: 0006_several_workers
Create Date: 2026-12-07 00:10:00.000000

``user.telegram_id`` (a number) and ``user.zalo_id`` become rows of ``channelidentity``
(channel, external id as a string) and the two columns go. The downgrade brings the columns
back and fills them from the identities; an identity on any other channel has no column to go
back to and is dropped with the table.

Where rooms and messages are stored (``room``, ``crisis``'s room and brief, ``delivery``'s sent
message) the ids become strings too, with the channel beside them; existing rows are Telegram's.
Downgrading drops what other channels stored there: a number column cannot hold their ids.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op


revision: str = '0007_channel_identity'
down_revision: str | None = '0006_several_workers'
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

_ID = sa.String(length=64)
# table -> (its channel column, the id columns that name a chat, thread or message, old types)
_RETYPED: dict[str, tuple[str, list[tuple[str, sa.types.TypeEngine[int]]]]] = {
    'room': ('channel', [('chat_id', sa.BigInteger()), ('thread_id', sa.Integer())]),
    'crisis': ('room_channel', [
        ('room_chat_id', sa.BigInteger()),
        ('room_thread_id', sa.Integer()),
        ('brief_message_id', sa.Integer()),
    ]),
    'delivery': ('channel', [('chat_id', sa.BigInteger()), ('message_id', sa.Integer())]),
}


def upgrade() -> None:
    op.create_table('channelidentity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
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
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_zalo_id'))
        batch_op.drop_index(batch_op.f('ix_user_telegram_id'))
        batch_op.drop_column('zalo_id')
        batch_op.drop_column('telegram_id')

    for table, (channel, ids) in _RETYPED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(channel, sa.String(length=16), nullable=True))
            for column, old in ids:
                batch_op.alter_column(column, existing_type=old, type_=_ID)
        chat: sa.ColumnClause[Any] = sa.column(ids[0][0])
        op.execute(
            sa.table(table, sa.column(channel), chat)
            .update()
            .where(chat.is_not(None))
            .values({channel: 'telegram'})
        )
    with op.batch_alter_table('room', schema=None) as batch_op:
        batch_op.alter_column('channel', existing_type=sa.String(length=16), nullable=False)


def downgrade() -> None:
    room = sa.table('room', sa.column('channel'))
    op.execute(room.delete().where(room.c.channel != 'telegram'))
    for table, (channel, ids) in _RETYPED.items():
        rows = sa.table(table, sa.column(channel), *(sa.column(c) for c, _ in ids))
        op.execute(
            rows.update()
            .where(rows.c[channel] != 'telegram')
            .values({c: None for c, _ in ids})
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, old in ids:
                batch_op.alter_column(
                    column,
                    existing_type=_ID,
                    type_=old,
                    postgresql_using=f'{column}::{old.compile(dialect=op.get_bind().dialect)}',
                )
            batch_op.drop_column(channel)

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('telegram_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('zalo_id', sa.String(length=64), nullable=True))
    for channel, column in _COPIED:
        value = sa.select(_identity.c.external_id).where(
            _identity.c.user_id == _user.c.id, _identity.c.channel == channel
        )
        target = _user.c[column]
        op.execute(
            _user.update()
            .where(value.exists())
            .values({column: sa.cast(value.scalar_subquery(), target.type)})
        )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_telegram_id'), ['telegram_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_user_zalo_id'), ['zalo_id'], unique=True)
    with op.batch_alter_table('channelidentity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channelidentity_user_id'))

    op.drop_table('channelidentity')
