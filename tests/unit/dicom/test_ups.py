"""The pure UPS-RS package: state table (every cell), requirement tables and checks, dataset edits, search parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from tests.workitem_samples import (
    cancel_body,
    code_item,
    create_body,
    performed_procedure,
    progress_for_cancel,
    request_item,
)

from dicom_emulator.dicom.json_model import dataset_to_json, json_to_dataset
from dicom_emulator.dicom.query import DateRange, FuzzyName, SingleValue
from dicom_emulator.dicom.tags import tag_text
from dicom_emulator.dicom.ups.attributes import get_text
from dicom_emulator.dicom.ups.edits import (
    apply_cancel_request,
    merge_update,
    prepare_create,
    prepare_update,
    with_state,
)
from dicom_emulator.dicom.ups.requirements import (
    CREATE_REQUIREMENTS,
    FINAL_STATE_REQUIREMENTS,
    UPDATE_REQUIREMENTS,
    FinalUsage,
    Requirement,
    Usage,
    check_change_state_request,
    check_create,
    check_final_state,
    check_update,
)
from dicom_emulator.dicom.ups.search import (
    RETURN_TAGS,
    Paging,
    WorkitemQuery,
    index_values,
    parse_paging,
    parse_workitem_query,
    search_result,
)
from dicom_emulator.dicom.ups.states import (
    TRANSITIONS,
    UPS_STATUS_MEANINGS,
    Outcome,
    ProcedureStepState,
    UpsAction,
    action_for_target,
    transaction_matches,
    transition,
)
from dicom_emulator.errors import BadRequestError, QueryValidationError

NOW = datetime(2024, 1, 15, 12, 30, 45, 123456, tzinfo=UTC)
S = ProcedureStepState
A = UpsAction


def created(**overrides: object) -> Dataset:
    """A sample create body after the SCP's part of N-CREATE."""
    return prepare_create(json_to_dataset(create_body(**overrides)), None, NOW)


def ds_of(obj: dict) -> Dataset:
    return json_to_dataset(obj)


# ---------------------------------------------------------------------------------------------------------------
# State machine: every cell of PS3.4 Table CC.1.1-2 as Azure implements it, for a matching and a mismatched
# Transaction UID. Expected values are written out independently of the module's table.
# ---------------------------------------------------------------------------------------------------------------

OK, ERR, WARN = "ok", "error", "warning"

EXPECTED_CELLS: list[tuple[UpsAction, ProcedureStepState, tuple, tuple]] = [
    # action, current, (matching: kind, state/code), (mismatched: kind, state/code)
    (A.N_CREATE, S.NONE, (OK, S.SCHEDULED), (OK, S.SCHEDULED)),
    (A.N_CREATE, S.SCHEDULED, (ERR, "0111"), (ERR, "0111")),
    (A.N_CREATE, S.IN_PROGRESS, (ERR, "0111"), (ERR, "0111")),
    (A.N_CREATE, S.COMPLETED, (ERR, "0111"), (ERR, "0111")),
    (A.N_CREATE, S.CANCELED, (ERR, "0111"), (ERR, "0111")),
    (A.TO_SCHEDULED, S.NONE, (ERR, "C307"), (ERR, "C307")),
    (A.TO_SCHEDULED, S.SCHEDULED, (ERR, "C303"), (ERR, "C303")),
    (A.TO_SCHEDULED, S.IN_PROGRESS, (ERR, "C303"), (ERR, "C303")),
    (A.TO_SCHEDULED, S.COMPLETED, (ERR, "C303"), (ERR, "C303")),
    (A.TO_SCHEDULED, S.CANCELED, (ERR, "C303"), (ERR, "C303")),
    (A.TO_IN_PROGRESS, S.NONE, (ERR, "C307"), (ERR, "C307")),
    (A.TO_IN_PROGRESS, S.SCHEDULED, (OK, S.IN_PROGRESS), (ERR, "C301")),
    (A.TO_IN_PROGRESS, S.IN_PROGRESS, (ERR, "C302"), (ERR, "C301")),
    (A.TO_IN_PROGRESS, S.COMPLETED, (ERR, "C300"), (ERR, "C301")),
    (A.TO_IN_PROGRESS, S.CANCELED, (ERR, "C300"), (ERR, "C301")),
    (A.TO_COMPLETED, S.NONE, (ERR, "C307"), (ERR, "C307")),
    (A.TO_COMPLETED, S.SCHEDULED, (ERR, "C310"), (ERR, "C301")),
    (A.TO_COMPLETED, S.IN_PROGRESS, (OK, S.COMPLETED), (ERR, "C301")),
    (A.TO_COMPLETED, S.COMPLETED, (WARN, "B306"), (ERR, "C301")),
    (A.TO_COMPLETED, S.CANCELED, (ERR, "C300"), (ERR, "C301")),
    (A.TO_CANCELED, S.NONE, (ERR, "C307"), (ERR, "C307")),
    (A.TO_CANCELED, S.SCHEDULED, (ERR, "C310"), (ERR, "C301")),
    (A.TO_CANCELED, S.IN_PROGRESS, (OK, S.CANCELED), (ERR, "C301")),
    (A.TO_CANCELED, S.COMPLETED, (ERR, "C300"), (ERR, "C301")),
    (A.TO_CANCELED, S.CANCELED, (WARN, "B304"), (ERR, "C301")),
    (A.REQUEST_CANCEL, S.NONE, (ERR, "C307"), (ERR, "C307")),
    (A.REQUEST_CANCEL, S.SCHEDULED, (OK, S.CANCELED), (OK, S.CANCELED)),
    (A.REQUEST_CANCEL, S.IN_PROGRESS, (ERR, "C312"), (ERR, "C312")),
    (A.REQUEST_CANCEL, S.COMPLETED, (ERR, "C311"), (ERR, "C311")),
    (A.REQUEST_CANCEL, S.CANCELED, (WARN, "B304"), (WARN, "B304")),
]


def _expected_outcome(expected: tuple) -> Outcome:
    kind, value = expected
    if kind == OK:
        return Outcome(value)
    return Outcome(None, value, error=kind == ERR)


class TestStateMachine:
    def test_table_has_every_cell_once(self) -> None:
        assert set(TRANSITIONS) == {(action, state) for action in UpsAction for state in ProcedureStepState}
        assert len(EXPECTED_CELLS) == len(TRANSITIONS) == len(UpsAction) * len(ProcedureStepState)

    @pytest.mark.parametrize("matching", [True, False], ids=["matching-uid", "other-uid"])
    @pytest.mark.parametrize(
        ("action", "state", "if_matching", "if_mismatched"),
        EXPECTED_CELLS,
        ids=[f"{a.name}-{s.name}" for a, s, _, _ in EXPECTED_CELLS],
    )
    def test_cell(
        self, action: UpsAction, state: ProcedureStepState, if_matching: tuple, if_mismatched: tuple, matching: bool
    ) -> None:
        expected = _expected_outcome(if_matching if matching else if_mismatched)
        outcome = transition(action, state, matching=matching)
        assert outcome == expected
        assert outcome.warning is (expected.code is not None and not expected.error)

    def test_every_code_has_a_meaning(self) -> None:
        codes = {o.code for cell in TRANSITIONS.values() for o in (cell.matching, cell.mismatched) if o.code}
        assert codes <= set(UPS_STATUS_MEANINGS)

    @pytest.mark.parametrize(
        ("stored", "requested", "target", "expected"),
        [
            ("1.2.3", "1.2.3", S.COMPLETED, True),
            ("1.2.3", "1.2.4", S.COMPLETED, False),
            (None, "1.2.3", S.IN_PROGRESS, True),  # the claim
            ("", "1.2.3", S.IN_PROGRESS, True),
            ("  ", "1.2.3", S.IN_PROGRESS, True),
            (None, "1.2.3", S.COMPLETED, False),
            ("1.2.3", "1.2.4", S.IN_PROGRESS, False),
            ("1.2.3", "1.2.3 ", S.COMPLETED, False),  # ordinal comparison
        ],
    )
    def test_transaction_matches(
        self, stored: str | None, requested: str, target: ProcedureStepState, expected: bool
    ) -> None:
        assert transaction_matches(stored, requested, target) is expected

    def test_action_for_target(self) -> None:
        assert action_for_target(S.IN_PROGRESS) is A.TO_IN_PROGRESS
        assert action_for_target(S.COMPLETED) is A.TO_COMPLETED
        assert action_for_target(S.CANCELED) is A.TO_CANCELED
        assert action_for_target(S.SCHEDULED) is A.TO_SCHEDULED


class TestProcedureStepState:
    @pytest.mark.parametrize(
        ("text", "state"),
        [
            ("SCHEDULED", S.SCHEDULED),
            ("in progress", S.IN_PROGRESS),
            ("Completed ", S.COMPLETED),
            ("CANCELED", S.CANCELED),
            ("CANCELLED", S.NONE),
            ("", S.NONE),
            ("   ", S.NONE),
            (None, S.NONE),
        ],
    )
    def test_parse(self, text: str | None, state: ProcedureStepState) -> None:
        assert ProcedureStepState.parse(text) is state

    def test_enum_names_and_final(self) -> None:
        assert [s.enum_name for s in S] == ["None", "Scheduled", "InProgress", "Completed", "Canceled"]
        assert [s for s in S if s.is_final] == [S.COMPLETED, S.CANCELED]


# ---------------------------------------------------------------------------------------------------------------
# Requirement tables and checks
# ---------------------------------------------------------------------------------------------------------------


def _count(requirements: tuple[Requirement, ...], tag: int) -> list[Usage]:
    return [r.usage for r in requirements if r.tag == tag]


class TestRequirementTables:
    def test_create_table_starts_with_transaction_uid_present_and_empty(self) -> None:
        first, second = CREATE_REQUIREMENTS[:2]
        assert (first.tag, first.usage) == (0x00081195, Usage.R2_2)
        assert (second.tag, second.usage) == (0x00081195, Usage.MUST_BE_EMPTY)

    @pytest.mark.parametrize(
        ("keyword", "create", "update"),
        [
            ("IssuerOfAdmissionIDSequence", [Usage.R2_2, Usage.R3_3], [Usage.NOT_ALLOWED, Usage.R3_3]),
            ("AdmittingDiagnosesCodeSequence", [Usage.R2_2, Usage.R3_3], [Usage.NOT_ALLOWED, Usage.R3_3]),
            ("PatientBirthDate", [Usage.R2_2, Usage.R3_3], [Usage.NOT_ALLOWED, Usage.R3_3]),
            ("SOPInstanceUID", [Usage.R1_1], [Usage.NOT_ALLOWED]),
            ("ProcedureStepState", [Usage.R1_1], [Usage.NOT_ALLOWED]),
            ("ScheduledProcedureStepModificationDateTime", [Usage.R1_1], [Usage.R1_1]),
            ("WorklistLabel", [Usage.R2_1], [Usage.R3_1]),
            ("ScheduledHumanPerformersSequence", [Usage.R2C_2C], [Usage.R3_2]),
        ],
    )
    def test_duplicates_are_kept_in_order(self, keyword: str, create: list[Usage], update: list[Usage]) -> None:
        tag = int(Tag(keyword))
        assert _count(CREATE_REQUIREMENTS, tag) == create
        assert _count(UPDATE_REQUIREMENTS, tag) == update

    def test_final_state_table(self) -> None:
        codes = {(r.tag, r.usage) for r in FINAL_STATE_REQUIREMENTS}
        assert (0x00741000, FinalUsage.R) in codes
        assert (0x00741002, FinalUsage.X) in codes
        assert (0x00741216, FinalUsage.P) in codes
        assert (0x00080005, FinalUsage.O) in codes


class TestCheckCreate:
    def test_sample_passes(self) -> None:
        assert check_create(created()) is None

    def test_keyword_keyed_sample_passes(self) -> None:
        from tests.workitem_samples import keyword_body

        ds = prepare_create(json_to_dataset(keyword_body(create_body())), None, NOW)
        assert check_create(ds) is None

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"00081195": None}, "The required tag '(0008,1195)' is missing."),
            ({"00081195": {"vr": "UI", "Value": ["1.2.3"]}}, "The attribute with tag '(0008,1195)' must be empty."),
            ({"00080018": None}, "The required tag '(0008,0018)' is missing."),
            ({"00741200": None}, "The required tag '(0074,1200)' is missing."),
            ({"00741200": {"vr": "CS"}}, "The value for tag '(0074,1200)' is missing."),
            ({"00741204": {"vr": "LO", "Value": [" \t "]}}, "The attribute with tag '(0074,1204)' must not be empty."),
            ({"00404005": None}, "The required tag '(0040,4005)' is missing."),
            ({"00404041": {"vr": "CS", "Value": [None]}}, "The value for tag '(0040,4041)' is missing."),
            ({"00100010": None}, "The required tag '(0010,0010)' is missing."),
            ({"00100030": {"vr": "DA"}}, "The value for tag '(0010,0030)' is missing."),  # 2/2 plus 3/3
            ({"00380014": {"vr": "SQ"}}, "The value for tag '(0038,0014)' is missing."),  # needs an item
            ({"00081084": {"vr": "SQ", "Value": [{}]}}, "The required tag '(0008,0104)' is missing."),
            ({"0040A370": None}, "The required tag '(0040,a370)' is missing."),
            ({"0040A370": {"vr": "SQ", "Value": [{}]}}, "The required tag '(0020,000d)' is missing."),
            ({"00404025": {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": ["X"]}}]}},
             "The required tag '(0008,0104)' is missing."),
            ({"00741002": {"vr": "SQ", "Value": [{"00741004": {"vr": "DS", "Value": [50]}}]}},
             "The attribute with tag '(0074,1004)' cannot be present."),
            ({"00101010": {"vr": "AS"}}, "The value for tag '(0010,1010)' is missing."),  # 3/3 present but empty
            ({"00404011": {"vr": "DT", "Value": ["  "]}}, "The value for tag '(0040,4011)' is missing."),
        ],
    )  # fmt: skip
    def test_violations(self, overrides: dict, message: str) -> None:
        assert check_create(created(**overrides)) == message

    def test_first_rule_in_table_order_wins(self) -> None:
        ds = created(**{"00741200": None, "00081195": {"vr": "UI", "Value": ["1.2"]}})
        assert check_create(ds) == "The attribute with tag '(0008,1195)' must be empty."

    def test_request_items_are_checked_when_present(self) -> None:
        ok = created(**{"0040A370": {"vr": "SQ", "Value": [request_item("ACC1")]}})
        assert check_create(ok) is None
        item = request_item("ACC1")
        del item["00401001"]
        bad = created(**{"0040A370": {"vr": "SQ", "Value": [item]}})
        assert check_create(bad) == "The required tag '(0040,1001)' is missing."

    def test_2c_sequence_is_not_required(self) -> None:
        assert check_create(created(**{"00404034": None})) is None


class TestCheckUpdate:
    def _update(self, obj: dict) -> Dataset:
        return prepare_update(ds_of(obj), NOW)

    def test_valid_updates(self) -> None:
        assert check_update(self._update({"00741202": {"vr": "LO", "Value": ["NEW"]}})) is None
        assert check_update(self._update({"00741216": performed_procedure()})) is None
        assert check_update(self._update({"00741002": progress_for_cancel()})) is None

    @pytest.mark.parametrize(
        ("obj", "message"),
        [
            ({"00080016": {"vr": "UI", "Value": ["1.2"]}}, "The attribute with tag '(0008,0016)' cannot be present."),
            ({"00080018": {"vr": "UI", "Value": ["1.2"]}}, "The attribute with tag '(0008,0018)' cannot be present."),
            ({"00741000": {"vr": "CS", "Value": ["COMPLETED"]}},
             "The attribute with tag '(0074,1000)' cannot be present."),
            ({"00100010": {"vr": "PN", "Value": [{"Alphabetic": "X"}]}},
             "The attribute with tag '(0010,0010)' cannot be present."),
            ({"0040A370": {"vr": "SQ"}}, "The attribute with tag '(0040,a370)' cannot be present."),
            ({"00741204": {"vr": "LO"}}, "The value for tag '(0074,1204)' is missing."),
            ({"00741216": {"vr": "SQ", "Value": [{}]}}, "The required tag '(0040,4033)' is missing."),
        ],
    )  # fmt: skip
    def test_violations(self, obj: dict, message: str) -> None:
        assert check_update(self._update(obj)) == message

    def test_modification_datetime_is_set_by_the_server(self) -> None:
        ds = self._update({})
        assert get_text(ds, 0x00404010) == "20240115123045.123456"
        assert check_update(ds) is None


class TestCheckFinalState:
    def test_not_final_needs_nothing(self) -> None:
        assert check_final_state(with_state(created(), S.IN_PROGRESS, "1.2")) is None
        assert check_final_state(Dataset()) is None

    def test_completed_needs_performed_procedure(self) -> None:
        ds = with_state(created(), S.COMPLETED, "1.2")
        assert check_final_state(ds) == "The value for tag '(0074,1216)' is missing."
        done = with_state(created(**{"00741216": performed_procedure()}), S.COMPLETED, "1.2")
        assert check_final_state(done) is None

    def test_completed_checks_performed_items(self) -> None:
        performed = performed_procedure()
        del performed["Value"][0]["00404051"]
        ds = with_state(created(**{"00741216": performed}), S.COMPLETED, "1.2")
        assert check_final_state(ds) == "The required tag '(0040,4051)' is missing."

    def test_canceled_needs_progress_information(self) -> None:
        ds = with_state(created(), S.CANCELED, "1.2")
        assert check_final_state(ds) == "The value for tag '(0074,1002)' is missing."
        ok = with_state(created(**{"00741002": progress_for_cancel()}), S.CANCELED, "1.2")
        assert check_final_state(ok) is None  # performed procedure (P) is not needed for CANCELED

    def test_canceled_checks_progress_items(self) -> None:
        progress = progress_for_cancel()
        progress["Value"][0]["0074100E"] = {"vr": "SQ"}
        ds = with_state(created(**{"00741002": progress}), S.CANCELED, "1.2")
        assert check_final_state(ds) == "The value for tag '(0074,100e)' is missing."

    def test_r_attributes(self) -> None:
        ds = with_state(created(**{"00741216": performed_procedure(), "00404041": None}), S.COMPLETED, "1")
        assert check_final_state(ds) == "The required tag '(0040,4041)' is missing."


class TestCheckChangeStateRequest:
    @pytest.mark.parametrize(
        ("obj", "message"),
        [
            ({"00741000": {"vr": "CS", "Value": ["IN PROGRESS"]}}, "The required tag '(0008,1195)' is missing."),
            ({"00081195": {"vr": "UI"}, "00741000": {"vr": "CS", "Value": ["IN PROGRESS"]}},
             "The value for tag '(0008,1195)' is missing."),
            ({"00081195": {"vr": "UI", "Value": ["1.2"]}}, "The required tag '(0074,1000)' is missing."),
            ({"00081195": {"vr": "UI", "Value": ["1.2"]}, "00741000": {"vr": "CS", "Value": ["SCHEDULED"]}},
             "Expected value '(0074,1000)' to be one of the following values: [IN PROGRESS,CANCELED,COMPLETED]"),
            ({"00081195": {"vr": "UI", "Value": ["1.2"]}, "00741000": {"vr": "CS", "Value": ["in progress"]}},
             "Expected value '(0074,1000)' to be one of the following values: [IN PROGRESS,CANCELED,COMPLETED]"),
        ],
    )  # fmt: skip
    def test_violations(self, obj: dict, message: str) -> None:
        assert check_change_state_request(ds_of(obj)) == message

    @pytest.mark.parametrize("target", ["IN PROGRESS", "COMPLETED", "CANCELED"])
    def test_valid(self, target: str) -> None:
        obj = {"00081195": {"vr": "UI", "Value": ["1.2"]}, "00741000": {"vr": "CS", "Value": [target]}}
        assert check_change_state_request(ds_of(obj)) is None


# ---------------------------------------------------------------------------------------------------------------
# Dataset edits
# ---------------------------------------------------------------------------------------------------------------


class TestDatasetEdits:
    def test_prepare_create_sets_scp_attributes(self) -> None:
        original = json_to_dataset(create_body("1.2.3"))
        ds = prepare_create(original, "1.2.3", NOW)
        as_json = dataset_to_json(ds)
        assert as_json["00080016"] == {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.34.6.1"]}
        assert as_json["00080018"] == {"vr": "UI", "Value": ["1.2.3"]}
        assert as_json["00404010"] == {"vr": "DT", "Value": ["20240115123045.123456"]}
        assert as_json["00741202"] == {"vr": "LO", "Value": ["worklist"]}
        assert as_json["00741000"] == {"vr": "CS", "Value": ["SCHEDULED"]}
        assert original.SOPClassUID != ds.SOPClassUID  # the input is not modified

    def test_prepare_create_takes_uid_from_query(self) -> None:
        ds = prepare_create(json_to_dataset(create_body(**{"00080018": None})), "1.2.9", NOW)
        assert ds.SOPInstanceUID == "1.2.9"

    def test_prepare_create_keeps_body_uid_without_query(self) -> None:
        ds = prepare_create(json_to_dataset(create_body("1.2.8")), None, NOW)
        assert ds.SOPInstanceUID == "1.2.8"

    def test_prepare_create_mismatch(self) -> None:
        with pytest.raises(BadRequestError) as info:
            prepare_create(json_to_dataset(create_body("1.2.8")), "1.2.9", NOW)
        assert info.value.message == "SOPInstanceUID in the payload does not match the workitem query parameter."

    def test_merge_update(self) -> None:
        stored = created(**{"00404025": {"vr": "SQ", "Value": [code_item("A"), code_item("B")]}})
        update = ds_of(
            {
                "00741202": {"vr": "LO", "Value": ["NEW"]},
                "00404025": {"vr": "SQ", "Value": [code_item("C")]},
                "00101030": {"vr": "DS", "Value": [70.5, 71]},  # PatientWeight: first value only
            }
        )
        merged = dataset_to_json(merge_update(stored, update))
        assert merged["00741202"] == {"vr": "LO", "Value": ["NEW"]}
        assert [i["00080100"]["Value"] for i in merged["00404025"]["Value"]] == [["C"]]
        assert merged["00101030"] == {"vr": "DS", "Value": [70.5]}

    def test_with_state(self) -> None:
        ds = with_state(created(), S.IN_PROGRESS, "9.8.7")
        assert dataset_to_json(ds)["00081195"] == {"vr": "UI", "Value": ["9.8.7"]}
        assert dataset_to_json(ds)["00741000"] == {"vr": "CS", "Value": ["IN PROGRESS"]}

    def test_apply_cancel_request(self) -> None:
        request = ds_of(
            {
                **cancel_body("Patient left"),
                "00741216": {"vr": "SQ", "Value": [{"00404050": {"vr": "DT", "Value": ["20240101"]}}]},
            }
        )
        result = dataset_to_json(apply_cancel_request(created(), request, S.CANCELED, NOW))
        stamp = "20240115123045.123456"
        reason_item = {"00741238": {"vr": "LT", "Value": ["Patient left"]}}
        assert result["00741000"] == {"vr": "CS", "Value": ["CANCELED"]}
        assert result["00404052"] == {"vr": "DT", "Value": [stamp]}
        assert result["0074100E"] == {"vr": "SQ", "Value": [reason_item]}
        assert result["00741002"] == {
            "vr": "SQ",
            "Value": [
                {
                    "00404052": {"vr": "DT", "Value": [stamp]},
                    "00741008": {
                        "vr": "SQ",
                        "Value": [
                            {
                                "0074100A": {"vr": "UR", "Value": ["dicom-users://test-user"]},
                                "0074100C": {"vr": "LO", "Value": ["Dicom Test User"]},
                            }
                        ],
                    },
                    "0074100E": {"vr": "SQ", "Value": [reason_item]},
                }
            ],
        }
        assert result["00741216"] == {"vr": "SQ", "Value": [{"00404050": {"vr": "DT", "Value": ["20240101"]}}]}
        assert check_final_state(apply_cancel_request(created(), request, S.CANCELED, NOW)) is None

    def test_apply_cancel_request_without_reason(self) -> None:
        result = dataset_to_json(apply_cancel_request(created(), Dataset(), S.CANCELED, NOW))
        assert result["0074100E"] == {"vr": "SQ", "Value": [{"00741238": {"vr": "LT"}}]}


# ---------------------------------------------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------------------------------------------


def parse(query: str) -> WorkitemQuery:
    pairs = []
    for part in query.split("&"):
        key, _, value = part.partition("=")
        pairs.append((key, value))
    return parse_workitem_query(pairs)


def parse_error(query: str) -> str:
    with pytest.raises(QueryValidationError) as info:
        parse(query)
    return info.value.message


NOT_QUERYABLE = (
    "Invalid query: AttributeId {0} is not queryable.  If the parameter is an attribute keyword, check the casing as "
    "they are case-sensitive. The conformance statement has a list of supported query parameters, attributes and "
    "the levels."
)


class TestParseQuery:
    def test_defaults(self) -> None:
        query = parse_workitem_query([])
        assert (query.limit, query.offset, query.fuzzy, query.include_all) == (100, 0, False, False)
        assert query.conditions == ()

    @pytest.mark.parametrize(
        ("text", "column", "condition"),
        [
            ("PatientName=doe^john", "patient_name", SingleValue),
            ("00100010=Doe", "patient_name", SingleValue),
            ("PatientID=p1", "patient_id", SingleValue),
            ("0040A370.00080050=acc1", "accession_numbers", SingleValue),
            ("ReferencedRequestSequence.AccessionNumber=acc1", "accession_numbers", SingleValue),
            ("0040a370.00401001=RP1", "requested_procedure_ids", SingleValue),
            ("ScheduledStationNameCodeSequence.CodeValue=S1", "station_name_codes", SingleValue),
            ("00404026.00080100=C1", "station_class_codes", SingleValue),
            ("00404027.CodeValue=L1", "station_location_codes", SingleValue),
            ("ProcedureStepState=in progress", "state", SingleValue),
            ("StudyInstanceUID=1.2.3", "study_uid", SingleValue),
            ("ScheduledProcedureStepStartDateTime=20240101-20240102", "scheduled_start", DateRange),
        ],
    )
    def test_search_keys(self, text: str, column: str, condition: type) -> None:
        ((key, cond),) = parse(text).conditions
        assert key.column == column
        assert isinstance(cond, condition)

    def test_values_are_normalized(self) -> None:
        ((_, name),) = parse("PatientName=Müller^Jürgen").conditions
        assert name == SingleValue(name.tag, "MULLER^JURGEN")
        ((_, state),) = parse("ProcedureStepState=in progress").conditions
        assert state.value == "IN PROGRESS"  # type: ignore[union-attr]
        ((_, start),) = parse("ScheduledProcedureStepStartDateTime=20240101-20240102").conditions
        # Azure's DateTime range: the upper end is the first instant of 2024-01-02.
        assert (start.low, start.high) == ("20240101000000.000000", "20240102000000.000000")  # type: ignore[union-attr]

    def test_fuzzy_patient_name(self) -> None:
        ((_, cond),) = parse("PatientName=jo do&fuzzymatching=true").conditions
        assert isinstance(cond, FuzzyName)
        assert cond.words == ("JO", "DO")

    def test_paging_and_includefield(self) -> None:
        query = parse("limit=5&offset=10&includefield=00400400,PatientAge&includefield=00400400")
        assert (query.limit, query.offset) == (5, 10)
        assert query.include_tags == (0x00400400, 0x00101010)
        assert parse("includefield=ALL").include_all

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("Modality=CT", NOT_QUERYABLE.format("Modality")),
            ("NotAKeyword=1", NOT_QUERYABLE.format("NotAKeyword")),
            ("patientname=x", NOT_QUERYABLE.format("patientname")),
            ("AccessionNumber=x", NOT_QUERYABLE.format("AccessionNumber")),
            ("0040A370.00080051=x", NOT_QUERYABLE.format("0040A370.00080051")),
            ("0040A370.00080050.00080050=x",
             "Dicom element '0040A370.00080050.00080050' failed validation for VR 'SQ': Nested Dicom sequence tags "
             "are currently not supported."),
            ("PatientID=", "Invalid query: AttributeId 'PatientID' has empty string value that is not supported."),
            ("PatientName=a&00100010=b",
             "Invalid query: attribute '00100010' has been specified more than once using different ID formats. "
             "Each attribute is only allowed to be specified once."),
            ("PatientID=a&PatientID=b",
             "Invalid QIDO-RS query. Duplicate AttributeId 'PatientID'. Each attribute is only allowed to be "
             "specified once."),
            ("limit=201", "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
            ("limit=0", "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
            ("limit=x", "The query parameter 'Limit' is invalid. The value 'x' is not valid for Limit."),
            ("Modality=CT&limit=500",
             "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
            ("includefield=all&includefield=PatientID",
             "Invalid query: cannot specify included fields in addition to 'all'."),
            ("includefield=Foo", "Invalid query: IncludeField has unknown attribute 'Foo'."),
            ("includefield=0040A370.00080050", "Sequential dicom tags are currently not supported."),
            ("ScheduledProcedureStepStartDateTime=2024-13",
             "Invalid query: specified DateTime value '13' is invalid for attribute "
             "'ScheduledProcedureStepStartDateTime'. DateTime should be valid and formatted as yyyyMMddHHmmss.FFFFFF "
             "where yyyy is mandatory."),
            ('PatientName=a"b&fuzzymatching=true',
             "Invalid query: specified tag 'PatientName' value 'a\"b' contains unsupported character '\"'. "
             "Character is not supported with Fuzzy match, try exact match or removing the invalid character. "),
        ],
    )  # fmt: skip
    def test_errors(self, text: str, message: str) -> None:
        assert parse_error(text) == message

    def test_filter_errors_come_before_includefield_errors(self) -> None:
        assert parse_error("includefield=Foo&Modality=CT") == NOT_QUERYABLE.format("Modality")

    def test_parse_paging_only_looks_at_reserved_parameters(self) -> None:
        assert parse_paging([("Modality", "CT"), ("LIMIT", "7")]) == Paging(7, 0, False)


class TestSearchResultAndIndex:
    def test_required_return_tags_only(self) -> None:
        metadata = dataset_to_json(with_state(created(), S.IN_PROGRESS, "1.2.3"))
        result = search_result(metadata, parse("PatientID=x"))
        assert "00081195" not in result
        assert "00400400" not in result  # CommentsOnTheScheduledProcedureStep: not a return key
        assert "00741000" in result and "00404005" in result and "00080018" in result
        assert set(result) <= {f"{t:08X}" for t in RETURN_TAGS} | {"00100020"}

    def test_includefield_and_all(self) -> None:
        metadata = dataset_to_json(with_state(created(), S.IN_PROGRESS, "1.2.3"))
        assert "00400400" in search_result(metadata, parse("includefield=CommentsOnTheScheduledProcedureStep"))
        everything = search_result(metadata, parse("includefield=all"))
        assert set(everything) == set(metadata) - {"00081195"}

    def test_index_values(self) -> None:
        study = "1.2.826.0.1.3680043.8.498.77"
        ds = created(
            **{
                "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Anna Maria"}]},
                "00100020": {"vr": "LO", "Value": ["pid-1 "]},
                "0040A370": {"vr": "SQ", "Value": [request_item("acc1", "rp1"), request_item("ACC2", "RP2")]},
                "00404025": {"vr": "SQ", "Value": [code_item("st1")]},
                "00404026": {"vr": "SQ", "Value": [code_item("cls")]},
                "00404027": {"vr": "SQ", "Value": [code_item("loc")]},
                "00404005": {"vr": "DT", "Value": ["202401150830+0100"]},
                "0020000D": {"vr": "UI", "Value": [study]},
            }
        )
        assert index_values(ds) == {
            "patient_name": "MULLER^ANNA MARIA",
            "patient_name_words": " MULLER ANNA MARIA",
            "patient_id": "PID-1",
            "accession_numbers": "\\ACC1\\ACC2\\",
            "requested_procedure_ids": "\\RP1\\RP2\\",
            "scheduled_start": "20240115073000.000000",
            "station_name_codes": "\\ST1\\",
            "station_class_codes": "\\CLS\\",
            "station_location_codes": "\\LOC\\",
            "study_uid": study,
        }

    def test_index_values_of_empty_attributes(self) -> None:
        values = index_values(created())
        assert values["patient_name"] is None and values["accession_numbers"] is None
        assert values["scheduled_start"] == "20240115083000.000000"


def test_tag_text() -> None:
    assert tag_text(0x0040A370) == "(0040,a370)"
    assert tag_text(0x00081195) == "(0008,1195)"
