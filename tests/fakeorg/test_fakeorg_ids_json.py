from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from plugin.fakeorg import sf_id, to18
from plugin.fakeorg.ids import org_id_for
from plugin.fakeorg.jsonlit import _NUMBER, Lit, dumps, dumps_bytes, loads


def test_to18_matches_known_salesforce_ids() -> None:
    # Pairs from Salesforce documentation / real orgs.
    assert to18("001D000000IRFma") == "001D000000IRFmaIAH"
    assert to18("0057e00000RmwSW") == "0057e00000RmwSWAAZ"
    assert to18("001D000000IRFmaIAH") == "001D000000IRFmaIAH"


def test_sf_id_pads_the_counter_and_appends_the_checksum() -> None:
    assert sf_id("001", 1) == "001000000000001AAA"
    assert sf_id("a0B", 42) == to18("a0B000000000042")
    assert len(sf_id("00P", 999_999_999_999)) == 18


def test_org_id_for_is_deterministic_and_well_formed() -> None:
    first = org_id_for("mini")
    assert first == org_id_for("mini") != org_id_for("other")
    assert first.startswith("00D") and len(first) == 18 and to18(first[:15]) == first


@given(st.lists(st.from_regex(_NUMBER, fullmatch=True), max_size=5))
def test_number_literals_round_trip_exactly(literals: list[str]) -> None:
    text = "[" + ",".join(literals) + "]"
    assert dumps(loads(text)) == text


@given(st.text())
def test_strings_round_trip(text: str) -> None:
    assert json.loads(dumps_bytes({"s": text})) == {"s": text}


def test_lit_is_written_raw_and_plain_strings_are_quoted() -> None:
    body = {"n": Lit("1.50"), "z": Lit("-0"), "s": "1.50", "b": True, "x": None, "l": [Lit("1e5")]}
    assert dumps(body) == '{"n":1.50,"z":-0,"s":"1.50","b":true,"x":null,"l":[1e5]}'


def test_lone_surrogates_fall_back_to_ascii_escapes() -> None:
    assert dumps_bytes(["\ud800é"]) == b'["\\ud800\\u00e9"]'
