from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from dynasync.engine import echo
from dynasync.synapses.base import LookupRef


def test_canonical_numbers_compare_by_value() -> None:
    assert echo.values_equal(1, Decimal("1.00"))
    assert echo.values_equal(2.5, Decimal("2.50"))
    assert not echo.values_equal(Decimal("2.5"), Decimal("2.51"))
    assert not echo.values_equal(True, 1)


def test_canonical_datetimes_at_whole_seconds_in_utc() -> None:
    a = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    b = dt.datetime(2024, 5, 1, 14, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert echo.values_equal(a, b)
    assert not echo.values_equal(a, a + dt.timedelta(seconds=1))


def test_empty_values_are_one_value_and_lookups_ignore_case() -> None:
    assert echo.values_equal(None, "")
    assert echo.values_equal((), None)
    assert echo.values_equal(LookupRef("account", "ABC"), LookupRef("account", "abc"))
    assert not echo.values_equal(LookupRef("account", "abc"), LookupRef("contact", "abc"))
    assert echo.values_equal((3, 1, 2), (1, 2, 3))


def test_is_empty() -> None:
    assert echo.is_empty(None)
    assert echo.is_empty("  ")
    assert echo.is_empty(())
    assert not echo.is_empty(0)
    assert not echo.is_empty(False)
    assert not echo.is_empty("x")


def test_fingerprint_round_trip_and_changed_fields() -> None:
    fp = echo.fingerprint({"name": "Contoso", "revenue": Decimal("10.0")})
    text = echo.encode(fp)
    assert echo.decode(text) == fp
    assert echo.encode(dict(reversed(list(fp.items())))) == text
    assert echo.changed_fields({"name": "Contoso", "revenue": 10}, fp) == []
    assert echo.changed_fields({"name": "Fabrikam", "revenue": 10, "city": None}, fp) == ["name", "city"]
    merged = echo.merge_fingerprint(fp, {"name": "Fabrikam"})
    assert merged["revenue"] == fp["revenue"] and merged["name"] != fp["name"]


def test_decode_tolerates_missing_or_foreign_text() -> None:
    assert echo.decode(None) == {}
    assert echo.decode("") == {}
    assert echo.decode("0123456789abcdef") == {}  # a plain record hash from another writer
    assert echo.decode("[1, 2]") == {}


def test_fast_fingerprint_equals_the_canonical_hash_of_every_value() -> None:
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    class Text(str):
        pass

    berlin = dt.timezone(dt.timedelta(hours=1))
    values = {
        "none": None,
        "empty": "",
        "text": "Contoso",
        "text_subclass": Text("Contoso"),
        "true": True,
        "false": False,
        "int": 42,
        "enum": Level.HIGH,
        "float": 2.5,
        "whole_float": 3.0,
        "decimal": Decimal("10.500"),
        "utc": dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC),
        "micro": dt.datetime(2024, 5, 1, 12, 0, 0, 999, tzinfo=dt.UTC),
        "berlin": dt.datetime(2024, 5, 1, 13, 0, tzinfo=berlin),
        "naive": dt.datetime(2024, 5, 1, 12, 0),
        "date": dt.date(2024, 5, 1),
        "ref": LookupRef("account", "ABC"),
        "multi": (3, 1),
        "no_choices": (),
        "list": [1, 2],
    }
    expected = {name: echo._short_hash(echo.canonical(value)) for name, value in values.items()}
    assert echo.fingerprint(values) == expected
    assert echo.fingerprint(values) == expected  # again, from the cache
    assert {name: echo.field_hash(value) for name, value in values.items()} == expected
    assert echo.fingerprint({"a": 1})["a"] != echo.fingerprint({"a": True})["a"]
    assert echo.fingerprint({"a": None})["a"] == echo.fingerprint({"a": ""})["a"] == echo.EMPTY_HASH


def test_fingerprint_cache_stays_bounded() -> None:
    for i in range(echo._HASHES_LIMIT + 10):
        echo.field_hash(f"value {i}")
    assert len(echo._HASHES) <= echo._HASHES_LIMIT
    assert echo.field_hash("value 1") == echo._short_hash("s:value 1")


_SCALARS = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5))])),
    st.dates(),
    st.builds(LookupRef, st.sampled_from(["account", "contact"]), st.uuids().map(str)),
)
_VALUES = st.one_of(_SCALARS, st.tuples(st.integers(0, 9), st.integers(0, 9)), st.just(()))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), _VALUES, max_size=12))
def test_values_form_decodes_to_the_fingerprint_of_the_values(values: dict[str, object]) -> None:
    # A link created by a full load keeps its values; read again, they must hash exactly as the values did.
    text = echo.encode_values(values)
    assert text.startswith(echo.VALUES_FORM)
    assert echo.decode(text) == echo.fingerprint(values)


def test_values_form_tells_a_changed_field_apart() -> None:
    when = dt.datetime(2025, 6, 22, 14, 31, 20, tzinfo=dt.UTC)
    stored = echo.decode(echo.encode_values({"name": "A", "revenue": Decimal("10.50"), "at": when, "n": 3}))
    now = echo.fingerprint({"name": "A", "revenue": Decimal("10.5"), "at": when, "n": 4})
    assert [k for k in now if stored[k] != now[k]] == ["n"]


def test_values_changes_compares_and_merges_without_leaving_the_values_form() -> None:
    when = dt.datetime(2025, 6, 22, 14, 31, 20, tzinfo=dt.UTC)
    old = {"name": "A", "revenue": Decimal("10.50"), "at": when, "n": 3, "gone": "kept"}
    state = echo.encode_values(old)
    assert echo.values_changes(state, {"name": "A", "revenue": Decimal("10.5"), "at": when}) == (
        [],
        state,
        {},
    )
    new = {"name": "B", "revenue": Decimal("10.5"), "at": when, "n": 4}
    found = echo.values_changes(state, new)
    assert found is not None
    names, text, held = found
    assert names == ["name", "n"]
    assert held == {"name": echo.field_hash("A"), "n": echo.field_hash(3)}  # what the source held before
    assert text.startswith(echo.VALUES_FORM)
    assert echo.decode(text) == echo.fingerprint({**old, **new})  # the field not read again is kept
    assert echo.values_changes(echo.encode({"name": "x"}), new) is None  # a fingerprint: not values form
    assert echo.values_changes("=not json", new) is None


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abcdef"), _VALUES, max_size=6),
    st.dictionaries(st.sampled_from("abcdef"), _VALUES, max_size=6),
)
def test_values_in_sync_agrees_with_comparing_fingerprints(
    held: dict[str, object], now: dict[str, object]
) -> None:
    # The write-back's verdict "the destination holds these values", reached without hashing equal values.
    base = echo.decode(echo.encode_values(held))
    current = echo.fingerprint(now)
    expected = not any(
        base.get(f) != current[f] and (f in base or current[f] != echo.EMPTY_HASH) for f in now
    )
    assert echo.values_in_sync(echo.encode_values(held), now) is expected
    assert echo.values_in_sync(echo.encode_values(now), now) is True


def test_values_in_sync_reads_only_the_values_form() -> None:
    assert echo.values_in_sync(None, {"a": 1}) is None
    assert echo.values_in_sync(echo.encode({"a": echo.field_hash(1)}), {"a": 1}) is None
    assert echo.values_in_sync("=[1]", {"a": 1}) is None
    when = dt.datetime(2025, 6, 22, 14, 31, 20, tzinfo=dt.UTC)
    state = echo.encode_values({"revenue": Decimal("10.50"), "at": when, "tags": (2, 1)})
    assert echo.values_in_sync(state, {"revenue": Decimal("10.5000"), "at": when, "tags": (1, 2)}) is True
    assert echo.values_in_sync(state, {"revenue": Decimal("10.51"), "at": when}) is False
    assert (
        echo.values_in_sync(state, {"city": ""}) is True
    )  # a field never read, still empty: nothing to send
    assert echo.values_in_sync(state, {"city": "Oslo"}) is False


def test_values_form_comparisons_tell_types_apart() -> None:
    # 0 == False == 0.0 in Python, but they are different values to a synapse.
    state = echo.encode_values({"flag": 0, "n": 1, "tags": [1, 0]})
    assert echo.values_in_sync(state, {"flag": False}) is False
    assert echo.values_in_sync(state, {"n": True}) is False
    found = echo.values_changes(state, {"flag": False, "n": 1.0, "tags": (True, False)})
    assert found is not None and found[0] == ["flag", "n", "tags"]
