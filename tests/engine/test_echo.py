from __future__ import annotations

import datetime as dt
from decimal import Decimal

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
