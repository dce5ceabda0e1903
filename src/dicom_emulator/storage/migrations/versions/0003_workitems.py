"""UPS-RS workitems (azure-behaviour §9): one row per workitem with its DICOM JSON and search columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:43:30.739945
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workitems",
        sa.Column(
            "workitem_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("partition_key", sa.Integer(), nullable=False),
        sa.Column("sop_uid", sa.String(), nullable=False),
        sa.Column("transaction_uid", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("patient_name", sa.String(), nullable=True),
        sa.Column("patient_name_words", sa.String(), nullable=True),
        sa.Column("patient_id", sa.String(), nullable=True),
        sa.Column("accession_numbers", sa.String(), nullable=True),
        sa.Column("requested_procedure_ids", sa.String(), nullable=True),
        sa.Column("scheduled_start", sa.String(), nullable=True),
        sa.Column("station_name_codes", sa.String(), nullable=True),
        sa.Column("station_class_codes", sa.String(), nullable=True),
        sa.Column("station_location_codes", sa.String(), nullable=True),
        sa.Column("study_uid", sa.String(), nullable=True),
        sa.Column("dataset_json", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workitem_key", name=op.f("pk_workitems")),
        sa.UniqueConstraint("partition_key", "sop_uid", name="uq_workitems_partition_uid"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("workitems", schema=None) as batch_op:
        batch_op.create_index("ix_workitems_patient_id", ["patient_id"], unique=False)
        batch_op.create_index("ix_workitems_patient_name", ["patient_name"], unique=False)
        batch_op.create_index("ix_workitems_state_start", ["partition_key", "state", "scheduled_start"], unique=False)
        batch_op.create_index("ix_workitems_study_uid", ["study_uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workitems", schema=None) as batch_op:
        batch_op.drop_index("ix_workitems_study_uid")
        batch_op.drop_index("ix_workitems_state_start")
        batch_op.drop_index("ix_workitems_patient_name")
        batch_op.drop_index("ix_workitems_patient_id")

    op.drop_table("workitems")
