"""agency zalo oa: the agency's Official Account app and its GMF assets

Revision ID: 0011_agency_zalo_oa
Revises: 0010_agency_hub_channel
Create Date: 2026-12-07 04:00:00.000000

An agency with a verified Zalo OA names the OA's app (``zalo_oa_app_id``) and the GMF quota
assets its crisis groups may use (``zalo_oa_assets``, comma-separated) in the TOML; both are
synced here. Rooms of kind ``created_group`` need no schema change (``room.kind`` is text).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011_agency_zalo_oa'
down_revision: str | None = '0010_agency_hub_channel'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('agency', schema=None) as batch_op:
        batch_op.add_column(sa.Column('zalo_oa_app_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('zalo_oa_assets', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agency', schema=None) as batch_op:
        batch_op.drop_column('zalo_oa_assets')
        batch_op.drop_column('zalo_oa_app_id')
