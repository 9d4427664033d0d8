"""Canonical hashing: stable across runs and key orders, fixed number and time formats."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tillsyn.agent.evidence import canonical, jsonable, record_hash, timestamp

RECORD = {
    "schema": "tillsyn.evidence/v1",
    "kind": "result",
    "seq": 1,
    "prev_hash": "0" * 64,
    "observed": {
        "age_hours": 26.5,
        "count": 3,
        "ratio": 1e-7,
        "big": 1e21,
        "whole": 2.0,
        "text": "Åtkomst – ok",
        "nested": {"b": [1, 2], "a": None},
    },
}


def test_canonical_json_sorts_keys_and_writes_numbers_the_rfc_8785_way() -> None:
    text = canonical(RECORD).decode()
    assert text.startswith('{"kind":"result","observed":{"age_hours":26.5,"big":1e+21,')
    assert '"ratio":1e-7' in text
    assert '"whole":2}' in text
    assert '"nested":{"a":null,"b":[1,2]}' in text
    assert "Åtkomst – ok" in text  # UTF-8, not \\u escapes


def test_hash_is_independent_of_key_order() -> None:
    reordered = json.loads(json.dumps(RECORD, sort_keys=True))
    reversed_order = dict(reversed(list(RECORD.items())))
    assert record_hash(RECORD) == record_hash(reordered) == record_hash(reversed_order)


def test_hash_is_stable_across_processes() -> None:
    """Another interpreter (another hash seed) computes the same digest."""
    code = (
        "import json,sys; from tillsyn.agent.evidence import record_hash; "
        "print(record_hash(json.loads(sys.stdin.read())))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(RECORD),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert other.stdout.strip() == record_hash(RECORD)


def test_known_vector_pins_the_format() -> None:
    """Changing the canonical form would orphan every stored chain: this must not drift.

    The digest is sha256 of the literal bytes {"a":1,"b":"x","n":26.5,"t":"Å"} in UTF-8,
    which any RFC 8785 implementation produces for this record.
    """
    record = {"t": "Å", "n": 26.5, "b": "x", "a": 1.0, "hash": "ignored"}
    assert record_hash(record) == (
        "84f19ccf744883b28aaabdacacf1368affc70ec0a9a8ea58572e008159afb8ad"
    )


def test_hash_ignores_its_own_field_but_covers_everything_else() -> None:
    changed = dict(RECORD, observed={**RECORD["observed"], "count": 4})  # type: ignore[dict-item]
    assert record_hash(dict(RECORD, hash="x")) == record_hash(RECORD)
    assert record_hash(changed) != record_hash(RECORD)


def test_timestamps_have_one_spelling_in_utc() -> None:
    cet = timezone(timedelta(hours=1))
    assert timestamp(datetime(2026, 1, 2, 4, 5, 6, tzinfo=cet)) == "2026-01-02T03:05:06.000000Z"
    with pytest.raises(ValueError, match="naive"):
        timestamp(datetime(2026, 1, 2))


def test_jsonable_converts_check_output_and_refuses_what_json_cannot_hold() -> None:
    when = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert jsonable({"at": when, "paths": ("/", "/home")}) == {
        "at": "2026-11-23T12:00:00.000000Z",
        "paths": ["/", "/home"],
    }
    with pytest.raises(TypeError, match=r"observed\.x: nan is not a finite number"):
        jsonable({"x": math.nan})
    with pytest.raises(TypeError, match="bytes is not JSON evidence"):
        jsonable({"key": b"\x00"})
    with pytest.raises(TypeError, match="beyond what JSON numbers hold"):
        jsonable(2**60)


def test_secret_material_is_spotted_anywhere_in_evidence() -> None:
    from tillsyn.agent.evidence import find_secret

    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n"
    assert (
        find_secret({"keys": [{"material": pem}]})
        == "evidence.keys[0].material holds a private key"
    )
    assert find_secret({"user": "alice", "hash": "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o"}) == (
        "evidence.hash holds a password hash"
    )
    assert (
        find_secret(
            {
                "fingerprint": "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
                "price": "$5 a month",
                "shell": "/bin/bash",
            }
        )
        is None
    )


def test_one_pass_canonical_form_and_hash_equal_the_two_pass_ones() -> None:
    from tillsyn.agent.evidence import canonical_and_hash

    for record in (
        RECORD,
        {**RECORD, "hash": "abc"},
        {"é": 1, "\U0001f600": 2, "\uffff": 3, "a": {"z": 1.5, "b": [1e21]}},
    ):
        full, content_hash = canonical_and_hash(record)
        assert full == canonical(record)
        assert content_hash == record_hash(record)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6))
def test_fast_canonical_form_is_byte_identical_to_rfc_8785(value: dict[str, object]) -> None:
    import rfc8785

    assert canonical(value) == bytes(rfc8785.dumps(value))


@pytest.mark.parametrize(
    "number",
    [2.0**53, 2.0**60, 1e21, 1e16, 9999999999999998.0, 1e-4, 9.9e-5, 0.1, -0.0, 123456.789],
)
def test_fast_canonical_form_agrees_at_the_float_boundaries(number: float) -> None:
    import rfc8785

    assert canonical({"n": number}) == bytes(rfc8785.dumps({"n": number}))
    from tillsyn.agent.evidence import canonical_and_hash

    nested = {"a": [number, {"b": number}], "hash": "x"}
    assert canonical_and_hash(nested)[0] == bytes(rfc8785.dumps(nested))


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6), st.text(max_size=70))
def test_one_walk_forms_equal_the_reference_forms(value: dict[str, object], digest: str) -> None:
    """What the store keeps and checks is what RFC 8785 gives, with or without ``hash``."""
    import hashlib

    import rfc8785

    from tillsyn.agent import evidence
    from tillsyn.agent.evidence import canonical_and_hash

    record = {**value, "hash": digest}
    without = {k: v for k, v in record.items() if k != "hash"}
    # both encoders: orjson (installed with the store) and the stdlib (an agent alone)
    for encoder in (evidence._compact_sorted_encoder(), evidence._stdlib_compact):
        with patch.object(evidence, "_compact_sorted", encoder):
            full, content_hash = canonical_and_hash(record)
        assert full == bytes(rfc8785.dumps(record))
        assert content_hash == hashlib.sha256(bytes(rfc8785.dumps(without))).hexdigest()
