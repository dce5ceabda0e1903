"""Data partitions and bulk-update versions: the default partition row, and the original version of an instance

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-05 13:30:00.000000

Every row already carries a partition key (1 = ``Microsoft.Default``, the default of every partition_key column)
and the uniqueness constraints are per partition, so existing data stays where it is; the default partition row is
inserted here too, so a database migrated by another tool is complete. An instance updated by ``$bulkUpdate`` keeps
its first version (azure-behaviour §15.3): its watermark, file, size and metadata, in nullable columns.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_watermark", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("original_blob_key", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("original_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("original_metadata_json", sa.Text(), nullable=True))
    partitions = sa.table(
        "partitions",
        sa.column("partition_key", sa.Integer()),
        sa.column("partition_name", sa.String()),
        sa.column("created_date", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    if (
        bind.execute(sa.select(sa.func.count()).select_from(partitions).where(partitions.c.partition_key == 1)).scalar()
        == 0
    ):
        op.bulk_insert(
            partitions, [{"partition_key": 1, "partition_name": "Microsoft.Default", "created_date": datetime.now(UTC)}]
        )


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("original_metadata_json")
        batch_op.drop_column("original_size")
        batch_op.drop_column("original_blob_key")
        batch_op.drop_column("original_watermark")
