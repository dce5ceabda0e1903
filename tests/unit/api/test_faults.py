"""Fault rules: matching, counts, seeded rates, and readable errors for bad rules."""

from __future__ import annotations

import pytest

from dicom_emulator.api.faults import FaultInjector, parse_config


def test_first_matching_rule_with_count_then_next() -> None:
    injector = FaultInjector(
        parse_config(
            '{"rules": [{"fault": 429, "path": "/studies$", "method": ["post"], "count": 2},'
            ' {"fault": "delay", "path": "/studies", "delay": 0}]}'
        )
    )
    decisions = [injector.decide("POST", "/v2/studies") for _ in range(3)]
    assert [d[0] if d else None for d in decisions] == [0, 0, 1]
    assert injector.decide("GET", "/v2/studies/1.2") == (1, injector.config.rules[1])
    assert injector.decide("GET", "/health") is None
    state = injector.state()["rules"]
    assert (state[0]["matched"], state[0]["fired"]) == (3, 2)
    assert (state[1]["matched"], state[1]["fired"]) == (2, 2)  # tried only when rule 0 did not fault


def test_seeded_rate_repeats() -> None:
    text = '{"seed": 7, "rules": [{"fault": 503, "rate": 0.5}]}'
    runs = []
    for _ in range(2):
        injector = FaultInjector(parse_config(text))
        runs.append([injector.decide("GET", "/v2/studies") is not None for _ in range(40)])
    assert runs[0] == runs[1]
    assert 5 < sum(runs[0]) < 35
    injector.configure(parse_config(text))  # configure restarts the generator and the counters
    assert [injector.decide("GET", "/x") is not None for _ in range(40)] == runs[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"rules": [{"fault": 200}]}', "rules.0.fault"),
        ('{"rules": [{"fault": "explode"}]}', "rules.0.fault"),
        ('{"rules": [{"fault": 429, "path": "("}]}', "rules.0.path: '(' is not a regular expression"),
        ('{"rules": [{"fault": 429, "rate": 2}]}', "rules.0.rate"),
        ('{"rules": [{"fault": 429, "colour": "red"}]}', "rules.0.colour: Extra inputs are not permitted"),
        ("not json", "invalid fault rules: body: Invalid JSON"),
    ],
)
def test_bad_rules_are_one_readable_line(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_config(text)
    assert str(info.value).startswith("invalid fault rules: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
