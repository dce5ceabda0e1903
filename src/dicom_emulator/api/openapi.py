"""OpenAPI declarations of what the routes read by hand: query parameters, request bodies, path parameter values.

Routes parse their query strings and bodies themselves, so that a bad value gets Azure's answer (a plain-text 400
in Azure's words) rather than FastAPI's validation error. That leaves FastAPI's generated schema blind to them. The
fragments here are passed as ``openapi_extra`` (documentation only: FastAPI neither binds nor validates them), and
:func:`complete_schema` adds what belongs to every route (the version segment's values, the partition name, the
UID shape), so that ``/emulator/openapi.json`` describes the API well enough for a client generator or a fuzzer
(tests/fuzz) to reach the handlers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from dicom_emulator.api.versions import SUPPORTED_VERSIONS
from dicom_emulator.dicom.tags import CORE_QUERY_TAGS, QueryResource
from dicom_emulator.dicom.ups.search import SEARCH_KEYS

JsonSchema = dict[str, Any]

_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
# PS3.5 §9.1: digits and dots, at most 64 characters (what validate_uid accepts; anything else is Azure's 400).
UID_SCHEMA: JsonSchema = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)*$", "maxLength": 64}
_UID_PATH_PARAMS = {"study", "series", "instance", "uid"}


def query(name: str, schema: JsonSchema, description: str = "") -> JsonSchema:
    """An optional query parameter."""
    param: JsonSchema = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


def header(name: str, schema: JsonSchema, description: str = "") -> JsonSchema:
    """An optional request header."""
    return {**query(name, schema, description), "in": "header"}


def integer(low: int | None = None, high: int | None = None, *, int64: bool = False) -> JsonSchema:
    schema: JsonSchema = {"type": "integer", "format": "int64" if int64 else "int32"}
    if low is not None:
        schema["minimum"] = low
    schema["maximum"] = high if high is not None else (_INT64_MAX if int64 else _INT32_MAX)
    return schema


def paging(max_limit: int, *, default_limit: int = 100) -> list[JsonSchema]:
    return [
        query("limit", {**integer(1, max_limit), "default": default_limit}),
        query("offset", {**integer(0, int64=True), "default": 0}),
    ]


def extra(*parameters: JsonSchema, body: JsonSchema | None = None) -> dict[str, Any]:
    """The ``openapi_extra`` of a route: its hand-read query parameters and request body."""
    fragment: dict[str, Any] = {}
    if parameters:
        fragment["parameters"] = list(parameters)
    if body is not None:
        fragment["requestBody"] = body
    return fragment


def body(*media_types: str, schema: JsonSchema, required: bool = True) -> JsonSchema:
    return {"required": required, "content": {media_type: {"schema": schema} for media_type in media_types}}


_BOOLEAN: JsonSchema = {"type": "boolean"}
_STRING: JsonSchema = {"type": "string"}
_BINARY: JsonSchema = {"type": "string", "format": "binary"}
# includefield: comma-separated and/or repeated (azure-behaviour §4.2).
_INCLUDE_FIELD = query(
    "includefield",
    {"type": "array", "items": _STRING},
    "Keywords or 8-hex tags to return, comma-separated or repeated; 'all' alone for the full set.",
)
_FUZZY = query("fuzzymatching", {**_BOOLEAN, "default": False}, "Prefix matching on the words of person names.")


def qido_parameters(resource: QueryResource) -> list[JsonSchema]:
    """The reserved parameters and the core attributes this route filters on (azure-behaviour §4.2, §4.3).

    Ready extended query tags add more attributes at run time; they are not in the schema.
    """
    levels = resource.filter_levels
    filters = [
        query(tag.keyword, _STRING, f"({tag.hex[:4]},{tag.hex[4:]}) {tag.vr}; or by its 8-hex tag.")
        for tag in CORE_QUERY_TAGS
        if tag.level in levels
    ]
    return [*paging(200), _FUZZY, _INCLUDE_FIELD, *filters]


def workitem_search_parameters() -> list[JsonSchema]:
    """Reserved parameters and the workitem query attributes (azure-behaviour §9.6)."""
    filters = [query(key.hex_path if key.multiple else key.keyword, _STRING, key.vr) for key in SEARCH_KEYS]
    return [*paging(200), _FUZZY, _INCLUDE_FIELD, *filters]


def changefeed_parameters() -> list[JsonSchema]:
    """v1: offset (sequence) and limit 1..100; v2: a time window, offset and limit 1..200 (azure-behaviour §6.1)."""
    time = {"type": "string", "format": "date-time"}
    return [
        query("offset", {**integer(0, int64=True), "default": 0}),
        query("limit", integer(1, 200), "1..100 in v1 (default 10), 1..200 in v2 (default 100)."),
        query("startTime", time, "v2: entries at or after this time (with a time zone)."),
        query("endTime", time, "v2: entries before this time (with a time zone)."),
        INCLUDE_METADATA,
    ]


INCLUDE_METADATA = query("includeMetadata", {**_BOOLEAN, "default": True})
QUALITY = query("quality", {**integer(1, 100), "default": 100}, "JPEG quality.")
WINDOW = query("window", _STRING, "Emulator extension (--loose): 'center,width[,function]'.")
VIEWPORT = query("viewport", _STRING, "'vw,vh', either may be empty.")

# DICOM JSON (PS3.18 §F.2): one object per dataset, attributes keyed by 8-hex tag.
_DICOM_JSON_DATASET: JsonSchema = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {"vr": _STRING, "Value": {"type": "array"}, "InlineBinary": _STRING},
    },
}
DICOM_JSON_BODY = body("application/dicom+json", schema={"type": "array", "items": _DICOM_JSON_DATASET})
# Azure managed service: the study is deleted this many milliseconds after the store (azure-behaviour §2.2).
STOW_HEADERS = (
    header("msdicom-expiry-time-milliseconds", integer(1, int64=True)),
    header("msdicom-expiry-option", {"type": "string", "enum": ["RelativeToNow"]}),
    header("msdicom-expiry-level", {"type": "string", "enum": ["Study"]}),
)
STOW_BODY = body(
    "application/dicom",
    "multipart/related",
    schema=_BINARY,
    required=False,
)
EXTENDED_QUERY_TAGS_BODY = body(
    "application/json",
    schema={
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "path": {**_STRING, "description": "Keyword or 8-hex tag."},
                "vr": _STRING,
                "privateCreator": {"type": ["string", "null"]},
                "level": {"type": "string", "enum": ["Study", "Series", "Instance"]},
            },
            "required": ["path", "level"],
        },
    },
)
EXTENDED_QUERY_TAG_UPDATE_BODY = body(
    "application/json",
    schema={
        "type": "object",
        "properties": {"queryStatus": {"type": "string", "enum": ["Enabled", "Disabled"]}},
        "required": ["queryStatus"],
    },
)
BULK_UPDATE_BODY = body(
    "application/json",
    schema={
        "type": "object",
        "properties": {
            "studyInstanceUids": {"type": "array", "items": UID_SCHEMA, "minItems": 1, "maxItems": 50},
            "changeDataset": _DICOM_JSON_DATASET,
        },
        "required": ["studyInstanceUids", "changeDataset"],
    },
)
EXPORT_BODY = body(
    "application/json",
    schema={
        "type": "object",
        "properties": {
            "source": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["identifiers"]},
                    "settings": {
                        "type": "object",
                        "properties": {"values": {"type": "array", "items": _STRING}},
                    },
                },
            },
            "destination": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["azureblob"]},
                    "settings": {
                        "type": "object",
                        "properties": {
                            "blobContainerUri": _STRING,
                            "connectionString": _STRING,
                            "blobContainerName": _STRING,
                            "useManagedIdentity": _BOOLEAN,
                        },
                    },
                },
            },
        },
        "required": ["source", "destination"],
    },
)
FAULTS_BODY = body(
    "application/json",
    schema={
        "type": "object",
        "properties": {"seed": {"type": "integer"}, "rules": {"type": "array", "items": {"type": "object"}}},
    },
)
TOKEN_BODY = body(
    "application/x-www-form-urlencoded",
    schema={
        "type": "object",
        "properties": {
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "client_id": _STRING,
            "client_secret": _STRING,
            "scope": _STRING,
        },
    },
)


def complete_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare what every route shares, in the generated schema (changed in place and returned).

    * ``{version}``: the supported segments (other values are 400 or 404 before any route runs);
    * ``{partitionName}``: read from the path by the partition dependency, so FastAPI does not declare it;
    * UID path segments: the UID shape (anything else is Azure's 400, worded by validate_uid);
    * no ``422``: validation errors are answered 400 (api/errors.py).
    """
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            params: list[JsonSchema] = operation.setdefault("parameters", [])
            names = {p["name"] for p in params if p.get("in") == "path"}
            if "{partitionName}" in path and "partitionName" not in names:
                params.append({"name": "partitionName", "in": "path", "required": True, "schema": _STRING})
            for param in params:
                if param.get("in") != "path":
                    continue
                if param["name"] == "version":
                    param["schema"] = {"type": "string", "enum": list(SUPPORTED_VERSIONS)}
                elif param["name"] in _UID_PATH_PARAMS:
                    param["schema"] = dict(UID_SCHEMA)
            operation.get("responses", {}).pop("422", None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the generated schema completed by :func:`complete_schema` (built once, on first request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_schema(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
