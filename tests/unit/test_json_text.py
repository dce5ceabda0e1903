"""Stored DICOM JSON parses the same through orjson and, for what orjson refuses, through the json module."""

from __future__ import annotations

import json
import math

from dicom_emulator import json_text


def test_plain_metadata_parses_as_the_json_module_does() -> None:
    text = json.dumps({"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Zoë"}]}, "00280030": {"vr": "DS"}})
    assert json_text.loads(text) == json.loads(text)


def test_nan_infinity_and_big_integers_fall_back_to_the_json_module() -> None:
    # An FD value can be NaN or infinite, and json.dumps writes them as bare words orjson refuses.
    text = json.dumps({"00189087": {"vr": "FD", "Value": [math.nan, math.inf, 2**70]}})
    value = json_text.loads(text)["00189087"]["Value"]
    assert math.isnan(value[0])
    assert value[1:] == [math.inf, 2**70]
