"""Accept / Content-Type negotiation (azure-behaviour §1.4, §2.2, §3.2,
azure-behaviour §3.6; azure-behaviour §11)."""

from __future__ import annotations

import pytest

from dicom_emulator.api.negotiation import (
    MediaRange,
    RetrieveFormat,
    RetrieveResource,
    StowContent,
    negotiate_rendered,
    negotiate_retrieve,
    parse_accept,
    parse_stow_content_type,
    require_dicom_json,
)
from dicom_emulator.errors import BadRequestError, NotAcceptableError, UnsupportedMediaTypeError

NOT_ACCEPTABLE = "The request headers are not acceptable"
MULTIPLE = "The request contains multiple accept headers, which is not supported."
EVRLE = "1.2.840.10008.1.2.1"
J2K = "1.2.840.10008.1.2.4.90"
IMPLICIT = "1.2.840.10008.1.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"

STUDY, SERIES, INSTANCE, FRAMES = (
    RetrieveResource.STUDY,
    RetrieveResource.SERIES,
    RetrieveResource.INSTANCE,
    RetrieveResource.FRAMES,
)

# Accept strings real clients send (azure-behaviour §11).
PY_RETRIEVE = 'multipart/related; type="application/dicom"'  # dicomweb-client retrieve_study/series/instance
PY_FRAMES = 'multipart/related; type="*/*"'  # dicomweb-client retrieve_instance_frames default
PY_METADATA = "application/dicom+json, application/json"  # dicomweb-client QIDO/metadata
CS_STUDY = 'multipart/related; type="application/dicom";transfer-syntax="*"'  # C# RetrieveStudyAsync
CS_INSTANCE = 'application/dicom;transfer-syntax="*"'  # C# RetrieveInstanceAsync
CS_FRAMES = 'multipart/related; type="application/octet-stream";transfer-syntax="*"'  # C# RetrieveFramesAsync
CS_SINGLE_FRAME = 'application/octet-stream;transfer-syntax="*"'  # C# RetrieveSingleFrameAsync
OHIF_FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
OHIF_FRAMES_UNQUOTED = "multipart/related; type=application/octet-stream; transfer-syntax=*"  # OHIF #1284
NPM_FRAMES = 'multipart/related; type="application/octet-stream"'  # npm dicomweb-client default


class TestParseAccept:
    def test_absent_or_blank(self) -> None:
        assert parse_accept(None) == []
        assert parse_accept("") == []
        assert parse_accept(" , ,") == []

    def test_params_lower_case_names_unquoted_values_and_q(self) -> None:
        ranges = parse_accept('Multipart/Related; Type="application/dicom"; Transfer-Syntax=*; q=0.5')
        assert ranges == [MediaRange("multipart/related", {"type": "application/dicom", "transfer-syntax": "*"}, 0.5)]

    def test_default_quality_and_order_kept(self) -> None:
        ranges = parse_accept("image/png;q=0.2, image/jpeg")
        assert [(r.media_type, r.q) for r in ranges] == [("image/png", 0.2), ("image/jpeg", 1.0)]

    def test_comma_inside_quoted_string(self) -> None:
        ranges = parse_accept('application/dicom; x="a, b; c", image/png')
        assert [r.media_type for r in ranges] == ["application/dicom", "image/png"]
        assert ranges[0].params == {"x": "a, b; c"}

    def test_escaped_quote_in_quoted_string(self) -> None:
        ranges = parse_accept(r'a/b; x="say \"hi\", ok", c/d')
        assert ranges[0].params == {"x": 'say "hi", ok'}
        assert ranges[1].media_type == "c/d"

    def test_unquoted_type_with_slash(self) -> None:
        (media_range,) = parse_accept(OHIF_FRAMES_UNQUOTED)
        assert media_range.params == {"type": "application/octet-stream", "transfer-syntax": "*"}

    def test_first_occurrence_of_a_parameter_wins(self) -> None:
        (media_range,) = parse_accept(f"application/dicom; transfer-syntax=*; transfer-syntax={EVRLE}")
        assert media_range.params["transfer-syntax"] == "*"

    @pytest.mark.parametrize("q", ["abc", "1.5", "-0.1", "", "0.5x", "1e-1"])
    def test_bad_q_makes_range_invalid(self, q: str) -> None:
        assert parse_accept(f"image/png; q={q}, image/jpeg") == [MediaRange("image/jpeg", {}, 1.0)]

    @pytest.mark.parametrize("q, expected", [("0", 0.0), ("1", 1.0), ("0.123", 0.123), ("1.000", 1.0), (".5", 0.5)])
    def test_valid_q(self, q: str, expected: float) -> None:
        assert parse_accept(f"image/png;q={q}")[0].q == expected

    @pytest.mark.parametrize(
        "element",
        ["garbage", "image/", "/png", "image/png/x", 'image/png; x="a"b', "a b/c", "a/b; x y=1"],
    )
    def test_invalid_ranges_skipped(self, element: str) -> None:
        assert parse_accept(f"{element}, image/jpeg") == [MediaRange("image/jpeg", {}, 1.0)]

    def test_unterminated_quote_swallows_the_rest(self) -> None:
        # The quoted-string never closes, so the comma after it is inside it: one invalid range.
        assert parse_accept('image/jpeg, image/png; x="unterminated, image/gif') == [MediaRange("image/jpeg", {}, 1.0)]

    def test_empty_parameters_tolerated(self) -> None:
        assert parse_accept("image/png;;q=0.3;") == [MediaRange("image/png", {}, 0.3)]

    def test_wildcards(self) -> None:
        assert [r.media_type for r in parse_accept("*/*, image/*")] == ["*/*", "image/*"]


class TestRequireDicomJson:
    # AcceptContentFilterAttributeTests (dicom-server, archived) and §1.4.
    @pytest.mark.parametrize(
        "accept",
        [
            "*/*",
            "application/*",
            "application/json",
            "application/dicom+json",
            "applicAtion/dICOM+Json",
            "application/dicom+json; transfer-syntax=*",
            'application/dicom+json; transfer-syntax="*"',
            "application/dicom+json; q=0",
            "image/png, application/dicom+json",
            "application/dicom, */*;q=0.1",
            PY_METADATA,
            "application/dicom+json; charset=utf-8",
        ],
    )
    def test_acceptable(self, accept: str) -> None:
        require_dicom_json(accept)

    @pytest.mark.parametrize(
        "accept",
        [
            None,
            "",
            "application/dicom",
            "application/dicom+json+something",
            "application/dicom+xml",
            "application/xml",
            "image/png, image/jpg",
            "application/dicom, application/pdf",
            "text/*",
            "application/dicom+json; q=abc",
        ],
    )
    def test_not_acceptable(self, accept: str | None) -> None:
        with pytest.raises(NotAcceptableError) as info:
            require_dicom_json(accept)
        assert info.value.message == ""  # Azure's filter: a bare 406 without body


# azure-behaviour §3.2 table, one case per row/variant: (resource, Accept, expected format).
RETRIEVE_OK = [
    # study/series: multipart/related; type="application/dicom"
    (STUDY, PY_RETRIEVE, RetrieveFormat("application/dicom", EVRLE, True)),
    (SERIES, PY_RETRIEVE, RetrieveFormat("application/dicom", EVRLE, True)),
    (STUDY, "multipart/related; type=application/dicom", RetrieveFormat("application/dicom", EVRLE, True)),
    (STUDY, CS_STUDY, RetrieveFormat("application/dicom", "*", True)),
    (SERIES, CS_STUDY, RetrieveFormat("application/dicom", "*", True)),
    (STUDY, f"{PY_RETRIEVE}; transfer-syntax={EVRLE}", RetrieveFormat("application/dicom", EVRLE, True)),
    (STUDY, f'{PY_RETRIEVE}; transfer-syntax="{J2K}"', RetrieveFormat("application/dicom", J2K, True)),
    # study/series: multipart/related; type="*/*"
    (STUDY, PY_FRAMES, RetrieveFormat("application/dicom", "*", True)),
    (SERIES, "multipart/related; type=*/*", RetrieveFormat("application/dicom", "*", True)),
    (STUDY, f"{PY_FRAMES}; transfer-syntax={J2K}", RetrieveFormat("application/dicom", J2K, True)),
    (SERIES, f"{PY_FRAMES}; transfer-syntax={EVRLE}", RetrieveFormat("application/dicom", EVRLE, True)),
    # instance: application/dicom single part or multipart
    (INSTANCE, "application/dicom", RetrieveFormat("application/dicom", EVRLE, False)),
    (INSTANCE, CS_INSTANCE, RetrieveFormat("application/dicom", "*", False)),
    (INSTANCE, "application/dicom; transfer-syntax=*", RetrieveFormat("application/dicom", "*", False)),
    (INSTANCE, f"application/dicom; transfer-syntax={J2K}", RetrieveFormat("application/dicom", J2K, False)),
    (INSTANCE, PY_RETRIEVE, RetrieveFormat("application/dicom", EVRLE, True)),
    (INSTANCE, CS_STUDY, RetrieveFormat("application/dicom", "*", True)),
    # instance: */* bare or as multipart type → multipart application/dicom
    (INSTANCE, "*/*", RetrieveFormat("application/dicom", "*", True)),
    (INSTANCE, f"*/*; transfer-syntax={J2K}", RetrieveFormat("application/dicom", J2K, True)),
    (INSTANCE, PY_FRAMES, RetrieveFormat("application/dicom", "*", True)),
    # frames: application/octet-stream single part or multipart
    (FRAMES, "application/octet-stream", RetrieveFormat("application/octet-stream", EVRLE, False)),
    (FRAMES, CS_SINGLE_FRAME, RetrieveFormat("application/octet-stream", "*", False)),
    (FRAMES, NPM_FRAMES, RetrieveFormat("application/octet-stream", EVRLE, True)),
    (FRAMES, OHIF_FRAMES, RetrieveFormat("application/octet-stream", "*", True)),
    (FRAMES, OHIF_FRAMES_UNQUOTED, RetrieveFormat("application/octet-stream", "*", True)),
    (FRAMES, CS_FRAMES, RetrieveFormat("application/octet-stream", "*", True)),
    (FRAMES, f"{NPM_FRAMES}; transfer-syntax={EVRLE}", RetrieveFormat("application/octet-stream", EVRLE, True)),
    # frames: image/jp2 multipart only, J2K only
    (FRAMES, 'multipart/related; type="image/jp2"', RetrieveFormat("image/jp2", J2K, True)),
    (FRAMES, f'multipart/related; type="image/jp2"; transfer-syntax={J2K}', RetrieveFormat("image/jp2", J2K, True)),
    # frames: */* → multipart octet-stream
    (FRAMES, "*/*", RetrieveFormat("application/octet-stream", "*", True)),
    (FRAMES, PY_FRAMES, RetrieveFormat("application/octet-stream", "*", True)),
    (FRAMES, f"*/*; transfer-syntax={EVRLE}", RetrieveFormat("application/octet-stream", EVRLE, True)),
]


@pytest.mark.parametrize("resource, accept, expected", RETRIEVE_OK)
def test_negotiate_retrieve_table(resource: RetrieveResource, accept: str, expected: RetrieveFormat) -> None:
    assert negotiate_retrieve(accept, resource) == expected


RETRIEVE_406 = [
    *[(resource, None) for resource in RetrieveResource],
    *[(resource, "") for resource in RetrieveResource],
    (STUDY, "*/*"),  # bare */* is single part; study/series are multipart only (azure-behaviour §3.2)
    (SERIES, "*/*"),
    (STUDY, "application/dicom"),
    (SERIES, "application/dicom; transfer-syntax=*"),
    (STUDY, f"{PY_RETRIEVE}; transfer-syntax={IMPLICIT}"),
    (STUDY, f"{PY_RETRIEVE}; transfer-syntax={JPEG_BASELINE}"),
    (STUDY, "multipart/related"),  # no type parameter
    (STUDY, 'multipart/related; type="application/octet-stream"'),
    (STUDY, "application/dicom+json"),
    (STUDY, "multipart/mixed; type=application/dicom"),
    (INSTANCE, f"application/dicom; transfer-syntax={IMPLICIT}"),
    (INSTANCE, f"*/*; transfer-syntax={JPEG_BASELINE}"),
    (INSTANCE, "application/octet-stream"),
    (INSTANCE, "image/jp2"),
    (INSTANCE, "application/*"),
    (INSTANCE, "application/dicom; q=abc"),  # the only range is invalid
    (FRAMES, "image/jp2"),  # jp2 is multipart only
    (FRAMES, 'multipart/related; type="image/jp2"; transfer-syntax=*'),
    (FRAMES, f'multipart/related; type="image/jp2"; transfer-syntax={EVRLE}'),
    (FRAMES, f"application/octet-stream; transfer-syntax={J2K}"),
    (FRAMES, f"*/*; transfer-syntax={J2K}"),
    (FRAMES, "application/dicom"),
    (FRAMES, PY_RETRIEVE),
    (FRAMES, "image/jpeg"),
]


@pytest.mark.parametrize("resource, accept", RETRIEVE_406)
def test_negotiate_retrieve_not_acceptable(resource: RetrieveResource, accept: str | None) -> None:
    with pytest.raises(NotAcceptableError) as info:
        negotiate_retrieve(accept, resource)
    assert info.value.message == NOT_ACCEPTABLE


class TestRetrievePreference:
    def test_highest_q_wins(self) -> None:
        accept = f"application/dicom; q=0.5, {PY_RETRIEVE}; q=0.9"
        assert negotiate_retrieve(accept, INSTANCE) == RetrieveFormat("application/dicom", EVRLE, True)

    def test_order_breaks_ties(self) -> None:
        accept = f"application/dicom, {PY_RETRIEVE}"
        assert negotiate_retrieve(accept, INSTANCE) == RetrieveFormat("application/dicom", EVRLE, False)

    def test_equal_q_explicit_original_ts_preferred(self) -> None:
        accept = f"application/dicom, {PY_RETRIEVE}; transfer-syntax=*"
        assert negotiate_retrieve(accept, INSTANCE) == RetrieveFormat("application/dicom", "*", True)

    def test_equal_q_first_original_ts_kept_over_later_default(self) -> None:
        accept = f"application/dicom; transfer-syntax=*, {PY_RETRIEVE}"
        assert negotiate_retrieve(accept, INSTANCE) == RetrieveFormat("application/dicom", "*", False)

    def test_equal_q_later_original_ts_replaces_earlier_original_ts(self) -> None:
        # IsHigherPriorityTransferSyntax is `>=`, so the last '*' range of equal q wins.
        accept = f"application/dicom; transfer-syntax=*, {PY_RETRIEVE}; transfer-syntax=*"
        assert negotiate_retrieve(accept, INSTANCE) == RetrieveFormat("application/dicom", "*", True)

    def test_lower_q_original_ts_does_not_win(self) -> None:
        accept = "application/dicom; q=0.9, application/dicom; transfer-syntax=*; q=0.5"
        assert negotiate_retrieve(accept, INSTANCE) == RetrieveFormat("application/dicom", EVRLE, False)

    def test_defaulted_original_ts_is_not_preferred(self) -> None:
        # */* defaults to '*' but did not ask for it explicitly: the earlier range keeps priority.
        accept = f"{PY_RETRIEVE}, {PY_FRAMES}"
        assert negotiate_retrieve(accept, STUDY) == RetrieveFormat("application/dicom", EVRLE, True)

    def test_unacceptable_ranges_skipped(self) -> None:
        accept = "image/png, application/dicom+json, application/dicom; q=0.1"
        assert negotiate_retrieve(accept, INSTANCE) == RetrieveFormat("application/dicom", EVRLE, False)

    def test_q_zero_still_considered(self) -> None:
        # Azure orders by q but never discards q=0.
        assert negotiate_retrieve("application/dicom; q=0", INSTANCE).media_type == "application/dicom"

    def test_invalid_q_range_skipped_not_fatal(self) -> None:
        accept = f"{PY_RETRIEVE}; transfer-syntax=*; q=high, {PY_RETRIEVE}; q=0.2"
        assert negotiate_retrieve(accept, STUDY) == RetrieveFormat("application/dicom", EVRLE, True)

    def test_case_insensitive(self) -> None:
        accept = 'Multipart/Related; TYPE="Application/DICOM"; Transfer-Syntax=*'
        assert negotiate_retrieve(accept, STUDY) == RetrieveFormat("application/dicom", "*", True)

    def test_first_transfer_syntax_parameter_used(self) -> None:
        accept = f"{PY_RETRIEVE}; transfer-syntax={IMPLICIT}; transfer-syntax=*"
        with pytest.raises(NotAcceptableError):
            negotiate_retrieve(accept, STUDY)

    def test_empty_transfer_syntax_means_default(self) -> None:
        assert negotiate_retrieve(f'{PY_RETRIEVE}; transfer-syntax=""', STUDY).transfer_syntax == EVRLE

    def test_quoted_comma_does_not_split(self) -> None:
        accept = f'{PY_RETRIEVE}; note="a, */*"; transfer-syntax=*'
        assert negotiate_retrieve(accept, SERIES) == RetrieveFormat("application/dicom", "*", True)


class TestNegotiateRendered:
    @pytest.mark.parametrize(
        "accept, expected",
        [
            (None, "image/jpeg"),
            ("", "image/jpeg"),
            ("image/jpeg", "image/jpeg"),
            ("image/png", "image/png"),
            ("IMAGE/PNG", "image/png"),
            ("image/png; q=0.5", "image/png"),
            ("image/jpeg; quality=90", "image/jpeg"),
            ('multipart/related; type="image/png"', "image/png"),  # Azure judges multipart by its type
        ],
    )
    def test_acceptable(self, accept: str | None, expected: str) -> None:
        assert negotiate_rendered(accept) == expected

    @pytest.mark.parametrize("accept", ["*/*", "image/*", "application/dicom", "image/gif", "image/jp2"])
    def test_not_acceptable(self, accept: str) -> None:
        with pytest.raises(NotAcceptableError) as info:
            negotiate_rendered(accept)
        assert info.value.message == NOT_ACCEPTABLE

    @pytest.mark.parametrize("accept", ["image/jpeg, image/png", "image/png, */*", "image/jpeg,image/jpeg"])
    def test_multiple_ranges(self, accept: str) -> None:
        with pytest.raises(NotAcceptableError) as info:
            negotiate_rendered(accept)
        assert info.value.message == MULTIPLE


PY_STOW = 'multipart/related; type="application/dicom"; boundary="0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"'
CS_STOW = 'multipart/related; boundary="a1b2c3d4-0000-1111-2222-333344445555"; type="application/dicom"'
NPM_STOW = 'multipart/related; type="application/dicom"; boundary="DICOMwebBoundary"'


class TestParseStowContentType:
    @pytest.mark.parametrize("content_type", ["application/dicom", "APPLICATION/DICOM", "Application/Dicom"])
    def test_single_part(self, content_type: str) -> None:
        assert parse_stow_content_type(content_type) == StowContent(False, None, None)

    @pytest.mark.parametrize(
        "content_type, expected",
        [
            (PY_STOW, StowContent(True, "0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1", "application/dicom")),
            (CS_STOW, StowContent(True, "a1b2c3d4-0000-1111-2222-333344445555", "application/dicom")),
            (NPM_STOW, StowContent(True, "DICOMwebBoundary", "application/dicom")),
            ("multipart/related; boundary=abc", StowContent(True, "abc", None)),
            ("Multipart/Related; BOUNDARY=abc; TYPE=application/dicom", StowContent(True, "abc", "application/dicom")),
            ('multipart/related; boundary="a b:c,d"', StowContent(True, "a b:c,d", None)),
            (
                "multipart/related; type=a/b; type=application/dicom; boundary=x",
                StowContent(True, "x", "application/dicom"),
            ),
        ],
    )
    def test_multipart(self, content_type: str, expected: StowContent) -> None:
        assert parse_stow_content_type(content_type) == expected

    @pytest.mark.parametrize(
        "content_type",
        [
            "multipart/related",
            'multipart/related; type="application/dicom"',
            'multipart/related; boundary=""',
            'multipart/related; boundary="  "',
            "multipart/related; boundary=",
        ],
    )
    def test_missing_boundary_415(self, content_type: str) -> None:
        with pytest.raises(UnsupportedMediaTypeError) as info:
            parse_stow_content_type(content_type)
        assert (
            info.value.message == f"The content type '{content_type}' is either not multipart or is missing boundary."
        )

    @pytest.mark.parametrize(
        "content_type",
        ["multipart/related; boundary=abc; start=<root>", 'multipart/related; start="<x>"; boundary=abc'],
    )
    def test_start_parameter_400(self, content_type: str) -> None:
        with pytest.raises(BadRequestError) as info:
            parse_stow_content_type(content_type)
        assert info.value.message == "The start parameter in multipart/related request is not supported."

    @pytest.mark.parametrize(
        "content_type",
        [
            "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
            "application/dicom;",
            "application/dicom+json",
            "application/octet-stream",
            "multipart/form-data; boundary=abc",
            "multipart/mixed; boundary=abc",
            "text/plain",
            "garbage",
            "",
        ],
    )
    def test_unsupported_415(self, content_type: str) -> None:
        with pytest.raises(UnsupportedMediaTypeError) as info:
            parse_stow_content_type(content_type)
        assert info.value.message == f"The specified content type '{content_type}' is not supported."

    def test_absent_415(self) -> None:
        with pytest.raises(UnsupportedMediaTypeError) as info:
            parse_stow_content_type(None)
        assert info.value.message == "The specified content type '' is not supported."
