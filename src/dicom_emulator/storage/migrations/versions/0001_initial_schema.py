"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 16:29:47.064443
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changefeed",
        sa.Column("sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("partition_key", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(), nullable=False),
        sa.Column("series_uid", sa.String(), nullable=False),
        sa.Column("sop_uid", sa.String(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_changefeed")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("changefeed", schema=None) as batch_op:
        batch_op.create_index(
            "ix_changefeed_identity", ["partition_key", "study_uid", "series_uid", "sop_uid"], unique=False
        )
        batch_op.create_index("ix_changefeed_timestamp", ["timestamp", "sequence"], unique=False)

    op.create_table(
        "partitions",
        sa.Column("partition_key", sa.Integer(), nullable=False),
        sa.Column("partition_name", sa.String(), nullable=False),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partition_key", name=op.f("pk_partitions")),
        sa.UniqueConstraint("partition_name", name=op.f("uq_partitions_partition_name")),
    )
    op.create_table(
        "studies",
        sa.Column(
            "study_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("partition_key", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=True),
        sa.Column("patient_name", sa.String(), nullable=True),
        sa.Column("patient_name_words", sa.String(), nullable=True),
        sa.Column("patient_birth_date", sa.String(), nullable=True),
        sa.Column("accession_number", sa.String(), nullable=True),
        sa.Column("referring_physician_name", sa.String(), nullable=True),
        sa.Column("referring_physician_words", sa.String(), nullable=True),
        sa.Column("study_date", sa.String(), nullable=True),
        sa.Column("study_description", sa.String(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latest_watermark", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("study_key", name=op.f("pk_studies")),
        sa.UniqueConstraint("partition_key", "study_uid", name="uq_studies_partition_uid"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_studies_accession_number"), ["accession_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_studies_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_studies_latest_watermark"), ["latest_watermark"], unique=False)
        batch_op.create_index(batch_op.f("ix_studies_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_studies_patient_name"), ["patient_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_studies_study_date"), ["study_date"], unique=False)

    op.create_table(
        "series",
        sa.Column(
            "series_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("study_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partition_key", sa.Integer(), nullable=False),
        sa.Column("series_uid", sa.String(), nullable=False),
        sa.Column("modality", sa.String(), nullable=True),
        sa.Column("performed_procedure_step_start_date", sa.String(), nullable=True),
        sa.Column("manufacturer_model_name", sa.String(), nullable=True),
        sa.Column("latest_watermark", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_key"], ["studies.study_key"], name=op.f("fk_series_study_key_studies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("series_key", name=op.f("pk_series")),
        sa.UniqueConstraint("study_key", "series_uid", name="uq_series_study_uid"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_series_latest_watermark"), ["latest_watermark"], unique=False)
        batch_op.create_index(batch_op.f("ix_series_modality"), ["modality"], unique=False)
        batch_op.create_index(batch_op.f("ix_series_series_uid"), ["series_uid"], unique=False)
        batch_op.create_index(batch_op.f("ix_series_study_key"), ["study_key"], unique=False)

    op.create_table(
        "instances",
        sa.Column(
            "watermark", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("partition_key", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(), nullable=False),
        sa.Column("series_uid", sa.String(), nullable=False),
        sa.Column("sop_uid", sa.String(), nullable=False),
        sa.Column("study_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("series_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sop_class_uid", sa.String(), nullable=True),
        sa.Column("transfer_syntax", sa.String(), nullable=True),
        sa.Column("blob_key", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("number_of_frames", sa.Integer(), nullable=True),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_key"], ["series.series_key"], name=op.f("fk_instances_series_key_series"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["study_key"], ["studies.study_key"], name=op.f("fk_instances_study_key_studies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("watermark", name=op.f("pk_instances")),
        sa.UniqueConstraint("partition_key", "study_uid", "series_uid", "sop_uid", name="uq_instances_identity"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instances_series_key"), ["series_key"], unique=False)
        batch_op.create_index("ix_instances_sop", ["sop_uid"], unique=False)
        batch_op.create_index(batch_op.f("ix_instances_study_key"), ["study_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instances_study_key"))
        batch_op.drop_index("ix_instances_sop")
        batch_op.drop_index(batch_op.f("ix_instances_series_key"))

    op.drop_table("instances")
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_study_key"))
        batch_op.drop_index(batch_op.f("ix_series_series_uid"))
        batch_op.drop_index(batch_op.f("ix_series_modality"))
        batch_op.drop_index(batch_op.f("ix_series_latest_watermark"))

    op.drop_table("series")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_studies_study_date"))
        batch_op.drop_index(batch_op.f("ix_studies_patient_name"))
        batch_op.drop_index(batch_op.f("ix_studies_patient_id"))
        batch_op.drop_index(batch_op.f("ix_studies_latest_watermark"))
        batch_op.drop_index(batch_op.f("ix_studies_expires_at"))
        batch_op.drop_index(batch_op.f("ix_studies_accession_number"))

    op.drop_table("studies")
    op.drop_table("partitions")
    with op.batch_alter_table("changefeed", schema=None) as batch_op:
        batch_op.drop_index("ix_changefeed_timestamp")
        batch_op.drop_index("ix_changefeed_identity")

    op.drop_table("changefeed")
