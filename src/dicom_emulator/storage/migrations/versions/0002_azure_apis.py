"""change feed, extended query tags, jobs, frames

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:32:48.830559
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "extended_query_tags",
        sa.Column("tag_key", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("vr", sa.String(), nullable=False),
        sa.Column("private_creator", sa.String(), nullable=True),
        sa.Column("level", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("query_status", sa.String(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tag_key", name=op.f("pk_extended_query_tags")),
        sa.UniqueConstraint("path", name=op.f("uq_extended_query_tags_path")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("percent_complete", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=True),
        sa.Column("resources", sa.Text(), nullable=False),
        sa.Column("results", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("heartbeat", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_status", ["status", "created_at"], unique=False)

    op.create_table(
        "extended_query_tag_errors",
        sa.Column(
            "error_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("tag_key", sa.Integer(), nullable=False),
        sa.Column("partition_key", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(), nullable=False),
        sa.Column("series_uid", sa.String(), nullable=False),
        sa.Column("sop_uid", sa.String(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("error_message", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tag_key"],
            ["extended_query_tags.tag_key"],
            name=op.f("fk_extended_query_tag_errors_tag_key_extended_query_tags"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("error_key", name=op.f("pk_extended_query_tag_errors")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("extended_query_tag_errors", schema=None) as batch_op:
        batch_op.create_index("ix_eqt_errors_tag", ["tag_key", "error_key"], unique=False)

    op.create_table(
        "extended_query_tag_values",
        sa.Column(
            "value_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("tag_key", sa.Integer(), nullable=False),
        sa.Column("study_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("series_key", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("watermark", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("text_value", sa.String(), nullable=True),
        sa.Column("words", sa.String(), nullable=True),
        sa.Column("int_value", sa.BigInteger(), nullable=True),
        sa.Column("float_value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["series_key"],
            ["series.series_key"],
            name=op.f("fk_extended_query_tag_values_series_key_series"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_key"],
            ["studies.study_key"],
            name=op.f("fk_extended_query_tag_values_study_key_studies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_key"],
            ["extended_query_tags.tag_key"],
            name=op.f("fk_extended_query_tag_values_tag_key_extended_query_tags"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["watermark"],
            ["instances.watermark"],
            name=op.f("fk_extended_query_tag_values_watermark_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("value_key", name=op.f("pk_extended_query_tag_values")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("extended_query_tag_values", schema=None) as batch_op:
        batch_op.create_index("ix_eqt_values_instance", ["tag_key", "watermark"], unique=False)
        batch_op.create_index("ix_eqt_values_series", ["tag_key", "series_key"], unique=False)
        batch_op.create_index("ix_eqt_values_study", ["tag_key", "study_key"], unique=False)
        batch_op.create_index("ix_eqt_values_text", ["tag_key", "text_value"], unique=False)

    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frames_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("frames_json")

    with op.batch_alter_table("extended_query_tag_values", schema=None) as batch_op:
        batch_op.drop_index("ix_eqt_values_text")
        batch_op.drop_index("ix_eqt_values_study")
        batch_op.drop_index("ix_eqt_values_series")
        batch_op.drop_index("ix_eqt_values_instance")

    op.drop_table("extended_query_tag_values")
    with op.batch_alter_table("extended_query_tag_errors", schema=None) as batch_op:
        batch_op.drop_index("ix_eqt_errors_tag")

    op.drop_table("extended_query_tag_errors")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_status")

    op.drop_table("jobs")
    op.drop_table("extended_query_tags")
