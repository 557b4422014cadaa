"""agency hub channel: an agency's hub is a channel and the channel's id, as text

Revision ID: 0010_agency_hub_channel
Revises: 0009_linked_channels
Create Date: 2026-12-07 03:30:00.000000

``agency.hub_chat_id`` was a Telegram number; it becomes the channel's id as a string with
``hub_channel`` beside it, as rooms and crises store their chats (0007). Existing hubs are
Telegram's. The downgrade turns Telegram hubs back into numbers; a hub on another channel has no
number to go back to and is cleared (the agency then uses the global hub or pooled groups).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010_agency_hub_channel'
down_revision: str | None = '0009_linked_channels'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_agency = sa.table('agency', sa.column('hub_channel'), sa.column('hub_chat_id'))


def upgrade() -> None:
    with op.batch_alter_table('agency', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hub_channel', sa.String(length=16), nullable=True))
        batch_op.alter_column(
            'hub_chat_id', existing_type=sa.BigInteger(), type_=sa.String(length=64)
        )
    op.execute(
        _agency.update().where(_agency.c.hub_chat_id.is_not(None)).values(hub_channel='telegram')
    )


def downgrade() -> None:
    op.execute(
        _agency.update()
        .where(_agency.c.hub_channel != 'telegram')
        .values(hub_chat_id=None)
    )
    with op.batch_alter_table('agency', schema=None) as batch_op:
        batch_op.alter_column(
            'hub_chat_id',
            existing_type=sa.String(length=64),
            type_=sa.BigInteger(),
            postgresql_using='hub_chat_id::bigint',
        )
        batch_op.drop_column('hub_channel')
