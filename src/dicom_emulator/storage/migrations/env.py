"""Alembic environment: runs on the connection handed over by storage/db.py."""

from __future__ import annotations

from alembic import context

from dicom_emulator.storage.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Migrations run through dicom_emulator.storage.db.migrate(), which passes a connection.")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
