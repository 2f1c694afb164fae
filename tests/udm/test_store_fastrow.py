"""The generated row code gives exactly what the general coercion and template-built creates give, for any values."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dynasync.errors import StoreError
from dynasync.udm import store_bulk, store_fastrow
from dynasync.udm import store_codec as codec
from dynasync.udm import store_tables as t
from dynasync.udm.model import FieldType, UdmEntity, UdmField
from dynasync.udm.store import ApplyResult, IncomingRow, UdmStore
from dynasync.udm.store_schema import coerce_values

from .test_store_apply_paths import apply, snapshot, twins  # noqa: F401  (twins is a fixture)

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
DIALECTS = ["sqlite", "postgresql"]

FIELDS = [
    UdmField("s", FieldType.STRING, max_length=5),
    UdmField("s_default", FieldType.STRING),
    UdmField("txt", FieldType.TEXT),
    UdmField("choice", FieldType.CHOICE),
    UdmField("ref", FieldType.REFERENCE, reference="other"),
    UdmField("i", FieldType.INTEGER),
    UdmField("big", FieldType.BIGINT),
    UdmField("dec", FieldType.DECIMAL),
    UdmField("dec2", FieldType.DECIMAL),
    UdmField("f", FieldType.FLOAT),
    UdmField("b", FieldType.BOOLEAN),
    UdmField("when", FieldType.DATETIME),
    UdmField("day", FieldType.DATE),
    UdmField("multi", FieldType.MULTICHOICE),
    UdmField("key", FieldType.UUID),
]
RETIRED = UdmField("old", FieldType.STRING, max_length=10)

ZONES = [
    dt.UTC,
    None,  # naive
    dt.timezone(dt.timedelta(hours=2)),
    dt.timezone(dt.timedelta(hours=-5, minutes=-30)),
    dt.timezone(dt.timedelta(0), "Z"),  # UTC by offset, but not the dt.UTC object
]
AWARE = [zone for zone in ZONES if zone is not None]


def text(**sizes: int) -> st.SearchStrategy[str]:
    """Text without NUL, which PostgreSQL text cannot hold on either path (and without lone surrogates)."""
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), **sizes)


class Text(str):
    """A str subclass: never taken as it is."""


anything = st.one_of(
    st.none(),
    text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.sampled_from(ZONES)),
    st.dates(),
    st.uuids(),
    st.lists(text(max_size=4), max_size=3),
    st.tuples(text(max_size=3)),
    st.builds(Text, text(max_size=8)),
    st.dictionaries(text(max_size=2), st.integers(), max_size=1),
    st.binary(max_size=3),
)
many_digits = st.builds(
    lambda digits, exponent: decimal.Decimal(digits).scaleb(exponent),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=-30, max_value=12),
)
# Values each field takes (some in a shape the coercer converts, e.g. text for an integer).
FITTING: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.STRING: text(max_size=5),
    FieldType.TEXT: text(max_size=30),
    FieldType.CHOICE: text(max_size=6),
    FieldType.REFERENCE: st.one_of(st.uuids().map(str), text(max_size=36)),
    FieldType.INTEGER: st.one_of(st.integers(min_value=-(2**31), max_value=2**31 - 1), st.booleans()),
    FieldType.BIGINT: st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.integers(min_value=-(2**40), max_value=2**40).map(str),
    ),
    FieldType.DECIMAL: st.one_of(
        st.builds(
            lambda digits, exponent: decimal.Decimal(digits).scaleb(exponent),
            st.integers(min_value=-(10**27), max_value=10**27),
            st.integers(min_value=-30, max_value=0),
        ),
        st.decimals(places=2, min_value=-(10**12), max_value=10**12),
        st.decimals(min_value=-(10**20), max_value=10**20, allow_nan=False, allow_infinity=False),
        st.floats(min_value=-1e20, max_value=1e20),
        st.decimals(places=3, min_value=-1000, max_value=1000).map(str),
    ),
    FieldType.FLOAT: st.one_of(st.floats(), st.integers(max_value=2**60), st.decimals(places=2).map(str)),
    FieldType.BOOLEAN: st.one_of(st.booleans(), st.sampled_from([0, 1, "yes", "No", " true "])),
    FieldType.DATETIME: st.one_of(
        st.datetimes(timezones=st.sampled_from(AWARE)),
        st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    ),
    FieldType.DATE: st.one_of(st.dates(), st.dates().map(dt.date.isoformat)),
    FieldType.MULTICHOICE: st.one_of(
        st.text(alphabet="ab;", min_size=2, max_size=6),
        st.lists(st.text(alphabet="abc", max_size=2), max_size=3),
        st.frozensets(st.sampled_from(["x", "y"])),
    ),
    FieldType.UUID: st.one_of(st.uuids(), st.uuids().map(lambda u: str(u).upper())),
}
# Values of the field's kind that do not fit (too long, out of range, not finite, naive, not a UUID...), or
# that fit but never as they are.
MISFITTING: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.STRING: text(min_size=6, max_size=8),
    FieldType.TEXT: st.builds(Text, text(max_size=3)),
    FieldType.CHOICE: st.lists(text(max_size=2), max_size=2),
    FieldType.REFERENCE: text(min_size=37, max_size=40),
    FieldType.INTEGER: st.one_of(st.integers(min_value=2**31, max_value=2**40), st.floats(), st.just("1.5")),
    FieldType.BIGINT: st.one_of(st.integers(min_value=2**63, max_value=2**70), st.just(-(2**63) - 1)),
    FieldType.DECIMAL: st.one_of(many_digits, st.decimals(allow_nan=True, allow_infinity=True), st.just("x")),
    FieldType.FLOAT: st.one_of(st.booleans(), st.just("x")),
    FieldType.BOOLEAN: st.sampled_from([2, -1, "maybe", 1.0]),
    FieldType.DATETIME: st.one_of(st.datetimes(), st.just("2024-13-01"), st.dates()),
    FieldType.DATE: st.one_of(st.datetimes(), st.just("2024-02-30")),
    FieldType.MULTICHOICE: st.one_of(st.integers(), st.dictionaries(text(max_size=1), st.none(), max_size=1)),
    FieldType.UUID: st.one_of(text(max_size=5), st.integers()),
}


@st.composite
def value_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """Values of a random subset of the fields in random order.

    Most rows hold fitting values (or None) only; others one value that does not fit, of the field's kind, or
    values of any type; a few carry an unknown field.
    """
    order = draw(st.permutations(FIELDS))
    chosen = order[: draw(st.integers(min_value=0, max_value=len(order)))]
    mode = draw(st.sampled_from(["fitting", "fitting", "one misfit", "one misfit", "any"]))
    values = {
        f.name: draw(st.one_of(FITTING[f.type], st.none(), *([anything] if mode == "any" else [])))
        for f in chosen
    }
    if mode == "one misfit" and chosen:
        misfit = draw(st.sampled_from(chosen))
        values[misfit.name] = draw(MISFITTING[misfit.type])
    if draw(st.sampled_from(["fields only"] * 15 + ["unknown field"])) == "unknown field":
        values["nope"] = 1
    return values


def info_of(dialect: str) -> t.EntityInfo:
    fields = {f.name: t.CatalogField(f) for f in FIELDS[:7]}
    fields[RETIRED.name] = t.CatalogField(RETIRED, retired=True)  # a column that rows never fill
    fields.update((f.name, t.CatalogField(f)) for f in FIELDS[7:])
    return t.build_info("thing", fields, (), dialect)


INFOS = {dialect: info_of(dialect) for dialect in DIALECTS}


def norm(value: Any) -> tuple[str, str]:
    """Type and repr: tells 1 from True, Decimal('1.0') from Decimal('1'), -0.0 from 0.0, and time zones."""
    return type(value).__name__, repr(value)


def norm_dict(values: Mapping[str, Any]) -> list[tuple[str, tuple[str, str]]]:
    return [(k, norm(v)) for k, v in values.items()]  # key order counts (the created log keeps it)


def general(
    info: t.EntityInfo, dialect: str, values: Mapping[str, Any]
) -> tuple[dict[str, Any], tuple[Any, ...]] | str:
    """The general path: coerce_row (coerce_values naming the field), then a create built from the template."""
    caps = {k: cap for k, f in info.entity.fields.items() if (cap := codec.text_cap(f)) is not None}
    try:
        canonical = codec.coerce_row(values, info.coercers, caps)
    except (KeyError, ValueError, TypeError, ArithmeticError):
        try:
            canonical = coerce_values(info, values)
        except StoreError as exc:
            return exc.message
        raise AssertionError("coerce_row failed where coerce_values did not") from None
    data: dict[str, Any] = dict.fromkeys(info.fields)
    data.update(canonical)
    for column in info.table.columns:
        found = store_bulk._converter_factory(column, dialect)
        if column.name in info.fields and found is not None and data[column.name] is not None:
            data[column.name] = found[0]()(data[column.name])
    return canonical, tuple(data[name] for name in info.fields)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=400, deadline=None)
@given(values=value_dicts())
def test_generated_row_functions_equal_the_general_path(dialect: str, values: dict[str, Any]) -> None:
    info = INFOS[dialect]
    code = store_fastrow.RowCode(info, dialect)  # fresh: examples bring more shapes than one keeps
    want = general(info, dialect, values)
    shape = tuple(values)
    for build in (False, True):
        fn = code.compile(shape, build)
        try:
            got = fn(values)
        except (KeyError, ValueError, TypeError, ArithmeticError):
            got = None
        if isinstance(want, str):
            assert got is None, want  # the caller then takes the general path, which names the field
            continue
        assert got is not None, values  # every row that fits takes the generated path
        canonical, columns = got if build else (got, None)
        assert norm_dict(canonical) == norm_dict(want[0])
        if columns is not None:
            assert [norm(v) for v in columns] == [norm(v) for v in want[1]]
            assert len(columns) == len(code.columns)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=100, deadline=None)
@given(rows=st.lists(value_dicts(), min_size=1, max_size=6))
def test_prepare_gives_the_same_values_and_errors_on_both_paths(
    dialect: str, rows: list[dict[str, Any]]
) -> None:
    info = info_of(dialect)  # fresh: its row code has every shape still to compile
    incoming = [IncomingRow(f"x{i}", values, T0) for i, values in enumerate(rows)]
    old = store_fastrow.prepare(info, dialect, T0, incoming, generated=False)
    coerced = store_fastrow.prepare(info, dialect, T0, incoming)  # linked rows only: no columns
    built = store_fastrow.prepare(info, dialect, T0, incoming, frozenset())  # every row a future create
    for values, before, plain, full in zip(rows, old, coerced, built, strict=True):
        want = general(info, dialect, values)
        if isinstance(want, str):
            assert before == plain == full == want
            continue
        assert not isinstance(before, str) and not isinstance(plain, str) and not isinstance(full, str)
        assert norm_dict(before[0]) == norm_dict(plain[0]) == norm_dict(full[0]) == norm_dict(want[0])
        assert before[1:] == plain[1:] == (T0, codec.hash_canonical(want[0]), None)
        assert full[1:3] == plain[1:3] and full[3] is not None
        assert [norm(v) for v in full[3]] == [norm(v) for v in want[1]]


@settings(max_examples=300, deadline=None)
@given(when=st.datetimes(timezones=st.sampled_from(AWARE)))
def test_datetime_text_is_what_sqlalchemy_writes_on_sqlite(when: dt.datetime) -> None:
    want = when.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    assert store_bulk.sqlite_datetime_text(when) == want
    code = store_fastrow.RowCode(INFOS["sqlite"], "sqlite")
    _values, columns = code.compile(("when",), True)({"when": when})
    assert columns[code.columns.index("when")] == want


def test_shapes_beyond_the_limit_take_the_general_path() -> None:
    code = store_fastrow.RowCode(INFOS["sqlite"], "sqlite")
    names = [f.name for f in FIELDS]
    shapes = [(a, b) for a in names for b in names if a != b]
    assert len(shapes) > store_fastrow.MAX_SHAPES
    fns = [code.compile(shape, False) for shape in shapes]
    assert len(code.coercers) == store_fastrow.MAX_SHAPES
    assert fns[0](dict.fromkeys(shapes[0])) == dict.fromkeys(shapes[0])
    assert fns[-1](dict.fromkeys(shapes[-1])) is None  # not compiled: the general path serves it
    fresh = store_fastrow.RowCode(INFOS["sqlite"], "sqlite")
    assert fresh.compile(("s", "nope"), True)({"s": "a", "nope": 1}) is None  # unknown field


@dataclass(repr=False)
class Pair:
    """Twin stores holding the test entity, and the outcomes of every page applied to each so far."""

    fast: UdmStore
    general: UdmStore
    fast_seen: ApplyResult = field(default_factory=ApplyResult)
    general_seen: ApplyResult = field(default_factory=ApplyResult)


@pytest.fixture
def pair(twins: tuple[UdmStore, UdmStore]) -> Pair:  # noqa: F811
    entity = UdmEntity("account", {f.name: f for f in FIELDS}, match_keys=("s",))
    for store in twins:
        store.ensure_entity(entity)
    return Pair(*twins)


PAGES = iter(range(10**9))


# Examples share the stores, so a failing example cannot be shrunk on its own: report it as found.
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(rows=st.lists(value_dicts(), min_size=1, max_size=8))
def test_fast_creates_store_what_the_general_path_stores(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]]
) -> None:
    page = next(PAGES)
    incoming = [
        IncomingRow(
            f"p{page}-{i}", values, T0 + dt.timedelta(seconds=i), str(i), hash=None if i % 2 else f"h{i}"
        )
        for i, values in enumerate(rows)
    ]
    # All outcomes so far name the records of earlier pages alike in both stores.
    pair.fast_seen.rows += apply(pair.fast, incoming, True, monkeypatch).rows
    pair.general_seen.rows += apply(pair.general, incoming, False, monkeypatch).rows
    # Compared as text: a float NaN (which PostgreSQL keeps) is never equal to itself.
    assert repr(snapshot(pair.fast, pair.fast_seen)) == repr(snapshot(pair.general, pair.general_seen))


def test_a_page_of_edge_values_is_stored_alike_on_both_paths(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    edge: list[dict[str, Any]] = [
        {"s": "abcde", "dec": decimal.Decimal("12345678901234567.123456789"), "when": T0, "b": True},
        {
            "s": "x",
            "dec": decimal.Decimal("1e-12"),
            "dec2": decimal.Decimal("-0"),
            "when": T0.astimezone(plus2),
        },
        {"s": "y", "i": 2**31 - 1, "big": -(2**63), "f": -0.0, "day": dt.date(2024, 2, 29), "b": False},
        {"s": "z", "multi": ("b", "a", "b"), "key": uuid.UUID(int=5), "txt": "t" * 5000, "ref": "r" * 36},
        {"s": "toolong"},
        {"s": "w", "i": 2**31},
        {"s": "v", "when": dt.datetime(2024, 1, 1)},
        {"s": "u", "dec": decimal.Decimal("NaN")},
        {"s": "t", "b": "maybe"},
        {"s": "q", "nope": 1},
        {
            "s": Text("sub"),
            "dec": 2.5,
            "when": "2024-01-02T03:04:05Z",
            "day": "2024-01-03",
            "b": "yes",
            "f": 3,
        },
        {"dec2": decimal.Decimal("3.14159265358979323846"), "multi": "c;a", "i": True},
    ]
    incoming = [IncomingRow(f"edge-{i}", values, T0, str(i)) for i, values in enumerate(edge)]
    got = snapshot(pair.fast, apply(pair.fast, incoming, True, monkeypatch))
    want = snapshot(pair.general, apply(pair.general, incoming, False, monkeypatch))
    assert got == want
    assert [o[2] for o in got["outcomes"]] == ["created"] * 4 + ["failed"] * 6 + ["created"] * 2
    errors = [o[5] for o in got["outcomes"] if o[2] == "failed"]
    assert errors[0] == "UDM field account.s: text of 7 characters exceeds the maximum length 5"
    assert errors[-1] == "UDM entity account has no field 'nope'"
    multi = [r[1]["multi"] for r in got["records"] if r[0] == "new:edge-11"]
    assert multi == ["a;c"]
