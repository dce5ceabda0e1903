#!/usr/bin/env python3
"""Throughput and latency benchmark for a running dicom-emulator (STOW-RS, QIDO-RS, WADO-RS).

Generates a synthetic data set (16-bit CT/MR/PT images, unique UIDs, patients with several studies,
study dates spread over 2018-2023) one STOW batch at a time into a scratch directory, then measures
against the server at --url:

* STOW-RS   POST /{v}/studies, multipart/related bodies of --batch instances;
* QIDO-RS   GET /{v}/studies paged with limit/offset over all studies, and filtered searches
            (PatientID, StudyDate range, Modality on /{v}/series);
* WADO-RS   GET instance, GET study (multipart), GET study metadata.

Every response is checked (status, content type, counts, UIDs); the script exits 1 and prints the
first failure if any request failed. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

DICOM_JSON = "application/dicom+json"
ACCEPT_INSTANCE = "application/dicom; transfer-syntax=*"
ACCEPT_MULTIPART = 'multipart/related; type="application/dicom"; transfer-syntax=*'

STUDY_DATE_RANGE = ("20200101", "20201231")
# Azure's maximum QIDO limit: filtered searches ask for all of it so results can be checked.
QIDO_MAX_LIMIT = 200

SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "PT": "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image Storage
}
MODALITY_WEIGHTS = {"CT": 0.6, "MR": 0.3, "PT": 0.1}
DESCRIPTIONS = {
    "CT": ("CT CHEST W/O CONTRAST", "CT ABDOMEN PELVIS", "CT HEAD"),
    "MR": ("MR BRAIN W/WO", "MR KNEE LEFT", "MR LUMBAR SPINE"),
    "PT": ("PET/CT WHOLE BODY", "PET BRAIN FDG"),
}
FAMILY_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Martinez", "Lopez", "Wilson",
    "Anderson", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark",
)  # fmt: skip
GIVEN_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
)  # fmt: skip

# DICOM JSON keys.
TAG_STUDY_UID = "0020000D"
TAG_SERIES_UID = "0020000E"
TAG_SOP_UID = "00080018"
TAG_MODALITY = "00080060"
TAG_STUDY_DATE = "00080020"
TAG_REFERENCED_SOP_SEQ = "00081199"
TAG_REFERENCED_SOP_UID = "00081155"
TAG_FAILED_SOP_SEQ = "00081198"


def out(line: str = "") -> None:
    print(line, flush=True)  # noqa: T201


# --------------------------------------------------------------------------------------------------
# Data set plan: identifiers and demographics only; pixels are made per batch.
# --------------------------------------------------------------------------------------------------


@dataclass
class SeriesPlan:
    uid: str
    number: int
    frame_of_reference_uid: str
    description: str
    instances: list[str]  # SOP Instance UIDs, in InstanceNumber order


@dataclass
class StudyPlan:
    uid: str
    study_id: str
    accession: str
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    study_date: str
    study_time: str
    modality: str
    description: str
    series: list[SeriesPlan] = field(default_factory=list)

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.series)


@dataclass(frozen=True)
class InstanceRef:
    study: StudyPlan
    series: SeriesPlan
    number: int
    sop_uid: str


def build_plan(instances: int, studies: int, rng: random.Random) -> tuple[str, list[StudyPlan]]:
    """Studies with 1-3 series each; about 1.5 studies per patient; dates over 2018-2023."""
    run_id = uuid.uuid4().hex[:8].upper()
    patients = max(1, math.ceil(studies * 2 / 3))
    first_day, last_day = date(2018, 1, 1), date(2023, 12, 31)
    span = (last_day - first_day).days
    demographics: dict[int, tuple[str, str, str]] = {}
    plan: list[StudyPlan] = []
    for index in range(studies):
        patient = rng.randrange(patients)
        if patient not in demographics:
            birth = date(1930, 1, 1) + timedelta(days=rng.randrange(365 * 75))
            name = f"{rng.choice(FAMILY_NAMES)}^{rng.choice(GIVEN_NAMES)}"
            demographics[patient] = (name, birth.strftime("%Y%m%d"), rng.choice("MF"))
        name, birth_date, sex = demographics[patient]
        modality = rng.choices(list(MODALITY_WEIGHTS), weights=list(MODALITY_WEIGHTS.values()))[0]
        study_date = first_day + timedelta(days=rng.randrange(span + 1))
        plan.append(
            StudyPlan(
                uid=generate_uid(),
                study_id=str(index + 1),
                accession=f"A{run_id}{index:06d}",
                patient_id=f"BENCH-{run_id}-{patient:05d}",
                patient_name=name,
                birth_date=birth_date,
                sex=sex,
                study_date=study_date.strftime("%Y%m%d"),
                study_time=f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
                modality=modality,
                description=rng.choice(DESCRIPTIONS[modality]),
            )
        )
    # Make every search in the benchmark have something of ours to find.
    if not any(s.study_date[:4] == STUDY_DATE_RANGE[0][:4] for s in plan):
        plan[0].study_date = STUDY_DATE_RANGE[0][:4] + "0615"
    if not any(s.modality == "CT" for s in plan):
        plan[0].modality, plan[0].description = "CT", DESCRIPTIONS["CT"][0]

    for index, study in enumerate(plan):
        count = instances // studies + (1 if index < instances % studies else 0)
        n_series = min(count, rng.randint(1, 3))
        for number in range(1, n_series + 1):
            size = count // n_series + (1 if number <= count % n_series else 0)
            study.series.append(
                SeriesPlan(
                    uid=generate_uid(),
                    number=number,
                    frame_of_reference_uid=generate_uid(),
                    description=f"{study.modality} series {number}",
                    instances=[generate_uid() for _ in range(size)],
                )
            )
    return run_id, plan


def iter_instances(plan: Sequence[StudyPlan]) -> Iterator[InstanceRef]:
    for study in plan:
        for series in study.series:
            for number, sop_uid in enumerate(series.instances, start=1):
                yield InstanceRef(study, series, number, sop_uid)


# --------------------------------------------------------------------------------------------------
# DICOM generation
# --------------------------------------------------------------------------------------------------


class InstanceFactory:
    """Builds Part 10 files: MONOCHROME2, 16 bits allocated, 12 stored, an ellipse phantom plus noise."""

    def __init__(self, rows: int, columns: int, seed: int) -> None:
        self.rows, self.columns = rows, columns
        self.rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:rows, 0:columns].astype(np.float64)
        cy, cx = (rows - 1) / 2, (columns - 1) / 2
        inside = ((yy - cy) / (rows * 0.45)) ** 2 + ((xx - cx) / (columns * 0.40)) ** 2 <= 1.0
        texture = 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
        self.base = np.where(inside, 1040 + texture, 24).astype(np.int32)

    def pixels(self, slice_number: int) -> bytes:
        noise = self.rng.integers(0, 160, size=self.base.shape, dtype=np.int32)
        image = np.clip(self.base + noise + (slice_number % 64) * 6, 0, 4095).astype("<u2")
        return image.tobytes()

    def build(self, ref: InstanceRef) -> bytes:
        study, series = ref.study, ref.series
        sop_class = SOP_CLASSES[study.modality]

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = ref.sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = ref.sop_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.study_date
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = study.study_time
        ds.AccessionNumber = study.accession
        ds.Modality = study.modality
        ds.Manufacturer = "dicom-emulator benchmark"
        ds.ReferringPhysicianName = "Referrer^Bench"
        ds.StudyDescription = study.description
        ds.SeriesDescription = series.description
        ds.PatientName = study.patient_name
        ds.PatientID = study.patient_id
        ds.PatientBirthDate = study.birth_date
        ds.PatientSex = study.sex
        ds.StudyInstanceUID = study.uid
        ds.SeriesInstanceUID = series.uid
        ds.StudyID = study.study_id
        ds.SeriesNumber = series.number
        ds.InstanceNumber = ref.number
        ds.FrameOfReferenceUID = series.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceThickness = 2.5
        ds.ImagePositionPatient = [-0.35 * self.columns, -0.35 * self.rows, -2.5 * ref.number]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = self.rows
        ds.Columns = self.columns
        ds.PixelSpacing = [0.7, 0.7]
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        if study.modality == "CT":
            ds.KVP = 120
            ds.RescaleIntercept = -1024
            ds.RescaleSlope = 1
            ds.RescaleType = "HU"
            ds.WindowCenter = 40
            ds.WindowWidth = 400
        ds.PixelData = self.pixels(ref.number)
        ds["PixelData"].VR = "OW"

        buffer = BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        return buffer.getvalue()


@dataclass
class Batch:
    path: Path
    boundary: str
    sop_uids: list[str]
    body_bytes: int


def generate_batches(
    plan: Sequence[StudyPlan], factory: InstanceFactory, batch_size: int, workdir: Path
) -> Iterator[Batch]:
    """Write one multipart/related body per batch to workdir; only one batch is in memory at a time."""
    refs = iter_instances(plan)
    index = 0
    while True:
        chunk = [ref for _, ref in zip(range(batch_size), refs, strict=False)]
        if not chunk:
            return
        boundary = f"bench-{uuid.uuid4().hex}"
        path = workdir / f"batch-{index:06d}.multipart"
        with path.open("wb") as fh:
            for ref in chunk:
                fh.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
                fh.write(factory.build(ref))
                fh.write(b"\r\n")
            fh.write(f"--{boundary}--\r\n".encode())
        yield Batch(path, boundary, [ref.sop_uid for ref in chunk], path.stat().st_size)
        index += 1


# --------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    latency: float
    nbytes: int = 0
    items: int = 0
    ok: bool = True


@dataclass
class Failure:
    operation: str
    method: str
    url: str
    status: int | None
    reason: str
    body: str

    def describe(self) -> str:
        status = self.status if self.status is not None else "no response"
        text = f"[{self.operation}] {self.method} {self.url} -> {status}: {self.reason}"
        return text + (f"\n  body: {self.body}" if self.body else "")


@dataclass
class OpResult:
    name: str
    requests: int
    failures: int
    seconds: float
    latencies: list[float]
    nbytes: int
    items: int
    item_label: str | None

    def summary(self) -> dict[str, Any]:
        ok = [lat * 1000 for lat in self.latencies]
        p50, p95, p99 = (float(v) for v in np.percentile(ok, [50, 95, 99])) if ok else (None, None, None)
        wall = max(self.seconds, 1e-9)
        return {
            "operation": self.name,
            "requests": self.requests,
            "failures": self.failures,
            "seconds": round(self.seconds, 4),
            "requests_per_s": self.requests / wall,
            "item_label": self.item_label,
            "items": self.items,
            "items_per_s": self.items / wall if self.item_label else None,
            "bytes": self.nbytes,
            "mb_per_s": self.nbytes / 1e6 / wall,
            "latency_ms": {
                "p50": p50,
                "p95": p95,
                "p99": p99,
                "max": max(ok) if ok else None,
                "mean": sum(ok) / len(ok) if ok else None,
            },
        }


def content_type_params(value: str) -> tuple[str, dict[str, str]]:
    media, *rest = value.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, _, val = item.partition("=")
        params[key.strip().lower()] = val.strip().strip('"')
    return media.strip().lower(), params


def multipart_payloads(content_type: str, body: bytes) -> list[bytes]:
    """Split a multipart/related body (RFC 2046) into its part payloads."""
    media, params = content_type_params(content_type)
    boundary = params.get("boundary")
    if media != "multipart/related" or not boundary:
        raise ValueError(f"not a multipart/related response with a boundary: {content_type!r}")
    payloads = []
    for piece in body.split(b"--" + boundary.encode())[1:]:
        if piece.startswith(b"--"):
            return payloads
        head_end = piece.find(b"\r\n\r\n")
        if head_end < 0:
            raise ValueError("part without a header/body separator")
        payload = piece[head_end + 4 :]
        payloads.append(payload[:-2] if payload.endswith(b"\r\n") else payload)
    raise ValueError("multipart body without a closing delimiter")


def excerpt(response: httpx.Response | None, limit: int = 600) -> str:
    if response is None:
        return ""
    media = response.headers.get("content-type", "")
    if "json" in media or media.startswith("text/") or not response.content:
        text = response.text
    else:
        text = f"<{len(response.content)} bytes of {media}>"
    return text if len(text) <= limit else text[:limit] + "..."


class Bench:
    """A thread pool of --concurrency workers, each with its own keep-alive httpx.Client."""

    def __init__(self, url: str, api_version: str, concurrency: int, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.prefix = f"/{api_version}"
        self.concurrency = concurrency
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench")
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self.failure_count = 0
        self.first_failure: Failure | None = None

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for client in self._clients:
            client.close()

    def client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.url, timeout=self.timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def fail(self, operation: str, method: str, url: str, response: httpx.Response | None, reason: str) -> None:
        failure = Failure(
            operation, method, url, response.status_code if response is not None else None, reason, excerpt(response)
        )
        with self._lock:
            self.failure_count += 1
            if self.first_failure is None:
                self.first_failure = failure
                out(f"  first failure: {failure.describe()}")

    def request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        params: dict[str, str | int] | None = None,
        content: bytes | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> tuple[httpx.Response | None, Sample]:
        """Time one request (until the whole body is read); a non-expected status counts as failed."""
        url = self.prefix + path
        started = time.perf_counter()
        try:
            response = self.client().request(method, url, headers=headers, params=params, content=content)
        except httpx.HTTPError as exc:
            self.fail(operation, method, url, None, f"{type(exc).__name__}: {exc}")
            return None, Sample(time.perf_counter() - started, ok=False)
        sample = Sample(time.perf_counter() - started, nbytes=len(response.content))
        if response.status_code not in expect:
            self.fail(
                operation,
                method,
                str(response.request.url),
                response,
                "expected status " + " or ".join(map(str, expect)),
            )
            sample.ok = False
        return response, sample

    def check(self, sample: Sample, operation: str, response: httpx.Response, condition: bool, reason: str) -> bool:
        """Record a failed content check on an otherwise successful response."""
        if not condition and sample.ok:
            sample.ok = False
            self.fail(operation, response.request.method, str(response.request.url), response, reason)
        return condition

    def run(
        self,
        name: str,
        tasks: Sequence[Callable[[], Sample | list[Sample]]],
        item_label: str | None = None,
    ) -> OpResult:
        def guarded(task: Callable[[], Sample | list[Sample]]) -> list[Sample]:
            started = time.perf_counter()
            try:
                result = task()
            except Exception:  # a bug here, or a response the checks did not foresee
                self.fail(name, "-", "-", None, "client-side exception:\n" + traceback.format_exc())
                return [Sample(time.perf_counter() - started, ok=False)]
            return result if isinstance(result, list) else [result]

        out(f"- {name}: {len(tasks)} task(s) on {self.concurrency} worker(s)")
        started = time.perf_counter()
        futures = [self.pool.submit(guarded, task) for task in tasks]
        samples = [sample for future in futures for sample in future.result()]
        seconds = time.perf_counter() - started
        good = [s for s in samples if s.ok]
        return OpResult(
            name=name,
            requests=len(samples),
            failures=len(samples) - len(good),
            seconds=seconds,
            latencies=[s.latency for s in good],
            nbytes=sum(s.nbytes for s in good),
            items=sum(s.items for s in good),
            item_label=item_label,
        )


# --------------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------------


def stow_task(bench: Bench, batch: Batch) -> Callable[[], Sample]:
    name = "STOW-RS"

    def task() -> Sample:
        body = batch.path.read_bytes()
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={batch.boundary}',
            "Accept": DICOM_JSON,
        }
        response, sample = bench.request(name, "POST", "/studies", headers=headers, content=body)
        sample.nbytes = len(body)
        if response is None or not sample.ok:
            return sample
        document = json_body(bench, sample, name, response)
        if not bench.check(sample, name, response, isinstance(document, dict), "response is not a JSON object"):
            return sample
        refs = (document.get(TAG_REFERENCED_SOP_SEQ) or {}).get("Value") or []
        stored = {first_value(item, TAG_REFERENCED_SOP_UID) for item in refs}
        bench.check(sample, name, response, TAG_FAILED_SOP_SEQ not in document, "FailedSOPSequence in response")
        bench.check(
            sample,
            name,
            response,
            stored == set(batch.sop_uids),
            f"ReferencedSOPSequence lists {len(stored)} of the {len(batch.sop_uids)} instances sent",
        )
        if sample.ok:
            sample.items = len(batch.sop_uids)
        return sample

    return task


def json_body(bench: Bench, sample: Sample, operation: str, response: httpx.Response) -> Any:
    """The JSON body, or None (and a recorded failure) if it is not JSON."""
    try:
        return response.json()
    except ValueError as exc:
        bench.check(sample, operation, response, False, f"invalid JSON: {exc}")
        return None


def json_list(bench: Bench, sample: Sample, operation: str, response: httpx.Response) -> list[dict[str, Any]]:
    if response.status_code == 204:
        return []
    document = json_body(bench, sample, operation, response)
    if not bench.check(sample, operation, response, isinstance(document, list), "response is not a JSON array"):
        return []
    return document


def first_value(item: dict[str, Any], tag: str) -> Any:
    values = (item.get(tag) or {}).get("Value") or [None]
    return values[0]


def qido_paging_task(bench: Bench, page_size: int, ours: set[str]) -> Callable[[], list[Sample]]:
    name = f"QIDO studies paging (limit={page_size})"

    def task() -> list[Sample]:
        samples: list[Sample] = []
        seen: list[str] = []
        offset = 0
        response: httpx.Response | None = None
        while offset <= 100_000:
            params: dict[str, str | int] = {"limit": page_size, "offset": offset}
            response, sample = bench.request(
                name, "GET", "/studies", headers={"Accept": DICOM_JSON}, params=params, expect=(200, 204)
            )
            samples.append(sample)
            if response is None or not sample.ok:
                return samples
            rows = json_list(bench, sample, name, response)
            sample.items = len(rows)
            bench.check(sample, name, response, len(rows) <= page_size, f"{len(rows)} results for limit={page_size}")
            seen.extend(first_value(row, TAG_STUDY_UID) for row in rows)
            if len(rows) < page_size:
                break
            offset += page_size
        assert response is not None
        missing = len(ours - set(seen))
        duplicates = len(seen) - len(set(seen))
        bench.check(samples[-1], name, response, not missing, f"paging missed {missing} of our {len(ours)} studies")
        bench.check(samples[-1], name, response, not duplicates, f"paging returned {duplicates} studies twice")
        return samples

    return task


def qido_patient_task(bench: Bench, patient_id: str, expected: set[str]) -> Callable[[], Sample]:
    name = "QIDO studies PatientID="

    def task() -> Sample:
        response, sample = bench.request(
            name, "GET", "/studies", headers={"Accept": DICOM_JSON}, params={"PatientID": patient_id}
        )
        if response is None or not sample.ok:
            return sample
        rows = json_list(bench, sample, name, response)
        found = {first_value(row, TAG_STUDY_UID) for row in rows}
        sample.items = len(rows)
        bench.check(sample, name, response, found == expected, f"{len(found)} studies, expected {len(expected)}")
        return sample

    return task


def qido_date_task(bench: Bench, expected: set[str]) -> Callable[[], Sample]:
    low, high = STUDY_DATE_RANGE
    name = f"QIDO studies StudyDate={low}-{high}"

    def task() -> Sample:
        params: dict[str, str | int] = {"StudyDate": f"{low}-{high}", "limit": QIDO_MAX_LIMIT}
        response, sample = bench.request(name, "GET", "/studies", headers={"Accept": DICOM_JSON}, params=params)
        if response is None or not sample.ok:
            return sample
        rows = json_list(bench, sample, name, response)
        sample.items = len(rows)
        dates = [first_value(row, TAG_STUDY_DATE) for row in rows]
        outside = [d for d in dates if not (isinstance(d, str) and low <= d <= high)]
        bench.check(sample, name, response, not outside, f"StudyDate outside the range: {outside[:5]}")
        if len(rows) < QIDO_MAX_LIMIT:
            missing = len(expected - {first_value(row, TAG_STUDY_UID) for row in rows})
            bench.check(sample, name, response, not missing, f"{missing} of our {len(expected)} studies missing")
        return sample

    return task


def qido_modality_task(bench: Bench, modality: str, expected: set[str]) -> Callable[[], Sample]:
    name = "QIDO series Modality="

    def task() -> Sample:
        params: dict[str, str | int] = {"Modality": modality, "limit": QIDO_MAX_LIMIT}
        response, sample = bench.request(name, "GET", "/series", headers={"Accept": DICOM_JSON}, params=params)
        if response is None or not sample.ok:
            return sample
        rows = json_list(bench, sample, name, response)
        sample.items = len(rows)
        wrong = {first_value(row, TAG_MODALITY) for row in rows} - {modality}
        bench.check(sample, name, response, not wrong, f"Modality={modality} returned series of {sorted(wrong)}")
        if len(rows) < QIDO_MAX_LIMIT:
            missing = len(expected - {first_value(row, TAG_SERIES_UID) for row in rows})
            bench.check(sample, name, response, not missing, f"{missing} of our {len(expected)} series missing")
        return sample

    return task


def wado_instance_task(bench: Bench, ref: InstanceRef) -> Callable[[], Sample]:
    name = "WADO instance"
    path = f"/studies/{ref.study.uid}/series/{ref.series.uid}/instances/{ref.sop_uid}"

    def task() -> Sample:
        response, sample = bench.request(name, "GET", path, headers={"Accept": ACCEPT_INSTANCE})
        if response is None or not sample.ok:
            return sample
        media, _ = content_type_params(response.headers.get("content-type", ""))
        body = response.content
        bench.check(sample, name, response, media == "application/dicom", f"Content-Type {media!r}")
        bench.check(sample, name, response, body[128:132] == b"DICM", "not a DICOM Part 10 file")
        bench.check(sample, name, response, ref.sop_uid.encode() in body[:2048], "another SOP Instance UID")
        sample.items = 1
        return sample

    return task


def wado_study_task(bench: Bench, study: StudyPlan) -> Callable[[], Sample]:
    name = "WADO study (multipart)"

    def task() -> Sample:
        response, sample = bench.request(name, "GET", f"/studies/{study.uid}", headers={"Accept": ACCEPT_MULTIPART})
        if response is None or not sample.ok:
            return sample
        try:
            payloads = multipart_payloads(response.headers.get("content-type", ""), response.content)
        except ValueError as exc:
            bench.check(sample, name, response, False, str(exc))
            return sample
        expected = study.instance_count
        bench.check(sample, name, response, len(payloads) == expected, f"{len(payloads)} parts, expected {expected}")
        bench.check(sample, name, response, all(p[128:132] == b"DICM" for p in payloads), "a part is not Part 10")
        sample.items = len(payloads)
        return sample

    return task


def wado_metadata_task(bench: Bench, study: StudyPlan) -> Callable[[], Sample]:
    name = "WADO study metadata"
    expected = {uid for series in study.series for uid in series.instances}

    def task() -> Sample:
        response, sample = bench.request(name, "GET", f"/studies/{study.uid}/metadata", headers={"Accept": DICOM_JSON})
        if response is None or not sample.ok:
            return sample
        rows = json_list(bench, sample, name, response)
        found = {first_value(row, TAG_SOP_UID) for row in rows}
        bench.check(sample, name, response, found == expected, f"{len(found)} instances, expected {len(expected)}")
        sample.items = len(rows)
        return sample

    return task


def delete_task(bench: Bench, study: StudyPlan) -> Callable[[], Sample]:
    def task() -> Sample:
        _, sample = bench.request("DELETE study", "DELETE", f"/studies/{study.uid}", headers={}, expect=(204,))
        sample.items = study.instance_count if sample.ok else 0
        return sample

    return task


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark STOW-RS, QIDO-RS and WADO-RS against a running dicom-emulator.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL (default: %(default)s)")
    parser.add_argument("--api-version", default="v2", help="DICOMweb API version path segment (default: %(default)s)")
    parser.add_argument(
        "--instances", type=positive, default=1000, help="instances to generate and store (default: %(default)s)"
    )
    parser.add_argument(
        "--studies", type=positive, default=100, help="studies to spread them over (default: %(default)s)"
    )
    parser.add_argument("--concurrency", type=positive, default=4, help="parallel requests (default: %(default)s)")
    parser.add_argument("--batch", type=positive, default=10, help="instances per STOW request (default: %(default)s)")
    parser.add_argument("--rows", type=positive, default=256, help="image rows (default: %(default)s)")
    parser.add_argument("--columns", type=positive, default=256, help="image columns (default: %(default)s)")
    parser.add_argument(
        "--page-size", type=positive, default=20, help="QIDO limit for the paging walk (default: %(default)s)"
    )
    parser.add_argument(
        "--queries", type=positive, default=100, help="requests per QIDO scenario (default: %(default)s)"
    )
    parser.add_argument(
        "--retrieves", type=positive, default=200, help="requests per WADO scenario (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="per-request timeout, seconds (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed for demographics, sampling and pixels (default: %(default)s)"
    )
    parser.add_argument("--workdir", type=Path, help="where to spool the generated batches (default: a temp dir)")
    parser.add_argument("--cleanup", action="store_true", help="delete the generated studies at the end (timed)")
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.instances < args.studies:
        parser.error("--instances must be at least --studies")
    return args


def print_table(results: Sequence[OpResult]) -> None:
    header = (
        f"{'operation':<40} {'requests':>8} {'fail':>5} {'seconds':>8} {'req/s':>8} "
        f"{'inst/s':>8} {'MB/s':>8} {'p50 ms':>8} {'p95 ms':>8}"
    )
    out(header)
    out("-" * len(header))
    for result in results:
        s = result.summary()
        lat = s["latency_ms"]
        inst = f"{s['items_per_s']:8.1f}" if s["items_per_s"] is not None else f"{'-':>8}"
        p50 = f"{lat['p50']:8.1f}" if lat["p50"] is not None else f"{'-':>8}"
        p95 = f"{lat['p95']:8.1f}" if lat["p95"] is not None else f"{'-':>8}"
        out(
            f"{s['operation']:<40} {s['requests']:>8} {s['failures']:>5} {s['seconds']:>8.2f} "
            f"{s['requests_per_s']:>8.1f} {inst} {s['mb_per_s']:>8.2f} {p50} {p95}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)

    try:
        health = httpx.get(args.url.rstrip("/") + "/health", timeout=10)
        health.raise_for_status()
        server_info: Any = health.json()
    except (httpx.HTTPError, ValueError) as exc:
        out(f"server at {args.url} is not healthy: {exc}")
        return 2

    run_id, plan = build_plan(args.instances, args.studies, rng)
    refs = list(iter_instances(plan))
    instance_bytes = args.rows * args.columns * 2
    out(f"server {args.url} {server_info}")
    out(
        f"data set {run_id}: {args.instances} instances ({args.rows}x{args.columns}x16 bit, "
        f"~{instance_bytes / 1e3:.0f} kB pixels each), {len(plan)} studies, "
        f"{sum(len(s.series) for s in plan)} series, {len({s.patient_id for s in plan})} patients; "
        f"concurrency {args.concurrency}, {args.batch} instances per STOW request"
    )

    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="dicom-bench-")) if own_workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.url, args.api_version, args.concurrency, args.timeout)
    results: list[OpResult] = []
    try:
        started = time.perf_counter()
        factory = InstanceFactory(args.rows, args.columns, args.seed)
        batches = list(generate_batches(plan, factory, args.batch, workdir))
        generated = sum(b.body_bytes for b in batches)
        out(
            f"generated {len(batches)} STOW bodies ({generated / 1e6:.1f} MB) in "
            f"{time.perf_counter() - started:.1f} s under {workdir}"
        )

        # (a) STOW-RS
        results.append(bench.run("STOW-RS", [stow_task(bench, b) for b in batches], "instances"))
        if results[-1].failures:
            out("STOW-RS failed: searches and retrieves would not find the data; stopping.")
        else:
            # (b) QIDO-RS
            ours = {s.uid for s in plan}
            pages_per_walk = math.ceil(len(plan) / args.page_size) + 1
            walks = max(args.concurrency, args.queries // pages_per_walk)
            results.append(
                bench.run(
                    f"QIDO studies paging (limit={args.page_size})",
                    [qido_paging_task(bench, args.page_size, ours) for _ in range(walks)],
                )
            )
            by_patient: dict[str, set[str]] = defaultdict(set)
            for study in plan:
                by_patient[study.patient_id].add(study.uid)
            patients = sorted(by_patient)
            rng.shuffle(patients)
            results.append(
                bench.run(
                    "QIDO studies PatientID=",
                    [
                        qido_patient_task(bench, pid, by_patient[pid])
                        for pid in (patients[i % len(patients)] for i in range(args.queries))
                    ],
                )
            )
            low, high = STUDY_DATE_RANGE
            in_range = {s.uid for s in plan if low <= s.study_date <= high}
            results.append(
                bench.run(
                    f"QIDO studies StudyDate={low}-{high}",
                    [qido_date_task(bench, in_range) for _ in range(args.queries)],
                )
            )
            by_modality: dict[str, set[str]] = defaultdict(set)
            for study in plan:
                by_modality[study.modality].update(series.uid for series in study.series)
            modalities = sorted(by_modality)
            results.append(
                bench.run(
                    "QIDO series Modality=",
                    [
                        qido_modality_task(bench, m, by_modality[m])
                        for m in (modalities[i % len(modalities)] for i in range(args.queries))
                    ],
                )
            )

            # (c) WADO-RS
            sample = [refs[rng.randrange(len(refs))] for _ in range(args.retrieves)]
            results.append(bench.run("WADO instance", [wado_instance_task(bench, r) for r in sample], "instances"))
            studies = [plan[i % len(plan)] for i in range(args.retrieves)]
            results.append(
                bench.run("WADO study (multipart)", [wado_study_task(bench, s) for s in studies], "instances")
            )
            results.append(bench.run("WADO study metadata", [wado_metadata_task(bench, s) for s in studies]))

        if args.cleanup:
            results.append(bench.run("DELETE study", [delete_task(bench, s) for s in plan], "instances"))
    finally:
        bench.close()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    out()
    print_table(results)
    out()
    out("MB = 10^6 bytes (request bodies for STOW, response bodies otherwise); latencies of successful requests.")

    if args.json_out:
        document = {
            "server": {"url": args.url, "health": server_info},
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "data_set": {
                "run_id": run_id,
                "instances": len(refs),
                "studies": len(plan),
                "series": sum(len(s.series) for s in plan),
                "patients": len({s.patient_id for s in plan}),
            },
            "results": [r.summary() for r in results],
            "failures": bench.failure_count,
            "first_failure": asdict(bench.first_failure) if bench.first_failure else None,
        }
        args.json_out.write_text(json.dumps(document, indent=2) + "\n")
        out(f"results written to {args.json_out}")

    if bench.failure_count:
        assert bench.first_failure is not None
        out(f"FAILED: {bench.failure_count} request(s) failed; the first:")
        out(bench.first_failure.describe())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
