"""``/emulator/``: a page to look at the store (emulator-only; Azure has no UI).

Server-rendered HTML with no script: the studies (with thumbnails), one study's series, the newest
change-feed entries and operations, the fault rules in force, and links to the API docs and, when
``--ohif-url`` is set, to the OHIF viewer. Everything comes through the same services as the API.
"""

from __future__ import annotations

import json
from collections import Counter
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from dicom_emulator import __version__
from dicom_emulator.api.deps import RuntimeDep
from dicom_emulator.dicom.identifiers import validate_uid
from dicom_emulator.dicom.rendering import Viewport
from dicom_emulator.dicom.tags import QueryResource
from dicom_emulator.errors import EmulatorError
from dicom_emulator.runtime import Runtime
from dicom_emulator.services.operations import operation_json
from dicom_emulator.services.partitions import DEFAULT_PARTITION_KEY

router = APIRouter(tags=["emulator"], include_in_schema=False)

MAX_STUDIES = 200  # one QIDO page (Azure's maximum limit)
FEED_ENTRIES = 20
OPERATIONS = 10
THUMBNAIL = Viewport(96, 96)

_STYLE = """
body{font:14px system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
header{background:#0b3d62;color:#fff;padding:12px 20px;display:flex;gap:24px;align-items:baseline}
header h1{font-size:18px;margin:0}header a{color:#cde6ff}
main{padding:16px 20px}section{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:0 0 16px;padding:12px}
h2{font-size:16px;margin:0 0 8px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:middle}
th{font-weight:600;background:#f6f8fa}td.uid{font-family:monospace;font-size:12px;word-break:break-all}
img.thumb{width:96px;height:96px;object-fit:contain;background:#000;display:block}
.empty{color:#57606a}.badge{display:inline-block;padding:0 6px;border-radius:10px;background:#ddf4ff}
"""


def _value(item: dict[str, Any], tag: str) -> str:
    """First value of a DICOM JSON attribute as text (a person name's alphabetic group)."""
    values = item.get(tag, {}).get("Value") or []
    if not values:
        return ""
    first = values[0]
    if isinstance(first, dict):
        return str(first.get("Alphabetic", ""))
    return "\\".join(str(v) for v in values) if tag == "00080061" else str(first)


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


async def _search(runtime: Runtime, resource: QueryResource, params: list[tuple[str, str]], **uids: str) -> list[Any]:
    request = await runtime.search.parse(params, resource, study_uid=uids.get("study"), series_uid=uids.get("series"))
    return await runtime.search.search(request, api_major=2, study_uid=uids.get("study"), series_uid=uids.get("series"))


def _page(runtime: Runtime, title: str, body: str) -> HTMLResponse:
    settings = runtime.settings
    ohif = f'<a href="{escape(settings.ohif_url)}">OHIF viewer</a>' if settings.ohif_url else ""
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · dicom-emulator</title>
<style>{_STYLE}</style></head>
<body><header><h1>dicom-emulator {escape(__version__)}</h1>
<a href="/emulator/">Studies</a><a href="/emulator/docs">API docs</a>{ohif}
<span>DICOMweb: <code>{escape(settings.base_url)}/v2</code></span></header>
<main>{body}</main></body></html>"""
    return HTMLResponse(html)


def _thumb(src: str) -> str:
    # A study without pixel data has no thumbnail (404): hide the image instead of a broken icon.
    return f'<img class="thumb" src="{escape(src)}" alt="" loading="lazy" onerror="this.style.visibility=\'hidden\'">'


@router.get("/emulator/", response_class=HTMLResponse)
@router.get("/emulator", response_class=HTMLResponse)
async def emulator_page(request: Request, runtime: RuntimeDep, study: str | None = None) -> Response:
    if study is not None:
        return await _study_page(runtime, validate_uid(study, "StudyInstanceUid"))
    studies = await _search(
        runtime,
        QueryResource.ALL_STUDIES,
        [("limit", str(MAX_STUDIES)), ("includefield", "ModalitiesInStudy,NumberOfStudyRelatedInstances")],
    )
    series_counts: Counter[str] = Counter()
    offset = 0
    while True:  # series per study, from the series search (NumberOfStudyRelatedSeries is not computed)
        page = await _search(runtime, QueryResource.ALL_SERIES, [("limit", "200"), ("offset", str(offset))])
        series_counts.update(_value(s, "0020000D") for s in page)
        if len(page) < 200 or offset >= 5000:
            break
        offset += 200
    ohif = runtime.settings.ohif_url
    rows = []
    for item in studies:
        uid = _value(item, "0020000D")
        link = f"/emulator/?study={uid}"
        viewer = (
            f' · <a href="{escape(ohif.rstrip("/"))}/viewer?StudyInstanceUIDs={escape(uid)}">open in OHIF</a>'
            if ohif
            else ""
        )
        rows.append(
            f"<tr><td>{_thumb(f'/emulator/thumbnails/{uid}')}</td>"
            f'<td><a href="{escape(link)}">{escape(_value(item, "00100010") or "(no name)")}</a>{viewer}</td>'
            f"<td>{escape(_value(item, '00100020'))}</td><td>{escape(_date(_value(item, '00080020')))}</td>"
            f"<td>{escape(_value(item, '00081030'))}</td><td>{escape(_value(item, '00080061'))}</td>"
            f"<td>{series_counts.get(uid, 0)}</td><td>{escape(_value(item, '00201208'))}</td>"
            f'<td class="uid">{escape(uid)}</td></tr>'
        )
    studies_html = (
        "<table><tr><th></th><th>Patient</th><th>Patient ID</th><th>Date</th><th>Description</th>"
        "<th>Modalities</th><th>Series</th><th>Instances</th><th>Study Instance UID</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else '<p class="empty">No studies yet. Store some with STOW-RS (POST /v2/studies) or '
        "<code>dicom-emulator import PATH</code>.</p>"
    )
    more = f" (first {MAX_STUDIES})" if len(studies) >= MAX_STUDIES else ""
    body = (
        f'<section id="studies"><h2>Studies <span class="badge">{len(studies)}{more}</span></h2>'
        f"{studies_html}</section>"
        + await _feed_section(runtime)
        + await _operations_section(runtime)
        + _faults_section(request)
    )
    return _page(runtime, "Studies", body)


async def _study_page(runtime: Runtime, study: str) -> Response:
    series = await _search(
        runtime, QueryResource.STUDY_SERIES, [("includefield", "NumberOfSeriesRelatedInstances")], study=study
    )
    if not series:
        return _page(runtime, "Study not found", f'<section><p class="empty">No study {escape(study)}.</p></section>')
    rows = []
    for item in series:
        uid = _value(item, "0020000E")
        count = _value(item, "00201209")
        rows.append(
            f"<tr><td>{_thumb(f'/emulator/thumbnails/{study}/{uid}')}</td>"
            f"<td>{escape(_value(item, '00200011'))}</td><td>{escape(_value(item, '00080060'))}</td>"
            f'<td>{escape(_value(item, "0008103E"))}</td><td>{count}</td><td class="uid">{escape(uid)}</td></tr>'
        )
    ohif = runtime.settings.ohif_url
    viewer = (
        f' <a href="{escape(ohif.rstrip("/"))}/viewer?StudyInstanceUIDs={escape(study)}">Open in OHIF</a>'
        if ohif
        else ""
    )
    body = (
        f'<section id="series"><h2>Series of study <code>{escape(study)}</code>{viewer}</h2>'
        "<table><tr><th></th><th>Number</th><th>Modality</th><th>Description</th><th>Instances</th>"
        "<th>Series Instance UID</th></tr>" + "".join(rows) + "</table>"
        f'<p><a href="/v2/studies/{escape(study)}/metadata">Metadata (DICOM JSON)</a></p></section>'
    )
    return _page(runtime, f"Study {study}", body)


async def _feed_section(runtime: Runtime) -> str:
    latest = await runtime.changefeed.latest(by_time=False)
    entries = []
    if latest is not None:
        entries = await runtime.changefeed.by_sequence(max(0, latest.sequence - FEED_ENTRIES), FEED_ENTRIES)
    rows = "".join(
        f"<tr><td>{e.sequence}</td><td>{escape(e.timestamp.isoformat(timespec='seconds'))}</td>"
        f'<td>{escape(e.action)}</td><td>{escape(e.state)}</td><td class="uid">{escape(e.sop_uid)}</td></tr>'
        for e in reversed(entries)
    )
    table = (
        "<table><tr><th>Sequence</th><th>Time (UTC)</th><th>Action</th><th>State</th><th>SOP Instance UID</th></tr>"
        + rows
        + "</table>"
        if rows
        else '<p class="empty">The change feed is empty.</p>'
    )
    return f'<section id="changefeed"><h2>Change feed (newest {FEED_ENTRIES})</h2>{table}</section>'


async def _operations_section(runtime: Runtime) -> str:
    jobs = await runtime.operations.recent(OPERATIONS)
    rows = "".join(
        f'<tr><td class="uid">{escape(op["operationId"])}</td><td>{escape(op["type"])}</td>'
        f"<td>{escape(op['status'])}</td><td>{op['percentComplete']}%</td><td>{escape(op['createdTime'])}</td></tr>"
        for op in (operation_json(job, api_major=2) for job in jobs)
    )
    table = (
        "<table><tr><th>Operation</th><th>Type</th><th>Status</th><th>Progress</th><th>Created</th></tr>"
        + rows
        + "</table>"
        if rows
        else '<p class="empty">No operations yet (adding an extended query tag starts one).</p>'
    )
    return f'<section id="operations"><h2>Operations</h2>{table}</section>'


def _faults_section(request: Request) -> str:
    injector = getattr(request.app.state, "faults", None)
    rules = injector.state()["rules"] if injector is not None else []
    if not rules:
        return ""
    text = escape(json.dumps(rules, indent=1))
    return f'<section id="faults"><h2>Fault injection: {len(rules)} rule(s) in force</h2><pre>{text}</pre></section>'


@router.get("/emulator/thumbnails/{study}")
@router.get("/emulator/thumbnails/{study}/{series}")
async def page_thumbnail(runtime: RuntimeDep, study: str, series: str | None = None) -> Response:
    """The page's thumbnails (any mode; the DICOMweb ``/thumbnail`` routes need ``--loose``)."""
    study = validate_uid(study, "StudyInstanceUid")
    series = validate_uid(series, "SeriesInstanceUid") if series is not None else None
    try:
        # The page shows the default partition (Microsoft.Default), where DIMSE and unpartitioned clients store.
        image = await runtime.pixels.thumbnail(
            DEFAULT_PARTITION_KEY, study, series, None, "image/jpeg", viewport=THUMBNAIL, quality=85
        )
    except EmulatorError:
        return Response(status_code=404)
    return Response(image, media_type="image/jpeg", headers={"Cache-Control": "max-age=60"})
