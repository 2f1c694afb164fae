"""Time ranges of the Dataverse date query functions (``Today``, ``LastXDays``, ``On``...), in UTC.

The service evaluates them in the caller's time zone; the emulator's users are all UTC. Weeks start on Sunday
(the default org setting). Fiscal-period functions are not implemented and say so.
"""

from __future__ import annotations

import datetime as dt

from dynasync.emulator.errors import EmulatorError, not_implemented

Range = tuple[dt.datetime | None, dt.datetime | None]
"""Start (inclusive) and end (exclusive); None means open."""

NO_VALUE = frozenset(
    {
        "Today", "Yesterday", "Tomorrow", "Last7Days", "Next7Days", "LastWeek", "ThisWeek", "NextWeek",
        "LastMonth", "ThisMonth", "NextMonth", "LastYear", "ThisYear", "NextYear",
    }
)  # fmt: skip
WITH_COUNT = frozenset(
    {
        "LastXHours", "LastXDays", "LastXWeeks", "LastXMonths", "LastXYears", "NextXHours", "NextXDays",
        "NextXWeeks", "NextXMonths", "NextXYears", "OlderThanXMinutes", "OlderThanXHours", "OlderThanXDays",
        "OlderThanXWeeks", "OlderThanXMonths", "OlderThanXYears",
    }
)  # fmt: skip
ABSOLUTE = frozenset({"On", "OnOrAfter", "OnOrBefore"})
FISCAL = frozenset(
    {
        "LastFiscalYear", "ThisFiscalYear", "NextFiscalYear", "LastFiscalPeriod", "ThisFiscalPeriod",
        "NextFiscalPeriod", "LastXFiscalPeriods", "LastXFiscalYears", "NextXFiscalPeriods", "NextXFiscalYears",
        "InFiscalYear", "InFiscalPeriod", "InFiscalPeriodAndYear", "InOrAfterFiscalPeriodAndYear",
        "InOrBeforeFiscalPeriodAndYear",
    }
)  # fmt: skip
DATE_FUNCTIONS = NO_VALUE | WITH_COUNT | ABSOLUTE | FISCAL


def _day(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)


def _add_months(d: dt.date, months: int) -> dt.date:
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = 31
    while True:
        try:
            return dt.date(year, month, min(d.day, last))
        except ValueError:
            last -= 1


def _month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def _week_start(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=(d.weekday() + 1) % 7)  # Sunday


def _count(name: str, values: tuple[object, ...]) -> int:
    if len(values) != 1:
        raise EmulatorError(
            400, "0x80060888", f"The function '{name}' requires the parameter 'PropertyValue'."
        )
    try:
        return int(str(values[0]))
    except ValueError:
        raise EmulatorError(
            400, "0x80060888", f"Cannot convert the literal '{values[0]}' to the expected type 'Edm.Int32'."
        ) from None


def _absolute_date(name: str, values: tuple[object, ...]) -> dt.date:
    if len(values) != 1:
        raise EmulatorError(
            400, "0x80060888", f"The function '{name}' requires the parameter 'PropertyValue'."
        )
    value = values[0]
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise EmulatorError(
            400,
            "0x80060888",
            f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.",
        ) from None


def _fixed_range(name: str, today: dt.date) -> Range:
    spans: dict[str, tuple[dt.date, dt.date]] = {
        "Today": (today, today + dt.timedelta(days=1)),
        "Yesterday": (today - dt.timedelta(days=1), today),
        "Tomorrow": (today + dt.timedelta(days=1), today + dt.timedelta(days=2)),
        "ThisWeek": (_week_start(today), _week_start(today) + dt.timedelta(days=7)),
        "LastWeek": (_week_start(today) - dt.timedelta(days=7), _week_start(today)),
        "NextWeek": (_week_start(today) + dt.timedelta(days=7), _week_start(today) + dt.timedelta(days=14)),
        "ThisMonth": (_month_start(today), _add_months(_month_start(today), 1)),
        "LastMonth": (_add_months(_month_start(today), -1), _month_start(today)),
        "NextMonth": (_add_months(_month_start(today), 1), _add_months(_month_start(today), 2)),
        "ThisYear": (dt.date(today.year, 1, 1), dt.date(today.year + 1, 1, 1)),
        "LastYear": (dt.date(today.year - 1, 1, 1), dt.date(today.year, 1, 1)),
        "NextYear": (dt.date(today.year + 1, 1, 1), dt.date(today.year + 2, 1, 1)),
    }
    start, end = spans[name]
    return _day(start), _day(end)


def date_range(name: str, values: tuple[object, ...], now: dt.datetime) -> Range:
    """The half-open UTC range a date query function selects at time ``now``.

    Raises:
        EmulatorError: 501 for fiscal functions, 400 for a bad parameter.
    """
    if name in FISCAL:
        raise not_implemented(f"the fiscal-period query function Microsoft.Dynamics.CRM.{name}")
    now = now.astimezone(dt.UTC).replace(microsecond=0)
    today = now.date()
    up_to_now = now + dt.timedelta(seconds=1)  # "last" ranges include the current second
    if name == "Last7Days":
        return _day(today - dt.timedelta(days=7)), up_to_now
    if name == "Next7Days":
        return now, _day(today + dt.timedelta(days=8))
    if name in NO_VALUE:
        return _fixed_range(name, today)
    if name in ABSOLUTE:
        day = _absolute_date(name, values)
        if name == "On":
            return _day(day), _day(day + dt.timedelta(days=1))
        if name == "OnOrAfter":
            return _day(day), None
        return None, _day(day + dt.timedelta(days=1))
    n = _count(name, values)
    unit = name.removeprefix("LastX").removeprefix("NextX").removeprefix("OlderThanX")
    if name.startswith("OlderThanX"):
        return None, _shift(now, unit, -n)
    if name.startswith("LastX"):
        start = _shift(now, unit, -n) if unit == "Hours" else _day(_shift(now, unit, -n).date())
        return start, up_to_now
    end = (
        _shift(now, unit, n) if unit == "Hours" else _day(_shift(now, unit, n).date() + dt.timedelta(days=1))
    )
    return now, end


def _shift(now: dt.datetime, unit: str, n: int) -> dt.datetime:
    if unit == "Minutes":
        return now + dt.timedelta(minutes=n)
    if unit == "Hours":
        return now + dt.timedelta(hours=n)
    if unit == "Days":
        return now + dt.timedelta(days=n)
    if unit == "Weeks":
        return now + dt.timedelta(weeks=n)
    if unit == "Months":
        d = _add_months(now.date(), n)
        return now.replace(year=d.year, month=d.month, day=d.day)
    if unit == "Years":
        d = _add_months(now.date(), 12 * n)
        return now.replace(year=d.year, month=d.month, day=d.day)
    raise not_implemented(f"the query function unit {unit}")  # pragma: no cover - names are fixed above
