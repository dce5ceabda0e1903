"""UPS-RS through the HTTP API (azure-behaviour §9), on SQLite and PostgreSQL, plus the service API of the DIMSE
gateway."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydicom.dataset import Dataset

from dicom_emulator.dicom.json_model import json_to_dataset
from dicom_emulator.dicom.ups.states import ProcedureStepState
from dicom_emulator.services.workitems import (
    WorkitemBadRequestError,
    WorkitemConflictError,
    WorkitemNotFoundError,
    WorkitemService,
)
from dicom_emulator.storage.workitem_store import StaleWorkitemError
from tests.factories import new_uid
from tests.workitem_samples import (
    cancel_body,
    code_item,
    create_body,
    keyword_body,
    performed_procedure,
    progress_for_cancel,
    request_item,
)

DICOM_JSON = "application/dicom+json"
HEADERS = {"Accept": DICOM_JSON, "Content-Type": DICOM_JSON}
BODY_HEADERS = {"Content-Type": DICOM_JSON}
TEXT = "text/plain; charset=utf-8"

NOT_FOUND = "The workitem instance is not found."
NOT_CLAIMED = "The target URI did not reference a claimed Workitem."
NOT_QUERYABLE = (
    "Invalid query: AttributeId {0} is not queryable.  If the parameter is an attribute keyword, check the casing as "
    "they are case-sensitive. The conformance statement has a list of supported query parameters, attributes and "
    "the levels."
)


def uid_error(name: str) -> str:
    return (
        f"Dicom element '{name}' failed validation for VR 'UI': DICOM Identifier is invalid. Value length should not "
        "exceed the maximum length of 64 characters. Value should contain characters in '0'-'9' and '.'. Each "
        "component must start with non-zero number."
    )


def body(*datasets: dict[str, Any]) -> bytes:
    return json.dumps(list(datasets)).encode()


def json_literal(message: str) -> bytes:
    """The JSON string Azure's System.Text.Json writes (apostrophes as \\u0027)."""
    return json.dumps(message).replace("'", "\\u0027").encode()


def assert_message(response: httpx.Response, status: int, message: str, *, warning: bool) -> None:
    """A workitem service answer: JSON string body, optionally echoed in ``Warning: 299 {host}: "{message}"``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == json_literal(message)
    if warning:
        assert response.headers["warning"] == f'299 testserver: "{message}"'
    else:
        assert "warning" not in response.headers


def assert_text(response: httpx.Response, status: int, message: str) -> None:
    """An error raised before the workitem service: plain text, as Azure's exception middleware answers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == TEXT
    assert response.text == message
    assert "warning" not in response.headers


async def send(
    client: httpx.AsyncClient, method: str, url: str, *, content: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    """Send with exactly these headers: httpx adds "Accept: */*" unless it is removed."""
    request = client.build_request(method, url, content=content, headers=headers or {})
    if "accept" not in {k.lower() for k in (headers or {})}:
        del request.headers["accept"]
    return await client.send(request)


def assert_empty(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.content == b""
    assert "content-type" not in response.headers


async def create(client: httpx.AsyncClient, uid: str | None = None, **overrides: Any) -> str:
    uid = uid or new_uid()
    r = await client.post(f"/v2/workitems?{uid}", content=body(create_body(uid, **overrides)), headers=HEADERS)
    assert r.status_code == 201, r.text
    return uid


async def retrieve(client: httpx.AsyncClient, uid: str) -> dict[str, Any]:
    r = await client.get(f"/v2/workitems/{uid}", headers={"Accept": DICOM_JSON})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def change_state(client: httpx.AsyncClient, uid: str, transaction_uid: str, state: str) -> httpx.Response:
    request = {"00081195": {"vr": "UI", "Value": [transaction_uid]}, "00741000": {"vr": "CS", "Value": [state]}}
    return await client.put(f"/v2/workitems/{uid}/state", content=body(request), headers=BODY_HEADERS)


async def claim(client: httpx.AsyncClient, uid: str) -> str:
    transaction_uid = new_uid()
    r = await change_state(client, uid, transaction_uid, "IN PROGRESS")
    assert r.status_code == 200, r.text
    return transaction_uid


async def complete(client: httpx.AsyncClient, uid: str, transaction_uid: str | None = None) -> str:
    """Claim (unless already claimed), add the performed procedure the final state needs, complete."""
    transaction_uid = transaction_uid or await claim(client, uid)
    assert (await update(client, uid, {"00741216": performed_procedure()}, transaction_uid)).status_code == 200
    assert (await change_state(client, uid, transaction_uid, "COMPLETED")).status_code == 200
    return uid


async def update(
    client: httpx.AsyncClient, uid: str, dataset: dict[str, Any], transaction_uid: str | None = None
) -> httpx.Response:
    url = f"/v2/workitems/{uid}" + (f"?{transaction_uid}" if transaction_uid else "")
    return await client.post(url, content=body(dataset), headers=BODY_HEADERS)


async def cancel(client: httpx.AsyncClient, uid: str, dataset: dict[str, Any] | None = None) -> httpx.Response:
    payload = cancel_body() if dataset is None else dataset
    return await client.post(f"/v2/workitems/{uid}/cancelrequest", content=body(payload), headers=BODY_HEADERS)


def state_of(workitem: dict[str, Any]) -> str:
    return workitem["00741000"]["Value"][0]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------------------------
# Create (azure-behaviour §9.2)
# ---------------------------------------------------------------------------------------------------------------


class TestCreate:
    async def test_created_with_uid_in_query(self, client: httpx.AsyncClient) -> None:
        uid = new_uid()
        r = await client.post(f"/v2/workitems?{uid}", content=body(create_body(uid)), headers=HEADERS)
        assert_empty(r, 201)
        assert r.headers["location"] == f"http://testserver/v2/workitems/{uid}"
        assert r.headers["content-location"] == f"http://testserver/v2/workitems/{uid}"
        assert r.headers["api-supported-versions"] == "1.0-prerelease, 1, 2"

    async def test_server_sets_its_attributes(self, client: httpx.AsyncClient) -> None:
        uid = await create(client, **{"00741202": {"vr": "LO", "Value": ["MyList"]}})
        workitem = await retrieve(client, uid)
        assert workitem["00080016"] == {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.34.6.1"]}
        assert workitem["00080018"] == {"vr": "UI", "Value": [uid]}
        assert workitem["00741202"] == {"vr": "LO", "Value": ["worklist"]}
        assert workitem["00741000"] == {"vr": "CS", "Value": ["SCHEDULED"]}
        assert re.fullmatch(r"\d{14}\.\d{6}", workitem["00404010"]["Value"][0])
        assert "00081195" not in workitem

    async def test_uid_from_body_without_query(self, client: httpx.AsyncClient) -> None:
        uid = new_uid()
        r = await client.post("/v2/workitems", content=body(create_body(uid)), headers=HEADERS)
        assert_empty(r, 201)
        assert r.headers["location"] == f"http://testserver/v2/workitems/{uid}"

    async def test_uid_from_query_fills_the_body(self, client: httpx.AsyncClient) -> None:
        uid = new_uid()
        payload = create_body(**{"00080018": None})
        r = await client.post(f"/v2/workitems?{uid}", content=body(payload), headers=HEADERS)
        assert r.status_code == 201
        assert (await retrieve(client, uid))["00080018"]["Value"] == [uid]

    async def test_keyword_keyed_body_like_the_csharp_client(self, client: httpx.AsyncClient) -> None:
        uid = new_uid()
        payload = keyword_body(create_body(uid, **{"0040A370": {"vr": "SQ", "Value": [request_item("KW-ACC")]}}))
        assert "SOPInstanceUID" in payload and "ReferencedRequestSequence" in payload
        r = await client.post(f"/v2/workitems?{uid}", content=body(payload), headers=HEADERS)
        assert_empty(r, 201)
        workitem = await retrieve(client, uid)
        assert workitem["0040A370"]["Value"][0]["00080050"] == {"vr": "SH", "Value": ["KW-ACC"]}
        found = await client.get("/v2/workitems", params={"0040A370.00080050": "kw-acc"}, headers=HEADERS)
        assert [w["00080018"]["Value"][0] for w in found.json()] == [uid]

    async def test_only_the_first_dataset_is_used(self, client: httpx.AsyncClient) -> None:
        first, second = new_uid(), new_uid()
        r = await client.post("/v2/workitems", content=body(create_body(first), create_body(second)), headers=HEADERS)
        assert r.headers["location"].endswith(first)
        assert (await client.get(f"/v2/workitems/{second}", headers=HEADERS)).status_code == 404

    async def test_v1_routes(self, client: httpx.AsyncClient) -> None:
        uid = new_uid()
        r = await client.post(f"/v1/workitems?{uid}", content=body(create_body(uid)), headers=HEADERS)
        assert r.headers["location"] == f"http://testserver/v1/workitems/{uid}"
        assert (await client.get(f"/v1/workitems/{uid}", headers=HEADERS)).status_code == 200

    async def test_duplicate(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        r = await client.post(f"/v2/workitems?{uid}", content=body(create_body(uid)), headers=HEADERS)
        assert_message(
            r, 409, "The workitem instance already exists. Try creating using a different UID.", warning=False
        )
        assert r.content == b'"The workitem instance already exists. Try creating using a different UID."'

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"00741200": None}, "The required tag '(0074,1200)' is missing."),
            ({"00404041": {"vr": "CS"}}, "The value for tag '(0040,4041)' is missing."),
            ({"00081195": {"vr": "UI", "Value": ["1.2.3"]}}, "The attribute with tag '(0008,1195)' must be empty."),
            ({"00081195": None}, "The required tag '(0008,1195)' is missing."),
            ({"00380014": {"vr": "SQ"}}, "The value for tag '(0038,0014)' is missing."),
            ({"0040A370": {"vr": "SQ", "Value": [{}]}}, "The required tag '(0020,000d)' is missing."),
        ],
    )
    async def test_requirements(self, client: httpx.AsyncClient, overrides: dict[str, Any], message: str) -> None:
        uid = new_uid()
        payload = create_body(uid, **overrides)
        r = await client.post(f"/v2/workitems?{uid}", content=body(payload), headers=HEADERS)
        assert_message(r, 400, message, warning=False)
        assert (await client.get(f"/v2/workitems/{uid}", headers=HEADERS)).status_code == 404

    async def test_requirement_message_escapes_apostrophes(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/v2/workitems", content=body(create_body(**{"00741200": None})), headers=HEADERS)
        assert r.content == b'"The required tag \\u0027(0074,1200)\\u0027 is missing."'

    async def test_uid_mismatch_is_plain_text(self, client: httpx.AsyncClient) -> None:
        r = await client.post(f"/v2/workitems?{new_uid()}", content=body(create_body(new_uid())), headers=HEADERS)
        assert_text(r, 400, "SOPInstanceUID in the payload does not match the workitem query parameter.")

    @pytest.mark.parametrize("query", ["?abc", "?1.2.3.a", "?1.2.3-4&x=1", "?%20"])
    async def test_invalid_query_uid(self, client: httpx.AsyncClient, query: str) -> None:
        r = await client.post(f"/v2/workitems{query}", content=body(create_body()), headers=HEADERS)
        assert_text(r, 400, uid_error("WorkitemInstanceUid"))

    @pytest.mark.parametrize("content_type", [None, "application/json", "application/dicom", "text/plain"])
    async def test_content_type(self, client: httpx.AsyncClient, content_type: str | None) -> None:
        headers = {"Accept": DICOM_JSON} | ({"Content-Type": content_type} if content_type else {})
        r = await client.post("/v2/workitems", content=body(create_body()), headers=headers)
        assert_empty(r, 415)

    async def test_content_type_parameters_are_fine(self, client: httpx.AsyncClient) -> None:
        headers = {"Accept": DICOM_JSON, "Content-Type": "Application/DICOM+JSON; charset=utf-8"}
        r = await client.post("/v2/workitems", content=body(create_body()), headers=headers)
        assert r.status_code == 201

    @pytest.mark.parametrize("accept", [None, "application/dicom", "text/plain"])
    async def test_not_acceptable(self, client: httpx.AsyncClient, accept: str | None) -> None:
        headers = {"Content-Type": DICOM_JSON} | ({"Accept": accept} if accept else {})
        r = await send(client, "POST", "/v2/workitems", content=body(create_body()), headers=headers)
        assert_empty(r, 406)

    @pytest.mark.parametrize("accept", ["*/*", "application/json", "application/*"])
    async def test_acceptable(self, client: httpx.AsyncClient, accept: str) -> None:
        headers = {"Content-Type": DICOM_JSON, "Accept": accept}
        assert (await client.post("/v2/workitems", content=body(create_body()), headers=headers)).status_code == 201

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"[]", "The query parameter '' is invalid. The field dicomDatasets must be a string or array type with "
             "a minimum length of '1'."),
            (b"", "The query parameter '' is invalid. A non-empty request body is required."),
            (b"[{", "The syntax of the request body is invalid."),
            (b'{"00100010": {"vr": "PN"}}', "The syntax of the request body is invalid."),
            (b'[{"00100010": {"Value": []}}]',
             "The DICOM JSON dataset is invalid: the attribute '00100010' has no 'vr'."),
        ],
    )  # fmt: skip
    async def test_bad_bodies(self, client: httpx.AsyncClient, content: bytes, message: str) -> None:
        r = await client.post("/v2/workitems", content=content, headers=HEADERS)
        assert_text(r, 400, message)

    async def test_body_errors_come_before_accept(self, client: httpx.AsyncClient) -> None:
        r = await send(client, "POST", "/v2/workitems", content=b"[]", headers={"Content-Type": DICOM_JSON})
        assert r.status_code == 400


# ---------------------------------------------------------------------------------------------------------------
# Retrieve
# ---------------------------------------------------------------------------------------------------------------


class TestRetrieve:
    async def test_retrieve(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        r = await client.get(f"/v2/workitems/{uid}", headers={"Accept": DICOM_JSON})
        assert r.status_code == 200
        assert r.headers["content-type"] == DICOM_JSON
        workitem = r.json()
        assert isinstance(workitem, dict)
        assert workitem["00100010"] == {"vr": "PN"}
        assert workitem["00380014"] == {"vr": "SQ", "Value": [{}]}

    async def test_transaction_uid_is_never_returned(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        await claim(client, uid)
        workitem = await retrieve(client, uid)
        assert "00081195" not in workitem
        assert state_of(workitem) == "IN PROGRESS"

    async def test_not_found(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"/v2/workitems/{new_uid()}", headers={"Accept": DICOM_JSON})
        assert_message(r, 404, NOT_FOUND, warning=False)
        assert r.content == b'"The workitem instance is not found."'

    async def test_invalid_uid(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/v2/workitems/1.2.abc", headers={"Accept": DICOM_JSON})
        assert_text(r, 400, uid_error("WorkitemInstanceUid"))

    @pytest.mark.parametrize("accept", [None, "application/dicom"])
    async def test_not_acceptable(self, client: httpx.AsyncClient, accept: str | None) -> None:
        uid = await create(client)
        r = await send(client, "GET", f"/v2/workitems/{uid}", headers={"Accept": accept} if accept else {})
        assert_empty(r, 406)

    async def test_accept_is_checked_before_the_uid(self, client: httpx.AsyncClient) -> None:
        assert_empty(await send(client, "GET", "/v2/workitems/not-a-uid"), 406)


# ---------------------------------------------------------------------------------------------------------------
# Change State (azure-behaviour §9.3)
# ---------------------------------------------------------------------------------------------------------------


class TestChangeState:
    async def test_claim(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        r = await change_state(client, uid, new_uid(), "IN PROGRESS")
        assert_message(r, 200, "", warning=False)
        assert r.content == b'""'
        assert state_of(await retrieve(client, uid)) == "IN PROGRESS"

    @pytest.mark.parametrize("target", ["COMPLETED", "CANCELED"])
    async def test_scheduled_to_final_without_claim(self, client: httpx.AsyncClient, target: str) -> None:
        uid = await create(client)
        r = await change_state(client, uid, new_uid(), target)
        assert_message(r, 400, f"The workitem instance can not transition to '{target}' state: C301.", warning=True)

    async def test_claim_twice(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        transaction_uid = await claim(client, uid)
        r = await change_state(client, uid, transaction_uid, "IN PROGRESS")
        assert_message(r, 400, "The workitem instance can not transition to 'IN PROGRESS' state: C302.", warning=True)
        r = await change_state(client, uid, new_uid(), "IN PROGRESS")
        assert_message(r, 400, "The workitem instance can not transition to 'IN PROGRESS' state: C301.", warning=True)

    async def test_complete_needs_final_state_attributes(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        transaction_uid = await claim(client, uid)
        r = await change_state(client, uid, transaction_uid, "COMPLETED")
        assert_message(r, 400, "The value for tag '(0074,1216)' is missing.", warning=True)
        assert state_of(await retrieve(client, uid)) == "IN PROGRESS"

    async def test_complete_with_wrong_transaction_uid(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        await claim(client, uid)
        r = await change_state(client, uid, new_uid(), "COMPLETED")
        assert_message(r, 400, "The workitem instance can not transition to 'COMPLETED' state: C301.", warning=True)

    async def test_complete_then_warning_then_refusals(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        transaction_uid = await claim(client, uid)
        assert (await update(client, uid, {"00741216": performed_procedure()}, transaction_uid)).status_code == 200
        r = await change_state(client, uid, transaction_uid, "COMPLETED")
        assert_message(r, 200, "", warning=False)
        assert state_of(await retrieve(client, uid)) == "COMPLETED"
        # B306: already completed → 200 with the message and a Warning header.
        r = await change_state(client, uid, transaction_uid, "COMPLETED")
        assert_message(r, 200, "The workitem instance is already in the final state 'COMPLETED'. B306.", warning=True)
        r = await change_state(client, uid, transaction_uid, "IN PROGRESS")
        assert_message(r, 400, "The workitem instance can not transition to 'IN PROGRESS' state: C300.", warning=True)
        r = await change_state(client, uid, transaction_uid, "CANCELED")
        assert_message(r, 400, "The workitem instance can not transition to 'CANCELED' state: C300.", warning=True)
        r = await change_state(client, uid, new_uid(), "COMPLETED")
        assert_message(r, 400, "The workitem instance can not transition to 'COMPLETED' state: C301.", warning=True)

    async def test_cancel_in_progress_then_warning(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        transaction_uid = await claim(client, uid)
        r = await change_state(client, uid, transaction_uid, "CANCELED")
        assert_message(r, 400, "The value for tag '(0074,1002)' is missing.", warning=True)
        assert (await update(client, uid, {"00741002": progress_for_cancel()}, transaction_uid)).status_code == 200
        assert_message(await change_state(client, uid, transaction_uid, "CANCELED"), 200, "", warning=False)
        assert state_of(await retrieve(client, uid)) == "CANCELED"
        r = await change_state(client, uid, transaction_uid, "CANCELED")
        assert_message(r, 200, "The workitem instance is already in the final state 'CANCELED'. B304.", warning=True)
        r = await change_state(client, uid, transaction_uid, "COMPLETED")
        assert_message(r, 400, "The workitem instance can not transition to 'COMPLETED' state: C300.", warning=True)

    @pytest.mark.parametrize(
        ("request_body", "message"),
        [
            ({"00741000": {"vr": "CS", "Value": ["IN PROGRESS"]}}, "The required tag '(0008,1195)' is missing."),
            ({"00081195": {"vr": "UI"}, "00741000": {"vr": "CS", "Value": ["IN PROGRESS"]}},
             "The value for tag '(0008,1195)' is missing."),
            ({"00081195": {"vr": "UI", "Value": ["1.2"]}}, "The required tag '(0074,1000)' is missing."),
            ({"00081195": {"vr": "UI", "Value": ["1.2"]}, "00741000": {"vr": "CS", "Value": ["SCHEDULED"]}},
             "Expected value '(0074,1000)' to be one of the following values: [IN PROGRESS,CANCELED,COMPLETED]"),
        ],
    )  # fmt: skip
    async def test_invalid_requests(
        self, client: httpx.AsyncClient, request_body: dict[str, Any], message: str
    ) -> None:
        uid = await create(client)
        r = await client.put(f"/v2/workitems/{uid}/state", content=body(request_body), headers=BODY_HEADERS)
        assert_message(r, 400, message, warning=True)

    async def test_request_is_validated_before_lookup(self, client: httpx.AsyncClient) -> None:
        r = await client.put(f"/v2/workitems/{new_uid()}/state", content=body({}), headers=BODY_HEADERS)
        assert_message(r, 400, "The required tag '(0008,1195)' is missing.", warning=True)

    async def test_not_found_has_a_warning(self, client: httpx.AsyncClient) -> None:
        r = await change_state(client, new_uid(), new_uid(), "IN PROGRESS")
        assert_message(r, 404, NOT_FOUND, warning=True)

    async def test_keyword_keyed_request(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        request = {
            "TransactionUID": {"vr": "UI", "Value": [new_uid()]},
            "ProcedureStepState": {"vr": "CS", "Value": ["IN PROGRESS"]},
        }
        r = await client.put(f"/v2/workitems/{uid}/state", content=body(request), headers=HEADERS)
        assert r.status_code == 200

    async def test_invalid_uid_and_content_type(self, client: httpx.AsyncClient) -> None:
        r = await client.put("/v2/workitems/x.1/state", content=body({}), headers=BODY_HEADERS)
        assert_text(r, 400, uid_error("WorkitemInstanceUid"))
        r = await client.put("/v2/workitems/1.2/state", content=body({}), headers={"Content-Type": "application/json"})
        assert_empty(r, 415)


# ---------------------------------------------------------------------------------------------------------------
# Cancel request (azure-behaviour §9.4)
# ---------------------------------------------------------------------------------------------------------------


class TestCancel:
    async def test_cancel_scheduled(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        r = await cancel(client, uid)
        assert_message(r, 202, "The workitem instance has been cancelled.", warning=False)
        workitem = await retrieve(client, uid)
        assert state_of(workitem) == "CANCELED"
        assert re.fullmatch(r"\d{14}\.\d{6}", workitem["00404052"]["Value"][0])
        assert workitem["0074100E"] == {"vr": "SQ", "Value": [{"00741238": {"vr": "LT", "Value": ["Test Cancel"]}}]}
        (progress,) = workitem["00741002"]["Value"]
        assert progress["00741008"]["Value"] == [
            {
                "0074100A": {"vr": "UR", "Value": ["dicom-users://test-user"]},
                "0074100C": {"vr": "LO", "Value": ["Dicom Test User"]},
            }
        ]

    async def test_cancel_twice(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        assert (await cancel(client, uid)).status_code == 202
        r = await cancel(client, uid)
        assert_message(r, 409, "The UPS is already in the requested state of CANCELED.", warning=True)
        assert r.content == b'"The UPS is already in the requested state of CANCELED."'

    async def test_cancel_in_progress(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        await claim(client, uid)
        r = await cancel(client, uid)
        assert_message(r, 400, "The workitem instance can not transition to 'Canceled' state: C312.", warning=False)
        assert state_of(await retrieve(client, uid)) == "IN PROGRESS"

    async def test_cancel_completed(self, client: httpx.AsyncClient) -> None:
        uid = await complete(client, await create(client))
        r = await cancel(client, uid)
        assert_message(r, 400, "The workitem instance can not transition to 'Canceled' state: C311.", warning=False)

    async def test_not_found(self, client: httpx.AsyncClient) -> None:
        r = await cancel(client, new_uid())
        assert_message(r, 404, NOT_FOUND, warning=False)

    async def test_empty_cancel_dataset(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        assert (await cancel(client, uid, {})).status_code == 202
        assert (await retrieve(client, uid))["0074100E"]["Value"] == [{"00741238": {"vr": "LT"}}]

    async def test_bad_requests(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        r = await client.post(f"/v2/workitems/{uid}/cancelrequest", content=b"[]", headers=BODY_HEADERS)
        assert r.status_code == 400
        r = await client.post("/v2/workitems/abc/cancelrequest", content=body({}), headers=BODY_HEADERS)
        assert_text(r, 400, uid_error("WorkitemInstanceUid"))
        assert_empty(await client.post(f"/v2/workitems/{uid}/cancelrequest", content=body({})), 415)


# ---------------------------------------------------------------------------------------------------------------
# Update (azure-behaviour §9.5)
# ---------------------------------------------------------------------------------------------------------------


class TestUpdate:
    async def test_update_scheduled(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        before = await retrieve(client, uid)
        change = {
            "00741202": {"vr": "LO", "Value": ["WORKLIST-SCHEDULED"]},
            "00404025": {"vr": "SQ", "Value": [code_item("ROOM1")]},
        }
        r = await update(client, uid, change)
        assert_message(r, 200, "", warning=False)
        assert r.headers["content-location"] == f"http://testserver/v2/workitems/{uid}"
        after = await retrieve(client, uid)
        assert after["00741202"] == {"vr": "LO", "Value": ["WORKLIST-SCHEDULED"]}
        # ScheduledProcedureStepModificationDateTime is refreshed by the server.
        assert after["00404010"]["Value"][0] > before["00404010"]["Value"][0]
        found = await client.get("/v2/workitems", params={"00404025.00080100": "room1"}, headers=HEADERS)
        assert [w["00080018"]["Value"][0] for w in found.json()] == [uid]

    async def test_update_scheduled_with_transaction_uid(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        r = await update(client, uid, {}, new_uid())
        assert_message(r, 400, "Invalid TransactionUID for the specified Workitem Instance UID.", warning=True)

    async def test_update_in_progress(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        transaction_uid = await claim(client, uid)
        change = {"00741202": {"vr": "LO", "Value": ["WORKLIST-IN-PROGRESS"]}}
        assert_message(await update(client, uid, change), 400, NOT_CLAIMED, warning=True)
        assert_message(await update(client, uid, change, new_uid()), 400, NOT_CLAIMED, warning=True)
        r = await update(client, uid, change, transaction_uid)
        assert_message(r, 200, "", warning=False)
        assert (await retrieve(client, uid))["00741202"]["Value"] == ["WORKLIST-IN-PROGRESS"]

    async def test_not_found_is_400(self, client: httpx.AsyncClient) -> None:
        r = await update(client, new_uid(), {})
        assert_message(r, 400, NOT_CLAIMED, warning=True)

    async def test_completed(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        transaction_uid = await claim(client, uid)
        await complete(client, uid, transaction_uid)
        r = await update(client, uid, {}, transaction_uid)
        message = (
            "The submitted request is inconsistent with the current state of the Workitem. "
            "The UPS is already COMPLETED."
        )
        assert_message(r, 400, message, warning=True)

    async def test_canceled_is_409(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        await cancel(client, uid)
        r = await update(client, uid, {})
        message = (
            "The submitted request is inconsistent with the current state of the Workitem. "
            "The UPS is already in the requested state of CANCELED."
        )
        assert_message(r, 409, message, warning=True)

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"00080018": {"vr": "UI", "Value": ["1.2"]}}, "The attribute with tag '(0008,0018)' cannot be present."),
            ({"00741000": {"vr": "CS", "Value": ["COMPLETED"]}},
             "The attribute with tag '(0074,1000)' cannot be present."),
            ({"00100020": {"vr": "LO", "Value": ["P"]}}, "The attribute with tag '(0010,0020)' cannot be present."),
            ({"00741204": {"vr": "LO"}}, "The value for tag '(0074,1204)' is missing."),
        ],
    )  # fmt: skip
    async def test_update_requirements(self, client: httpx.AsyncClient, change: dict[str, Any], message: str) -> None:
        uid = await create(client)
        assert_message(await update(client, uid, change), 400, message, warning=True)

    async def test_invalid_uids(self, client: httpx.AsyncClient) -> None:
        r = await update(client, "1.2.x", {})
        assert_text(r, 400, uid_error("WorkitemInstanceUid"))
        r = await update(client, new_uid(), {}, "abc")
        assert_text(r, 400, uid_error("TransactionUid"))

    async def test_content_type(self, client: httpx.AsyncClient) -> None:
        assert_empty(await client.post(f"/v2/workitems/{new_uid()}", content=body({})), 415)


# ---------------------------------------------------------------------------------------------------------------
# Search (azure-behaviour §9.6)
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
async def worklist(client: httpx.AsyncClient) -> dict[str, str]:
    """Three workitems, created a → b → c (search answers newest first)."""
    study_b = new_uid()
    a = await create(
        client,
        **{
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Jonathan^Smith^Stone Hall^^"}]},
            "00100020": {"vr": "LO", "Value": ["PID-A"]},
            "0040A370": {"vr": "SQ", "Value": [request_item("ACC-A1", "RP-A"), request_item("ACC-A2", "RP-A2")]},
            "00404005": {"vr": "DT", "Value": ["20240115083000"]},
            "00404025": {"vr": "SQ", "Value": [code_item("MAMMO1")]},
            "00404026": {"vr": "SQ", "Value": [code_item("MG")]},
        },
    )
    b = await create(
        client,
        **{
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Anna"}]},
            "00100020": {"vr": "LO", "Value": ["PID-B"]},
            "0040A370": {"vr": "SQ", "Value": [request_item("ACC-B", "RP-B", study_b)]},
            "00404005": {"vr": "DT", "Value": ["20240116140000"]},
            "00404027": {"vr": "SQ", "Value": [code_item("SITE-2")]},
            "0020000D": {"vr": "UI", "Value": [study_b]},
        },
    )
    c = await create(
        client,
        **{
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
            "00100020": {"vr": "LO", "Value": ["PID-C"]},
            "00404005": {"vr": "DT", "Value": ["20240120090000"]},
        },
    )
    return {"a": a, "b": b, "c": c, "study_b": study_b}


async def search(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get("/v2/workitems", params=params, headers={"Accept": DICOM_JSON})


def uids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["00080018"]["Value"][0] for item in response.json()]


class TestSearch:
    async def test_all_newest_first(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        r = await search(client)
        assert r.headers["content-type"] == DICOM_JSON
        assert uids(r) == [worklist["c"], worklist["b"], worklist["a"]]

    async def test_patient_name_exact(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        assert uids(await search(client, PatientName="doe^jane")) == [worklist["c"]]
        assert uids(await search(client, PatientName="MULLER^ANNA")) == [worklist["b"]]  # accent-insensitive
        assert (await search(client, PatientName="Doe")).status_code == 204

    async def test_patient_name_fuzzy(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        assert uids(await search(client, PatientName="sto", fuzzymatching="true")) == [worklist["a"]]
        assert uids(await search(client, PatientName="jon smi", FuzzyMatching="true")) == [worklist["a"]]
        assert uids(await search(client, PatientName="ann", fuzzymatching="true")) == [worklist["b"]]
        assert (await search(client, PatientName="nathan", fuzzymatching="true")).status_code == 204

    async def test_patient_id(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        assert uids(await search(client, PatientID="pid-b")) == [worklist["b"]]
        assert uids(await search(client, **{"00100020": "PID-A"})) == [worklist["a"]]

    async def test_accession_number_in_any_request_item(
        self, client: httpx.AsyncClient, worklist: dict[str, str]
    ) -> None:
        assert uids(await search(client, **{"0040A370.00080050": "ACC-A2"})) == [worklist["a"]]
        assert uids(await search(client, **{"0040A370.00080050": "acc-a1"})) == [worklist["a"]]
        assert uids(await search(client, **{"ReferencedRequestSequence.AccessionNumber": "ACC-B"})) == [worklist["b"]]
        assert (await search(client, **{"0040A370.00080050": "ACC-A"})).status_code == 204

    async def test_requested_procedure_id(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        assert uids(await search(client, **{"0040A370.00401001": "RP-B"})) == [worklist["b"]]

    async def test_station_codes(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        assert uids(await search(client, **{"00404025.00080100": "mammo1"})) == [worklist["a"]]
        assert uids(await search(client, **{"ScheduledStationClassCodeSequence.CodeValue": "MG"})) == [worklist["a"]]
        assert uids(await search(client, **{"00404027.00080100": "SITE-2"})) == [worklist["b"]]

    async def test_scheduled_start_range(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        key = "ScheduledProcedureStepStartDateTime"
        # Azure parses each value into one DateTime (missing parts at their minimum): a range ends at the upper
        # value's first instant and a single value matches exactly (BaseQueryParser).
        assert uids(await search(client, **{key: "20240115-20240116"})) == [worklist["a"]]
        assert uids(await search(client, **{key: "20240115-20240116143000"})) == [worklist["b"], worklist["a"]]
        assert (await search(client, **{key: "20240116"})).status_code == 204
        assert uids(await search(client, **{key: "20240116140000"})) == [worklist["b"]]
        assert uids(await search(client, **{key: "20240116-"})) == [worklist["c"], worklist["b"]]
        assert uids(await search(client, **{"00404005": "-202401150830"})) == [worklist["a"]]
        assert (await search(client, **{key: "2023"})).status_code == 204

    async def test_procedure_step_state(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        await claim(client, worklist["b"])
        await cancel(client, worklist["c"])
        assert uids(await search(client, ProcedureStepState="SCHEDULED")) == [worklist["a"]]
        assert uids(await search(client, ProcedureStepState="in progress")) == [worklist["b"]]
        assert uids(await search(client, **{"00741000": "CANCELED"})) == [worklist["c"]]

    async def test_study_instance_uid(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        assert uids(await search(client, StudyInstanceUID=worklist["study_b"])) == [worklist["b"]]

    async def test_combined(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        assert uids(await search(client, PatientID="PID-A", ProcedureStepState="SCHEDULED")) == [worklist["a"]]
        assert (await search(client, PatientID="PID-A", ProcedureStepState="CANCELED")).status_code == 204

    async def test_paging(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        assert uids(await search(client, limit=2)) == [worklist["c"], worklist["b"]]
        assert uids(await search(client, limit=2, offset=2)) == [worklist["a"]]
        assert uids(await search(client, offset=1)) == [worklist["b"], worklist["a"]]
        r = await search(client, offset=3)
        assert_empty(r, 204)

    async def test_returned_attributes(self, client: httpx.AsyncClient, worklist: dict[str, str]) -> None:
        await claim(client, worklist["a"])
        (item,) = (await search(client, PatientID="PID-A")).json()
        assert "00081195" not in item
        assert "00400400" not in item  # CommentsOnTheScheduledProcedureStep is not a return key
        assert "00741000" in item and "0040A370" in item and "00404005" in item
        (item,) = (await search(client, PatientID="PID-A", includefield="00400400")).json()
        assert item["00400400"] == {"vr": "LT", "Value": ["SampleComments"]}
        (item,) = (await search(client, PatientID="PID-A", includefield="all")).json()
        assert "00081195" not in item
        assert item == await retrieve(client, worklist["a"])

    async def test_empty_is_204(self, client: httpx.AsyncClient) -> None:
        assert_empty(await search(client), 204)
        assert_empty(await search(client, PatientID="20200101"), 204)

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"Modality": "CT"}, NOT_QUERYABLE.format("Modality")),
            ({"PatientName": "Foo", "limit": "500"},
             "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
            ({"limit": "0"}, "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
            ({"offset": "-1"},
             "The query parameter 'Offset' is invalid. The field Offset must be between 0 and 9.223372036854776E+18."),
            ({"PatientID": ""}, "Invalid query: AttributeId 'PatientID' has empty string value that is not supported."),
            ({"includefield": "00400400.00080100"}, "Sequential dicom tags are currently not supported."),
        ],
    )  # fmt: skip
    async def test_errors_are_plain_text(self, client: httpx.AsyncClient, params: dict[str, str], message: str) -> None:
        assert_text(await search(client, **params), 400, message)

    async def test_not_acceptable(self, client: httpx.AsyncClient) -> None:
        assert_empty(await send(client, "GET", "/v2/workitems"), 406)
        assert_empty(await send(client, "GET", "/v2/workitems", headers={"Accept": "application/dicom"}), 406)
        # Model binding of the reserved parameters comes first, the filters after the Accept check.
        assert (await send(client, "GET", "/v2/workitems?limit=500")).status_code == 400
        assert_empty(await send(client, "GET", "/v2/workitems?Modality=CT"), 406)


# ---------------------------------------------------------------------------------------------------------------
# Subscriptions: Azure has no routes for them
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/workitems/1.2.3/subscribers/MYAE"),
        ("DELETE", "/v2/workitems/1.2.3/subscribers/MYAE"),
        ("POST", "/v2/workitems/1.2.840.10008.5.1.4.34.5/subscribers/MYAE/suspend"),
        ("GET", "/v2/subscribers/MYAE"),
    ],
)
async def test_subscriptions_are_not_routes(client: httpx.AsyncClient, method: str, path: str) -> None:
    r = await client.request(method, path, headers=HEADERS)
    assert r.status_code == 404
    assert r.content == b""


# ---------------------------------------------------------------------------------------------------------------
# Optimistic concurrency and the service API of the DIMSE gateway
# ---------------------------------------------------------------------------------------------------------------


def service_of(app: FastAPI) -> WorkitemService:
    return app.state.runtime.workitems  # type: ignore[no-any-return]


class TestConcurrency:
    async def test_stale_version_is_refused(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        uid = await create(client)
        service = service_of(app)
        row = await service.store.get(service.partition_key, uid)
        assert row is not None and row.version == 1
        await service.store.replace(
            row, state=row.state, transaction_uid=None, dataset_json=row.dataset_json, values={}
        )
        with pytest.raises(StaleWorkitemError):
            await service.store.replace(
                row, state=row.state, transaction_uid=None, dataset_json=row.dataset_json, values={}
            )

    async def test_concurrent_claims_one_wins(self, client: httpx.AsyncClient) -> None:
        uid = await create(client)
        results = await asyncio.gather(*(change_state(client, uid, new_uid(), "IN PROGRESS") for _ in range(5)))
        statuses = sorted(r.status_code for r in results)
        assert statuses.count(200) == 1
        assert set(statuses) <= {200, 400, 409}

    async def test_update_conflict_is_409(
        self, client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        uid = await create(client)
        service = service_of(app)
        stale = await service.store.get(service.partition_key, uid)
        assert (await update(client, uid, {"00741202": {"vr": "LO", "Value": ["FIRST"]}})).status_code == 200

        async def get_stale(partition_key: int, sop_uid: str) -> object:
            return stale

        monkeypatch.setattr(service.store, "get", get_stale)
        r = await update(client, uid, {"00741202": {"vr": "LO", "Value": ["SECOND"]}})
        message = "The submitted request is inconsistent with the current state of the Workitem."
        assert_message(r, 409, message, warning=True)
        r = await change_state(client, uid, new_uid(), "IN PROGRESS")
        assert_message(
            r, 409, "The workitem instance is currently being updated. Please try again later.", warning=True
        )
        r = await cancel(client, uid)
        assert_message(
            r, 409, "The workitem instance is currently being updated. Please try again later.", warning=True
        )


class TestGatewayApi:
    async def test_find_scheduled(self, client: httpx.AsyncClient, app: FastAPI, worklist: dict[str, str]) -> None:
        service = service_of(app)
        await claim(client, worklist["b"])

        async def found(**keys: Any) -> list[str]:
            return [record.uid for record in await service.find_scheduled(**keys)]

        assert await found() == [worklist["c"], worklist["a"]]
        assert await found(states=None) == [worklist["c"], worklist["b"], worklist["a"]]
        assert await found(states=[ProcedureStepState.IN_PROGRESS]) == [worklist["b"]]
        assert await found(patient_name="JON*") == [worklist["a"]]
        assert await found(patient_name="doe^jan?") == [worklist["c"]]
        assert await found(patient_name="*", patient_id="") == [worklist["c"], worklist["a"]]
        assert await found(patient_id="PID-C") == [worklist["c"]]
        assert await found(accession_number="ACC-A2") == [worklist["a"]]
        assert await found(accession_number="ACC-A*") == [worklist["a"]]
        assert await found(accession_number="A*2") == [worklist["a"]]
        assert await found(accession_number="ACC-B", states=None) == [worklist["b"]]
        assert await found(requested_procedure_id="rp-a") == [worklist["a"]]
        assert await found(station_name="MAMMO1", station_class="mg") == [worklist["a"]]
        assert await found(start="20240115") == [worklist["a"]]
        assert await found(start="20240115-20240131") == [worklist["c"], worklist["a"]]
        assert await found(study_instance_uid=f"{worklist['study_b']}\\1.2.3", states=None) == [worklist["b"]]
        assert await found(limit=1, offset=1) == [worklist["a"]]

    async def test_find_scheduled_wildcard_stays_inside_an_item(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        uid = await create(client, **{"0040A370": {"vr": "SQ", "Value": [request_item("AB"), request_item("X2")]}})
        service = service_of(app)
        assert [r.uid for r in await service.find_scheduled(accession_number="A*")] == [uid]
        assert await service.find_scheduled(accession_number="A*2") == []

    async def test_find_scheduled_records(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        uid = await create(client, **{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}})
        (record,) = await service_of(app).find_scheduled(patient_name="DOE^JOHN")
        assert record.uid == uid
        assert record.state is ProcedureStepState.SCHEDULED
        dataset = record.to_dataset()
        assert isinstance(dataset, Dataset)
        assert str(dataset.PatientName) == "Doe^John"
        assert "TransactionUID" not in dataset

    async def test_mpps_flow_completed(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        uid = await create(client)
        service = service_of(app)
        claimed = await service.set_state(uid, ProcedureStepState.IN_PROGRESS)
        transaction_uid = claimed.record.transaction_uid
        assert transaction_uid and claimed.record.state is ProcedureStepState.IN_PROGRESS
        assert state_of(await retrieve(client, uid)) == "IN PROGRESS"
        # A REST client holding the generated Transaction UID may update the claimed workitem.
        assert (await update(client, uid, {}, transaction_uid)).status_code == 200
        with pytest.raises(WorkitemBadRequestError) as info:
            await service.set_state(uid, "COMPLETED")
        assert info.value.message == "The value for tag '(0074,1216)' is missing."
        done = await service.set_state(uid, "COMPLETED", updates=json_to_dataset({"00741216": performed_procedure()}))
        assert done.record.state is ProcedureStepState.COMPLETED and done.warning is None
        again = await service.set_state(uid, ProcedureStepState.COMPLETED)
        assert (again.warning, again.ups_status) == (
            "The workitem instance is already in the final state 'COMPLETED'. B306.",
            "B306",
        )

    async def test_mpps_completed_without_checks(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        uid = await create(client)
        service = service_of(app)
        await service.set_state(uid, "IN PROGRESS")
        done = await service.set_state(uid, "COMPLETED", check_final_state=False)
        assert done.record.state is ProcedureStepState.COMPLETED

    async def test_mpps_flow_discontinued(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        uid = await create(client)
        service = service_of(app)
        await service.set_state(uid, ProcedureStepState.IN_PROGRESS)
        result = await service.set_state(uid, ProcedureStepState.CANCELED, reason="Patient refused")
        assert result.record.state is ProcedureStepState.CANCELED
        workitem = await retrieve(client, uid)
        assert workitem["0074100E"]["Value"] == [{"00741238": {"vr": "LT", "Value": ["Patient refused"]}}]
        assert "00404052" in workitem["00741002"]["Value"][0]

    async def test_set_state_refusals(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        uid = await create(client)
        service = service_of(app)
        with pytest.raises(WorkitemBadRequestError) as info:
            await service.set_state(uid, ProcedureStepState.COMPLETED)
        assert (info.value.message, info.value.ups_status) == (
            "The workitem instance can not transition to 'COMPLETED' state: C310.",
            "C310",
        )
        first = await service.set_state(uid, ProcedureStepState.IN_PROGRESS)
        with pytest.raises(WorkitemBadRequestError) as info:
            await service.set_state(uid, ProcedureStepState.IN_PROGRESS)
        assert info.value.ups_status == "C302"
        with pytest.raises(WorkitemBadRequestError) as info:
            await service.set_state(uid, ProcedureStepState.COMPLETED, transaction_uid="1.2.3")
        assert info.value.ups_status == "C301"
        with pytest.raises(WorkitemBadRequestError):
            await service.set_state(uid, ProcedureStepState.SCHEDULED)
        with pytest.raises(WorkitemNotFoundError):
            await service.set_state(new_uid(), ProcedureStepState.IN_PROGRESS)
        assert first.record.transaction_uid == (await service.get(uid)).transaction_uid

    async def test_failures_carry_http_status_classes(self) -> None:
        from dicom_emulator.api.errors import status_for

        assert status_for(WorkitemBadRequestError("x")) == 400
        assert status_for(WorkitemNotFoundError("x")) == 404
        assert status_for(WorkitemConflictError("x")) == 409
