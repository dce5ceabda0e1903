"""SQLAlchemy tables of the index.

Study and series rows hold the normalized values of the core QIDO attributes (azure-behaviour §4.3) as
columns; what QIDO returns comes from the bulk-data-stripped DICOM JSON kept on each instance row,
computed once at store time (architecture invariant 4). The instance primary key is the *watermark*:
a database-issued version number that only grows (SQLite ``AUTOINCREMENT`` never reuses ids).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
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
    # Space-led word list (" JOHN DOE") so fuzzy prefix matching is one LIKE per word (azure-behaviour §4.4).
    patient_name_words: Mapped[str | None] = mapped_column(String())
    patient_birth_date: Mapped[str | None] = mapped_column(String())
    accession_number: Mapped[str | None] = mapped_column(String(), index=True)
    referring_physician_name: Mapped[str | None] = mapped_column(String())
    referring_physician_words: Mapped[str | None] = mapped_column(String())
    study_date: Mapped[str | None] = mapped_column(String(), index=True)
    study_description: Mapped[str | None] = mapped_column(String())
    # msdicom-expiry-* headers (azure-behaviour §2.2): when the study is due for deletion.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # Watermark of the most recently stored instance: its metadata supplies the study attributes
    # ("latest wins", §4.5) and it orders results newest-first.
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
    """One stored version of an instance. ``watermark`` is the version (azure-behaviour §3.5 ETags)."""

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
    # Bulk-data-stripped DICOM JSON, computed once at store time (architecture invariant 4).
    metadata_json: Mapped[str] = mapped_column(Text)
    # Frame byte ranges in the file, computed at store time (JSON list of [offset, length] per frame;
    # NULL when the instance has no pixel data), so frame retrieval never parses the dataset.
    frames_json: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The first version of an instance changed by $bulkUpdate, kept for ``msdicom-request-original``
    # (azure-behaviour §15.3, §15.4); NULL for instances never updated. Intermediate versions are not kept.
    original_watermark: Mapped[int | None] = mapped_column(BigInteger)
    original_blob_key: Mapped[str | None] = mapped_column(String())
    original_size: Mapped[int | None] = mapped_column(BigInteger)
    original_metadata_json: Mapped[str | None] = mapped_column(Text)


class ChangeFeedEntry(Base):
    """Change feed (azure-behaviour §6). State is computed on read from the current instance rows."""

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


class ExtendedQueryTag(Base):
    """An extended query tag (azure-behaviour §7). ``tag_key`` orders the list like Azure's TagKey."""

    __tablename__ = "extended_query_tags"
    __table_args__ = ({"sqlite_autoincrement": True},)

    tag_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # 8 upper-case hex digits.
    path: Mapped[str] = mapped_column(String(), unique=True)
    vr: Mapped[str] = mapped_column(String())
    private_creator: Mapped[str | None] = mapped_column(String())
    level: Mapped[str] = mapped_column(String())  # study | series | instance
    status: Mapped[str] = mapped_column(String())  # adding | ready | deleting
    query_status: Mapped[str] = mapped_column(String())  # enabled | disabled
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    operation_id: Mapped[str | None] = mapped_column(String())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ExtendedQueryTagValue(Base):
    """One indexed value of an extended query tag at its level.

    Exactly one of study_key/series_key/watermark identifies the owner, by the tag's level. Values
    are normalized like the core columns: ``text_value`` for strings, dates and times (comparable
    text), ``int_value``/``float_value`` for numbers, ``words`` for fuzzy PN matching.
    """

    __tablename__ = "extended_query_tag_values"
    __table_args__ = (
        Index("ix_eqt_values_text", "tag_key", "text_value"),
        Index("ix_eqt_values_study", "tag_key", "study_key"),
        Index("ix_eqt_values_series", "tag_key", "series_key"),
        Index("ix_eqt_values_instance", "tag_key", "watermark"),
        {"sqlite_autoincrement": True},
    )

    value_key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tag_key: Mapped[int] = mapped_column(ForeignKey("extended_query_tags.tag_key", ondelete="CASCADE"))
    study_key: Mapped[int | None] = mapped_column(ForeignKey("studies.study_key", ondelete="CASCADE"))
    series_key: Mapped[int | None] = mapped_column(ForeignKey("series.series_key", ondelete="CASCADE"))
    watermark: Mapped[int | None] = mapped_column(ForeignKey("instances.watermark", ondelete="CASCADE"))
    text_value: Mapped[str | None] = mapped_column(String())
    words: Mapped[str | None] = mapped_column(String())
    int_value: Mapped[int | None] = mapped_column(BigInteger)
    float_value: Mapped[float | None] = mapped_column(Float)


class ExtendedQueryTagError(Base):
    """An instance whose value for a tag failed validation during reindex (azure-behaviour §7.4)."""

    __tablename__ = "extended_query_tag_errors"
    __table_args__ = (
        Index("ix_eqt_errors_tag", "tag_key", "error_key"),
        {"sqlite_autoincrement": True},
    )

    error_key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tag_key: Mapped[int] = mapped_column(ForeignKey("extended_query_tags.tag_key", ondelete="CASCADE"))
    partition_key: Mapped[int] = mapped_column(Integer, default=DEFAULT_PARTITION_KEY)
    study_uid: Mapped[str] = mapped_column(String())
    series_uid: Mapped[str] = mapped_column(String())
    sop_uid: Mapped[str] = mapped_column(String())
    watermark: Mapped[int] = mapped_column(BigInteger)
    error_message: Mapped[str] = mapped_column(String())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """Background work as a row (architecture invariant 6); ``/operations/{id}`` reads the same rows.

    A runner claims a job by setting ``owner`` and a ``heartbeat``; a job whose heartbeat is older than
    the lease is reclaimed by any runner and resumes from ``cursor`` (a crash never leaves it running).
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status", "status", "created_at"),)

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String())  # reindex | export | update
    status: Mapped[str] = mapped_column(String())  # notStarted | running | succeeded | failed | canceled
    percent_complete: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[str] = mapped_column(Text, default="{}")
    # Resume point, e.g. the next watermark below which reindex still has to look.
    cursor: Mapped[int | None] = mapped_column(BigInteger)
    resources: Mapped[str] = mapped_column(Text, default="[]")
    results: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String())
    heartbeat: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Workitem(Base):
    """A UPS-RS workitem (azure-behaviour §9): the whole dataset as DICOM JSON plus normalized search columns.

    The search columns are written by ``dicom.ups.search.index_values`` and compared with values normalized the
    same way (``dicom.ups.search.parse_workitem_query``). Columns ending in ``_codes``/``_numbers``/``_ids`` come from a
    sequence and hold the normalized value of every item, backslash-delimited and backslash-framed
    (``\\ACC1\\ACC2\\``), since any item may match (Azure indexes one row per item). ``version`` grows with
    every change and guards updates (optimistic concurrency: a writer that read an older version gets a 409).
    """

    __tablename__ = "workitems"
    __table_args__ = (
        UniqueConstraint("partition_key", "sop_uid", name="uq_workitems_partition_uid"),
        Index("ix_workitems_state_start", "partition_key", "state", "scheduled_start"),
        Index("ix_workitems_patient_id", "patient_id"),
        Index("ix_workitems_patient_name", "patient_name"),
        Index("ix_workitems_study_uid", "study_uid"),
        {"sqlite_autoincrement": True},
    )

    workitem_key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partition_key: Mapped[int] = mapped_column(Integer, default=DEFAULT_PARTITION_KEY)
    sop_uid: Mapped[str] = mapped_column(String())
    # Set by the claim (Change State to IN PROGRESS); never returned to clients.
    transaction_uid: Mapped[str | None] = mapped_column(String())
    state: Mapped[str] = mapped_column(String())  # Procedure Step State (0074,1000)
    patient_name: Mapped[str | None] = mapped_column(String())
    patient_name_words: Mapped[str | None] = mapped_column(String())
    patient_id: Mapped[str | None] = mapped_column(String())
    accession_numbers: Mapped[str | None] = mapped_column(String())  # ReferencedRequestSequence > AccessionNumber
    requested_procedure_ids: Mapped[str | None] = mapped_column(String())  # ReferencedRequestSequence > ...ID
    scheduled_start: Mapped[str | None] = mapped_column(String())  # 'YYYYMMDDHHMMSS.ffffff'
    station_name_codes: Mapped[str | None] = mapped_column(String())  # (0040,4025) > CodeValue
    station_class_codes: Mapped[str | None] = mapped_column(String())  # (0040,4026) > CodeValue
    station_location_codes: Mapped[str | None] = mapped_column(String())  # (0040,4027) > CodeValue
    study_uid: Mapped[str | None] = mapped_column(String())
    dataset_json: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PerformedProcedureStep(Base):
    """A Modality Performed Procedure Step instance (PS3.4 Annex F) created by a DIMSE N-CREATE.

    ``dataset_json`` holds its attributes as DICOM JSON; ``workitem_uids`` the JSON list of the UPS workitems its
    Scheduled Step Attributes referred to (driven to IN PROGRESS, then COMPLETED or CANCELED). ``version`` grows
    with every N-SET and guards concurrent updates, as for workitems.
    """

    __tablename__ = "performed_procedure_steps"
    __table_args__ = (
        UniqueConstraint("partition_key", "sop_uid", name="uq_performed_procedure_steps_partition_uid"),
        {"sqlite_autoincrement": True},
    )

    mpps_key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partition_key: Mapped[int] = mapped_column(Integer, default=DEFAULT_PARTITION_KEY)
    sop_uid: Mapped[str] = mapped_column(String())
    status: Mapped[str] = mapped_column(String())  # Performed Procedure Step Status (0040,0252)
    workitem_uids: Mapped[str] = mapped_column(Text, default="[]")
    dataset_json: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventOutbox(Base):
    """One event per change-feed row, written in the feed row's transaction (the outbox of issue 11).

    The row pins what must stay the same across redeliveries (the event ``id``); everything else of the
    event comes from the change-feed row it points at, which never changes.
    """

    __tablename__ = "event_outbox"

    # The change-feed sequence of the row this event announces (``data.sequenceNumber``).
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36))


class EventSinkState(Base):
    """Delivery state of one configured event sink: its cursor in the outbox and who delivers it.

    One process at a time holds a sink's lease (``owner`` until ``lease_until``) and delivers its events in
    sequence order; the cursor advances only after a sink acknowledged them (at least once, never skipped).
    """

    __tablename__ = "event_sinks"

    name: Mapped[str] = mapped_column(String(), primary_key=True)
    # Highest outbox sequence delivered (or dead-lettered, or filtered out).
    cursor: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String())
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Failed attempts at the events after the cursor, and when the next attempt is due.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_outcome: Mapped[str | None] = mapped_column(String())
    # The webhook endpoint and schema whose subscription validation succeeded (re-validated when they change).
    validated: Mapped[str | None] = mapped_column(String())
    # Code of a pending asynchronous validation (the endpoint GETs validationUrl).
    validation_code: Mapped[str | None] = mapped_column(String())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
