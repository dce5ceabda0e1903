"""QIDO-RS binding: the decoded query-string pairs of one request to a :class:`ParsedQuery`.

:func:`parse_qido` turns the pairs into typed, already-normalized conditions, or raises
:class:`~dicom_emulator.errors.QueryValidationError` carrying Azure's exact message (azure-behaviour §4.2-§4.4).

Checks run in Azure's order: reserved-parameter binding errors (model state) first, then repeated filter
keys, then each filter in query-string order, then the route-UID checks, then ``includefield``.

``loose=True`` enables two PS3.4 matching kinds Azure does not support (azure-behaviour §4.4 "Not supported"):
wildcard matching (PS3.4 C.2.2.2.4) and list-of-UID matching (PS3.4 C.2.2.2.2).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from dicom_emulator.dicom.query.attributes import parse_attribute_id
from dicom_emulator.dicom.query.conditions import Condition, ParsedQuery
from dicom_emulator.dicom.query.dotnet import convert_bool, convert_integer, fold_key, trim
from dicom_emulator.dicom.query.messages import (
    MSG_DISALLOWED_SERIES_UID,
    MSG_DISALLOWED_STUDY_UID,
    MSG_DUPLICATE_ATTRIBUTE,
    MSG_DUPLICATE_ATTRIBUTE_ID,
    MSG_DUPLICATE_KEY,
    MSG_EMPTY_VALUE,
    MSG_INCLUDE_ALL_WITH_OTHERS,
    MSG_INCLUDE_FIELD_UNKNOWN,
    MSG_INVALID_QUERY_STRING_VALUE,
    MSG_NOT_QUERYABLE,
    MSG_QUERY_DISABLED,
    MSG_RANGE,
    MSG_UNKNOWN_QUERY_PARAMETER,
    MSG_VALUE_INVALID,
    MSG_VALUE_NOT_VALID_FOR,
    OFFSET_MAX_TEXT,
)
from dicom_emulator.dicom.query.values import parse_value
from dicom_emulator.dicom.tags import CORE_QUERY_TAGS, SERIES_INSTANCE_UID, STUDY_INSTANCE_UID, QueryResource, QueryTag
from dicom_emulator.errors import QueryValidationError

DEFAULT_LIMIT = 100  # QueryLimit.DefaultQueryResultCount (azure-behaviour §4.2, §10.5)
MAX_LIMIT = 200  # QueryLimit.MaxQueryResultCount
INCLUDE_FIELD_ALL = "all"

# ---------------------------------------------------------------------------------------------------------------
# Reserved parameters (QueryOptions model binding + validation)
# ---------------------------------------------------------------------------------------------------------------

_RESERVED = {"FUZZYMATCHING": "FuzzyMatching", "INCLUDEFIELD": "IncludeField", "LIMIT": "Limit", "OFFSET": "Offset"}


def _bind(
    name: str,
    values: list[str] | None,
    convert: Callable[[str], object | None],
    errors: dict[str, str],
) -> object | None:
    """ASP.NET Core simple-type binding of the first value; records the model-state error under ``name``."""
    if values is None:
        return None
    attempted = ",".join(values)
    first = values[0]
    if not trim(first):
        errors[name] = MSG_VALUE_INVALID.format(attempted)
        return None
    result = convert(first)
    if result is None:
        errors[name] = MSG_VALUE_NOT_VALID_FOR.format(attempted, name)
    return result


def _group_parameters(params: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Request.Query: keys grouped case-insensitively, first spelling kept, in order of first appearance."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for key, value in params:
        folded = fold_key(key)
        if folded not in groups:
            groups[folded] = (key, [])
        groups[folded][1].append(value)
    return list(groups.values())


# ---------------------------------------------------------------------------------------------------------------
# Entry points: one filter, a whole query string
# ---------------------------------------------------------------------------------------------------------------


def parse_filter(
    query_tag: QueryTag, attribute_id: str, value: str, *, fuzzy: bool = False, loose: bool = False
) -> Condition:
    """The condition of one filter on a queryable tag, ``value`` already trimmed (QueryParser.ParseFilterCondition
    after the tag checks). Also how DIMSE C-FIND turns an identifier key the index holds into a condition (loose)."""
    if not value:
        raise QueryValidationError(MSG_EMPTY_VALUE.format(attribute_id))
    condition = parse_value(query_tag, value, fuzzy, loose)
    if condition is None:
        raise QueryValidationError(MSG_UNKNOWN_QUERY_PARAMETER.format(attribute_id))
    return condition


def parse_qido(
    params: Sequence[tuple[str, str]],
    resource: QueryResource,
    *,
    loose: bool = False,
    extended_tags: Sequence[QueryTag] = (),
    disabled_extended_tags: Collection[int] = (),
    route_has_study: bool = False,
    route_has_series: bool = False,
) -> ParsedQuery:
    """Validate the decoded query-string pairs of a QIDO request to ``resource`` (azure-behaviour §4.2-§4.4).

    ``extended_tags`` are the *ready* extended query tags (azure-behaviour §7.5); ``disabled_extended_tags`` holds the
    tags among them whose query status is disabled. Raises :class:`QueryValidationError` with Azure's message.
    """
    groups = _group_parameters(params)

    # 1. Reserved parameters (names case-insensitive, §4.2). All are bound and validated, then the first
    #    model-state error in key order (FuzzyMatching, Limit, Offset) is reported.
    reserved: dict[str, list[str]] = {}
    filters: list[tuple[str, list[str]]] = []
    for key, values in groups:
        attribute_id = trim(key)
        canonical = _RESERVED.get(fold_key(attribute_id))
        if canonical is None:
            filters.append((attribute_id, values))
        else:
            reserved.setdefault(canonical, []).extend(values)

    errors: dict[str, str] = {}
    fuzzy_value = _bind("FuzzyMatching", reserved.get("FuzzyMatching"), convert_bool, errors)
    limit_value = _bind("Limit", reserved.get("Limit"), lambda s: convert_integer(s, 32), errors)
    offset_value = _bind("Offset", reserved.get("Offset"), lambda s: convert_integer(s, 64), errors)
    if isinstance(limit_value, int) and not 1 <= limit_value <= MAX_LIMIT:
        errors["Limit"] = MSG_RANGE.format("Limit", 1, MAX_LIMIT)
    if isinstance(offset_value, int) and offset_value < 0:
        errors["Offset"] = MSG_RANGE.format("Offset", 0, OFFSET_MAX_TEXT)
    for name in ("FuzzyMatching", "Limit", "Offset"):
        if name in errors:
            raise QueryValidationError(MSG_INVALID_QUERY_STRING_VALUE.format(name, errors[name]))
    fuzzy = bool(fuzzy_value)
    limit = limit_value if isinstance(limit_value, int) else DEFAULT_LIMIT
    offset = offset_value if isinstance(offset_value, int) else 0

    # 2. Filters: a key sent twice is rejected before any value is parsed (QueryOptionsExtensions).
    filter_values: dict[str, str] = {}
    for attribute_id, values in filters:
        if len(values) > 1:
            raise QueryValidationError(MSG_DUPLICATE_ATTRIBUTE_ID.format(attribute_id))
        if attribute_id in filter_values:
            raise QueryValidationError(MSG_DUPLICATE_KEY.format(attribute_id))
        filter_values[attribute_id] = trim(values[0])

    # 3. Each filter in order (QueryParser.ParseFilterCondition). Only tags of the levels this resource filters on
    #    are candidates (azure-behaviour §4.3); core tags win over extended ones.
    levels = resource.filter_levels
    candidates: dict[int, QueryTag] = {}
    for query_tag in (*CORE_QUERY_TAGS, *extended_tags):
        if query_tag.level in levels:
            candidates.setdefault(query_tag.tag, query_tag)
    extended_ids = {t.tag for t in extended_tags} - {t.tag for t in CORE_QUERY_TAGS}
    disabled = set(disabled_extended_tags) & extended_ids

    conditions: dict[int, Condition] = {}
    filter_keys: dict[int, str] = {}
    for attribute_id, value in filter_values.items():
        tag = parse_attribute_id(attribute_id)
        if tag is None:
            raise QueryValidationError(MSG_UNKNOWN_QUERY_PARAMETER.format(attribute_id))
        candidate = candidates.get(tag)
        if candidate is None:
            raise QueryValidationError(MSG_NOT_QUERYABLE.format(attribute_id))
        if tag in disabled:
            raise QueryValidationError(MSG_QUERY_DISABLED.format(attribute_id))
        condition = parse_filter(candidate, attribute_id, value, fuzzy=fuzzy, loose=loose)
        if tag in conditions:
            raise QueryValidationError(MSG_DUPLICATE_ATTRIBUTE.format(attribute_id))
        conditions[tag] = condition
        filter_keys[tag] = attribute_id

    # 4. Route UIDs are added as filters after the query ones (QueryParser.AddInstanceUidFilter/AddSeriesUidFilter).
    #    With the levels of azure-behaviour §4.3 a UID already in the route is rejected as "not queryable" above;
    # this is the
    #    remaining guard.
    if route_has_study and STUDY_INSTANCE_UID in conditions:
        raise QueryValidationError(MSG_DISALLOWED_STUDY_UID)
    if route_has_series and SERIES_INSTANCE_UID in conditions:
        raise QueryValidationError(MSG_DISALLOWED_SERIES_UID)

    # 5. includefield: comma-separated and/or repeated (AggregateCsvModelBinder, entries trimmed).
    fields = [trim(part) for value in reserved.get("IncludeField", []) for part in value.split(",")]
    include_all = False
    include_tags: list[int] = []
    if any(f.lower() == INCLUDE_FIELD_ALL for f in fields):
        if len(fields) > 1:
            raise QueryValidationError(MSG_INCLUDE_ALL_WITH_OTHERS)
        include_all = True
    else:
        for field in fields:
            tag = parse_attribute_id(field)
            if tag is None:
                raise QueryValidationError(MSG_INCLUDE_FIELD_UNKNOWN.format(field))
            if tag not in include_tags:
                include_tags.append(tag)

    return ParsedQuery(
        resource=resource,
        conditions=tuple(conditions.values()),
        limit=limit,
        offset=offset,
        fuzzy=fuzzy,
        include_all=include_all,
        include_tags=tuple(include_tags),
        filter_keys=filter_keys,
    )
