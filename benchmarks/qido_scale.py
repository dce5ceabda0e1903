"""QIDO latency as the index grows: p50/p95 of exact-match and range queries at several index sizes.

Loads synthetic instances straight into the index through the real store transaction
(``SqlIndex.add_instances``: the same rows, indexes and change-feed entries a STOW writes, but no files, so
only QIDO can be measured on them), starts the real ``dicom-emulator serve`` on that database, times the
queries over one keep-alive connection, then grows the index to the next size and measures again.

    .venv/bin/python benchmarks/qido_scale.py --database-url postgresql://postgres@127.0.0.1:5432/qido_scale
    .venv/bin/python benchmarks/qido_scale.py --sizes 1000,10000 --database-url sqlite:///tmp/scale/index.db

The database is created when missing and must be empty (or hold only an earlier run's data, see
``--reuse``). Each study has 2 series of 25 instances; patients have one or two studies.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from dicom_emulator.config import normalize_database_url
from dicom_emulator.storage.db import create_engine, migrate, session_factory
from dicom_emulator.storage.index import NewInstance, SqlIndex
from dicom_emulator.storage.models import Instance

INSTANCES_PER_SERIES = 25
SERIES_PER_STUDY = 2
PER_STUDY = INSTANCES_PER_SERIES * SERIES_PER_STUDY
MODALITIES = ("CT", "MR", "PT", "CR", "US")
ROOT = "1.2.826.0.1.3680043.10.1234"  # a UID root for synthetic data


def say(line: str, *, err: bool = False) -> None:
    print(line, file=sys.stderr if err else sys.stdout, flush=True)  # noqa: T201 - a command-line report


def _uid(kind: int, *parts: int) -> str:
    return ".".join([ROOT, str(kind), *(str(p) for p in parts)])


def _element(vr: str, value: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": [value]}


def study_instances(number: int) -> list[NewInstance]:
    """The instances of synthetic study ``number`` (deterministic)."""
    patient = number // 2  # patients have two studies
    study_uid = _uid(1, number)
    date = f"{2000 + number % 25:04d}{1 + number % 12:02d}{1 + number % 28:02d}"
    study_values = {
        "patient_id": f"PAT{patient:07d}",
        "patient_name": f"FAMILY{patient % 5000}^GIVEN{patient}",
        "patient_name_words": f" family{patient % 5000} given{patient}",
        "patient_birth_date": "19700101",
        "accession_number": f"ACC{number:08d}",
        "referring_physician_name": None,
        "referring_physician_words": None,
        "study_date": date,
        "study_description": f"Study {number % 40}",
    }
    instances: list[NewInstance] = []
    for s in range(SERIES_PER_STUDY):
        modality = MODALITIES[(number + s) % len(MODALITIES)]
        series_uid = _uid(2, number, s)
        for i in range(INSTANCES_PER_SERIES):
            sop_uid = _uid(3, number, s, i)
            metadata = {
                "00080016": _element("UI", "1.2.840.10008.5.1.4.1.1.2"),
                "00080018": _element("UI", sop_uid),
                "00080020": _element("DA", date),
                "00080050": _element("SH", study_values["accession_number"]),
                "00080060": _element("CS", modality),
                "00081030": _element("LO", study_values["study_description"]),
                "00100010": {"vr": "PN", "Value": [{"Alphabetic": study_values["patient_name"]}]},
                "00100020": _element("LO", study_values["patient_id"]),
                "0020000D": _element("UI", study_uid),
                "0020000E": _element("UI", series_uid),
                "00200011": _element("IS", s + 1),
                "00200013": _element("IS", i + 1),
                "00280010": _element("US", 512),
                "00280011": _element("US", 512),
            }
            instances.append(
                NewInstance(
                    partition_key=1,
                    study_uid=study_uid,
                    series_uid=series_uid,
                    sop_uid=sop_uid,
                    sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                    transfer_syntax="1.2.840.10008.1.2.1",
                    blob_key=f"1/{study_uid}/{series_uid}/{sop_uid}.synthetic.dcm",
                    size=0,
                    number_of_frames=1,
                    metadata_json=json.dumps(metadata, separators=(",", ":")),
                    study_values=study_values,
                    series_values={
                        "modality": modality,
                        "performed_procedure_step_start_date": None,
                        "manufacturer_model_name": None,
                    },
                    metadata=metadata,
                    frames_json="[]",
                )
            )
    return instances


async def load_to(url: str, target: int) -> int:
    """Grow the index at ``url`` to ``target`` instances; return how many it holds."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        index = SqlIndex(session_factory(engine))
        await index.ensure_default_partition()
        async with engine.connect() as conn:
            have = int((await conn.execute(select(func.count()).select_from(Instance))).scalar_one())
        started = time.perf_counter()
        study = have // PER_STUDY
        loaded = 0
        while have < target:
            await index.add_instances(study_instances(study), replace=False)
            study += 1
            have += PER_STUDY
            loaded += PER_STUDY
            if study % 200 == 0:
                rate = loaded / max(time.perf_counter() - started, 1e-9)
                say(f"  {have} instances ({rate:.0f}/s)", err=True)
        if loaded:
            # Fresh planner statistics, as autovacuum (PostgreSQL) would gather a minute or so after a bulk
            # load: measured right after it, PostgreSQL still plans for the table it analyzed last (1,000 rows)
            # and scans the identity index over the whole partition instead of ix_instances_sop (18 ms, not
            # 0.1 ms, at 100,000 instances).
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
        return have
    finally:
        await engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def queries(studies: int, rng: random.Random) -> dict[str, list[str]]:
    """Query paths per scenario, each naming data that exists (so every answer has results)."""
    picks = [rng.randrange(studies) for _ in range(400)]
    return {
        "studies PatientID": [f"/v2/studies?PatientID=PAT{n // 2:07d}" for n in picks],
        "studies AccessionNumber": [f"/v2/studies?AccessionNumber=ACC{n:08d}" for n in picks],
        "studies StudyInstanceUID": [f"/v2/studies?StudyInstanceUID={_uid(1, n)}" for n in picks],
        "instances SOPInstanceUID": [f"/v2/instances?SOPInstanceUID={_uid(3, n, 1, 7)}" for n in picks],
        "series of a study": [f"/v2/studies/{_uid(1, n)}/series" for n in picks],
        "instances of a series": [f"/v2/studies/{_uid(1, n)}/series/{_uid(2, n, 0)}/instances" for n in picks],
        # Same page size at every index size (every study matches), so only the index grows.
        "studies StudyDate range (limit 10)": ["/v2/studies?StudyDate=20000101-20241231&limit=10"] * 100,
        "studies newest (limit 10)": ["/v2/studies?limit=10"] * 100,
    }


def measure(port: int, paths: list[str]) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies: list[float] = []
    for number, path in enumerate(paths):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Accept": "application/dicom+json"})
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or not json.loads(body):
            raise SystemExit(f"{path}: {response.status} {body[:200]!r}")
        if number >= 10:  # the first requests warm caches and connections
            latencies.append(elapsed)
    conn.close()
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.95) - 1]


def run_server(url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("dicom-emulator") or str(Path(sys.executable).with_name("dicom-emulator"))
    command = [exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--dimse-port", str(_free_port())]
    command += ["--data-dir", str(data_dir), "--database-url", url, "--workers", "1", "--silent"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            probe.request("GET", "/health")
            if probe.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.1)
        finally:
            probe.close()
    process.kill()
    raise SystemExit("the emulator did not become healthy")


async def ensure_postgres_database(url: str) -> None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return
    import asyncpg

    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database):
            await conn.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--sizes", default="1000,100000", help="index sizes (instances), ascending")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    url = normalize_database_url(args.database_url)
    asyncio.run(ensure_postgres_database(url))
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: dict[str, list[tuple[float, float]]] = {}
    data_dir = Path(tempfile.mkdtemp(prefix="qido-scale-"))
    try:
        for size in sizes:
            started = time.perf_counter()
            have = asyncio.run(load_to(url, size))
            say(f"index holds {have} instances (loaded in {time.perf_counter() - started:.0f} s)", err=True)
            port = _free_port()
            server = run_server(args.database_url, data_dir, port)
            try:
                for name, paths in queries(have // PER_STUDY, random.Random(args.seed)).items():
                    rows.setdefault(name, []).append(measure(port, paths))
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    header = "| query | " + " | ".join(f"{s:,} p50 / p95 ms" for s in sizes) + " | p95 growth |"
    say(header)
    say("|---|" + "---|" * len(sizes) + "---|")
    for name, results in rows.items():
        cells = " | ".join(f"{p50:.2f} / {p95:.2f}" for p50, p95 in results)
        growth = results[-1][1] / results[0][1]
        say(f"| {name} | {cells} | {growth:.2f}× |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
