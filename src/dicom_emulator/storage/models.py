"""SQLAlchemy tables of the index.

Study and series rows hold the normalized values of the core QIDO attributes (reference §4.3) as
columns; what QIDO returns comes from the bulk-data-stripped DICOM JSON kept on each instance row,
computed once at store time (DESIGN.md invariant 4). The instance primary key is the *watermark*:
a database-issued version number that only grows (SQLite ``AUTOINCREMENT`` never reuses ids).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY columns, so BigInteger becomes INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DEFAULT_PARTITION_KEY = 1
DEFAULT_PARTITION_NAME = "Microsoft.Default"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Partition(Base):
    __tablename__ = "partitions"

    partition_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    partition_name: Mapped[str] = mapped_column(String(), unique=True)
    created_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Study(Base):
    __tablename__ = "studies"
    __table_args__ = (
        UniqueConstraint("partition_key", "study_uid", name="uq_studies_partition_uid"),
        {"sqlite_autoincrement": True},
    )

    study_key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partition_key: Mapped[int] = mapped_column(Integer, default=DEFAULT_PARTITION_KEY)
    study_uid: Mapped[str] = mapped_column(String())
    patient_id: Mapped[str | None] = mapped_column(String(), index=True)
    patient_name: Mapped[str | None] = mapped_column(String(), index=True)
    # Space-led word list (" JOHN DOE") so fuzzy prefix matching is one LIKE per word (§4.4).
    patient_name_words: Mapped[str | None] = mapped_column(String())
    patient_birth_date: Mapped[str | None] = mapped_column(String())
    accession_number: Mapped[str | None] = mapped_column(String(), index=True)
    referring_physician_name: Mapped[str | None] = mapped_column(String())
    referring_physician_words: Mapped[str | None] = mapped_column(String())
    study_date: Mapped[str | None] = mapped_column(String(), index=True)
    study_description: Mapped[str | None] = mapped_column(String())
    # msdicom-expiry-* headers (reference §2.2): when the study is due for deletion.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # Watermark of the most recently stored instance: its metadata supplies the study attributes
    # ("latest wins", reference §4.5) and it orders results newest-first.
    latest_watermark: Mapped[int] = mapped_column(BigInteger, index=True)


class Series(Base):
    __tablename__ = "series"
    __table_args__ = (
        UniqueConstraint("study_key", "series_uid", name="uq_series_study_uid"),
        {"sqlite_autoincrement": True},
    )

    series_key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    study_key: Mapped[int] = mapped_column(ForeignKey("studies.study_key", ondelete="CASCADE"), index=True)
    partition_key: Mapped[int] = mapped_column(Integer, default=DEFAULT_PARTITION_KEY)
    series_uid: Mapped[str] = mapped_column(String(), index=True)
    modality: Mapped[str | None] = mapped_column(String(), index=True)
    performed_procedure_step_start_date: Mapped[str | None] = mapped_column(String())
    manufacturer_model_name: Mapped[str | None] = mapped_column(String())
    latest_watermark: Mapped[int] = mapped_column(BigInteger, index=True)


class Instance(Base):
    """One stored version of an instance. ``watermark`` is the version (reference §3.5 ETags)."""

    __tablename__ = "instances"
    __table_args__ = (
        # One row per instance identity: a concurrent second store of the same UIDs fails on this
        # constraint at commit, which is how 45070 stays exact with several processes.
        UniqueConstraint("partition_key", "study_uid", "series_uid", "sop_uid", name="uq_instances_identity"),
        Index("ix_instances_sop", "sop_uid"),
        {"sqlite_autoincrement": True},
    )

    watermark: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partition_key: Mapped[int] = mapped_column(Integer, default=DEFAULT_PARTITION_KEY)
    study_uid: Mapped[str] = mapped_column(String())
    series_uid: Mapped[str] = mapped_column(String())
    sop_uid: Mapped[str] = mapped_column(String())
    study_key: Mapped[int] = mapped_column(ForeignKey("studies.study_key", ondelete="CASCADE"), index=True)
    series_key: Mapped[int] = mapped_column(ForeignKey("series.series_key", ondelete="CASCADE"), index=True)
    sop_class_uid: Mapped[str | None] = mapped_column(String())
    transfer_syntax: Mapped[str | None] = mapped_column(String())
    blob_key: Mapped[str] = mapped_column(String())
    size: Mapped[int] = mapped_column(BigInteger)
    number_of_frames: Mapped[int | None] = mapped_column(Integer)
    # Bulk-data-stripped DICOM JSON, computed once at store time (DESIGN.md invariant 4).
    metadata_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChangeFeedEntry(Base):
    """Change feed (reference §6). State is computed on read from the current instance rows."""

    __tablename__ = "changefeed"
    __table_args__ = (
        Index("ix_changefeed_identity", "partition_key", "study_uid", "series_uid", "sop_uid"),
        Index("ix_changefeed_timestamp", "timestamp", "sequence"),
        {"sqlite_autoincrement": True},
    )

    sequence: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String())
    partition_key: Mapped[int] = mapped_column(Integer, default=DEFAULT_PARTITION_KEY)
    study_uid: Mapped[str] = mapped_column(String())
    series_uid: Mapped[str] = mapped_column(String())
    sop_uid: Mapped[str] = mapped_column(String())
    # The instance version this entry recorded.
    watermark: Mapped[int] = mapped_column(BigInteger)
