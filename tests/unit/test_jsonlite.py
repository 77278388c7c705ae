"""The CLI's JSON without the json package: it must agree with json on every value."""

from __future__ import annotations

import datetime
import json

import pytest

from virshle_core.client.jsonlite import dumps, loads

VALUES = [
    [], {}, 0, -7, 2**70, 1.5, 1e300, True, False, None, "", "é\"\\\n\u2028", "🙂",
    [{"id": 1, "name": "web", "ips": ["10.0.0.2"], "provision": {"keys": 2}, "x": None}],
    {"nested": [[[{"deep": [1, [2, [3]]]}]]]},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_agrees_with_json(value):
    assert dumps(value) == json.dumps(value, separators=(",", ":"))
    assert loads(dumps(value)) == json.loads(json.dumps(value))
    assert loads(json.dumps(value, indent=2)) == value


def test_what_json_cannot_hold_is_written_as_text():
    assert dumps({"when": datetime.date(2026, 11, 27)}) == '{"when":"2026-11-27"}'


@pytest.mark.parametrize("text", ["", "[1,", "{1: 2}", "[1] x", "nul", "'a'"])
def test_not_json_is_a_value_error(text):
    with pytest.raises(ValueError):
        loads(text)
