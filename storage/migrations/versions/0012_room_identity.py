"""room identity: a person's id inside a room provider's own id space (a Zalo OA's user ids)

Revision ID: 0012_room_identity
Revises: 0011_agency_zalo_oa
Create Date: 2026-12-07 11:40:00.000000

A Zalo Official Account knows a person by an id scoped to that OA, not by the id the Zalo bot
knows them by; the groups it creates for crisis rooms must be given the OA's id. ``room_identity``
holds it per (channel, scope = the OA's app id, person), learnt when the person types a linking
code into the OA's chat. Nothing existing is rewritten: a deployment with OA rooms starts with no
row, and its people link when they are told they could not be invited.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012_room_identity'
down_revision: str | None = '0011_agency_zalo_oa'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('room_identity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'scope', 'external_id'),
    sa.UniqueConstraint('user_id', 'channel', 'scope')
    )
    with op.batch_alter_table('room_identity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_room_identity_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('room_identity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_room_identity_user_id'))
    op.drop_table('room_identity')
