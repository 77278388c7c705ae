"""VM references: ids, names and uuids each in their own namespace (issue 8, item 1)."""

from __future__ import annotations

import pytest

from virshle_core.errors import UsageError
from virshle_core.wire.refs import VmRef, name_problem, validate_name

UUID = "3f0c6a1e-8d2b-4c55-9a61-0e4b5f7d2c10"


@pytest.mark.parametrize("text,kind,value", [
    ("id:7", "id", 7),
    ("name:7", "name", "7"),
    ("name:web", "name", "web"),
    (f"uuid:{UUID.upper()}", "uuid", UUID),
    ("7", "id", 7),  # bare: read by its shape
    (UUID, "uuid", UUID),
    ("web-1", "name", "web-1"),
    ("\u0663", "name", "\u0663"),  # an Arabic-Indic three is not an id
    ("id-card", "name", "id-card"),
])
def test_references_parse_into_their_namespace(text, kind, value):
    ref = VmRef.parse(text)
    assert (ref.kind, ref.value) == (kind, value)


@pytest.mark.parametrize("text", ["id:\u0663", "id:+3", "id:-1", "id: 3", "id:", "id:3\n",
                                  "uuid:nope", f"uuid:{UUID}\n", "name:"])
def test_bad_references_are_usage_errors(text):
    with pytest.raises(UsageError):
        VmRef.parse(text)


def test_a_reference_prints_as_its_wire_form():
    assert str(VmRef.parse("id:07")) == "id:7"
    assert str(VmRef.of("name", "web")) == "name:web"


@pytest.mark.parametrize("name", ["1", "12345", UUID, UUID.upper(), "abc\n", "Web", "-web",
                                  "a" * 64, "", "a b", "a/b", ".."])
def test_names_that_could_be_read_as_something_else_are_refused(name):
    assert name_problem(name)
    with pytest.raises(UsageError, match="is not a valid VM name"):
        validate_name(name)


@pytest.mark.parametrize("name", ["web", "web-1", "1web", "a" * 63, "3f0c6a1e"])
def test_ordinary_names_are_fine(name):
    assert validate_name(name) == name
