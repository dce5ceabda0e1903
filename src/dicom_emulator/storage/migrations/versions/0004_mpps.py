"""Modality Performed Procedure Step instances received over DIMSE (PS3.4 Annex F)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "performed_procedure_steps",
        sa.Column("mpps_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("partition_key", sa.Integer(), nullable=False),
        sa.Column("sop_uid", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("workitem_uids", sa.Text(), nullable=False),
        sa.Column("dataset_json", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mpps_key", name=op.f("pk_performed_procedure_steps")),
        sa.UniqueConstraint("partition_key", "sop_uid", name="uq_performed_procedure_steps_partition_uid"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("performed_procedure_steps")
