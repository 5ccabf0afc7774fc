"""One time convention: aware UTC datetimes, hours as their start, Unix seconds on the wire."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from common.timeutil import (
    HOUR,
    floor_hour,
    format_utc,
    from_epoch,
    hour_start_epoch,
    is_hour_aligned,
    parse_timestamp,
    retention_cutoff,
    utc_now,
)

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-07-16T10:20:30Z", utc(2025, 7, 16, 10, 20, 30)),
        ("2025-07-16T10:20:30+00:00", utc(2025, 7, 16, 10, 20, 30)),
        ("2025-07-16T12:20:30+02:00", utc(2025, 7, 16, 10, 20, 30)),
        ("2025-07-16T04:50:30-05:30", utc(2025, 7, 16, 10, 20, 30)),
        ("2025-07-16T23:30:00-05:00", utc(2025, 7, 17, 4, 30)),
        ("2025-07-16T01:00:00+03:00", utc(2025, 7, 15, 22, 0)),
        ("2025-07-16T10:20:30", utc(2025, 7, 16, 10, 20, 30)),
        ("2025-07-16T10:20:30.123456Z", datetime(2025, 7, 16, 10, 20, 30, 123456, tzinfo=UTC)),
        ("2025-07-16T10:20:30.5+01:00", datetime(2025, 7, 16, 9, 20, 30, 500000, tzinfo=UTC)),
    ],
    ids=[
        "z", "plus-zero", "plus-2h", "minus-5h30", "offset-crosses-midnight-forward", "offset-crosses-midnight-back", "naive-is-utc",
        "fraction-z", "fraction-offset",
    ],
)
def test_parse_timestamp(text, expected):
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    [
        "", "yesterday", "2025-13-01T00:00:00Z", "2025-07-16T25:00:00Z", "2025-02-30T00:00:00Z", "2025-07-16T10:00:00+25:00",
        "16/07/2025 10:00", "2025-07-16T10:00:00Zjunk",
    ],
    ids=["empty", "word", "month-13", "hour-25", "feb-30", "offset-25h", "other-format", "trailing-junk"],
)
def test_parse_timestamp_rejects_garbage(text):
    with pytest.raises(ValueError, match="not an ISO 8601 timestamp"):
        parse_timestamp(text)


@pytest.mark.parametrize("value", [None, 1752660000, b"2025-07-16T10:00:00Z"], ids=["none", "number", "bytes"])
def test_parse_timestamp_rejects_non_strings_with_value_error(value):
    with pytest.raises(ValueError):
        parse_timestamp(value)


@pytest.mark.parametrize("text", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"], ids=["after-9999", "before-year-1"])
def test_parse_timestamp_outside_the_year_range_is_a_value_error_not_an_overflow(text):
    with pytest.raises(ValueError, match="outside the supported range"):
        parse_timestamp(text)


def test_parse_timestamp_at_the_edge_of_the_year_range():
    assert parse_timestamp("9999-12-31T23:59:59Z") == utc(9999, 12, 31, 23, 59, 59)
    assert parse_timestamp("9999-12-31T23:00:00+05:00") == utc(9999, 12, 31, 18)


@pytest.mark.parametrize(
    ("text", "hour"),
    [
        ("2025-07-16T12:30:00+02:00", utc(2025, 7, 16, 10)),
        ("2025-07-16T10:59:59.999999Z", utc(2025, 7, 16, 10)),
        ("2025-07-16T10:00:00Z", utc(2025, 7, 16, 10)),
        ("2025-07-16T12:45:00+05:30", utc(2025, 7, 16, 7)),
        ("2025-07-16T00:15:00+01:00", utc(2025, 7, 15, 23)),
        ("2025-07-16T19:10:00-05:00", utc(2025, 7, 17, 0)),
    ],
    ids=["plus-2h", "last-microsecond", "exact", "half-hour-offset", "previous-day", "next-day"],
)
def test_floor_hour_and_hour_start_epoch_agree_on_the_utc_hour(text, hour):
    moment = parse_timestamp(text)
    assert floor_hour(moment) == hour
    assert hour_start_epoch(moment) == int(hour.timestamp())
    assert from_epoch(hour_start_epoch(moment)) == hour


def test_hour_start_epoch_of_an_aware_non_utc_datetime_is_its_utc_hour():
    ist = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2025, 7, 16, 12, 45, tzinfo=ist)  # 07:15Z
    assert hour_start_epoch(moment) == int(utc(2025, 7, 16, 7).timestamp())
    assert hour_start_epoch(parse_timestamp("2025-07-16T12:30:00+02:00")) == 1752660000


def test_hour_start_epoch_is_a_multiple_of_an_hour():
    assert hour_start_epoch(utc(2025, 7, 16, 10, 59, 59)) % HOUR == 0
    assert hour_start_epoch(utc(1970, 1, 1, 0, 30)) == 0


def test_is_hour_aligned():
    assert is_hour_aligned(utc(2025, 7, 16, 10))
    assert not is_hour_aligned(utc(2025, 7, 16, 10, 0, 0, 1))
    assert not is_hour_aligned(utc(2025, 7, 16, 10, 1))


@pytest.mark.parametrize(
    ("now", "days", "cutoff"),
    [
        (utc(2025, 7, 16, 10, 20), 30, utc(2025, 6, 16, 10)),
        (utc(2025, 7, 16, 10, 0), 1, utc(2025, 7, 15, 10)),
        (utc(2025, 3, 1, 0, 59, 59), 1, utc(2025, 2, 28, 0)),
        (utc(2024, 3, 1, 5, 5), 1, utc(2024, 2, 29, 5)),
    ],
    ids=["30-days", "aligned-now", "across-month", "leap-day"],
)
def test_retention_cutoff_is_the_hour_of_now_minus_the_days(now, days, cutoff):
    assert retention_cutoff(now, days) == cutoff


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (utc(2025, 7, 16, 10), "2025-07-16T10:00:00Z"),
        (datetime(2025, 7, 16, 12, 30, 15, 999999, tzinfo=timezone(timedelta(hours=2))), "2025-07-16T10:30:15Z"),
        (datetime(2025, 7, 16, 22, 0, tzinfo=timezone(timedelta(hours=-5))), "2025-07-17T03:00:00Z"),
    ],
    ids=["utc", "offset-drops-fraction", "negative-offset-next-day"],
)
def test_format_utc(moment, text):
    assert format_utc(moment) == text


def test_format_utc_round_trips_through_parse():
    moment = utc(2025, 7, 16, 10, 20, 30)
    assert parse_timestamp(format_utc(moment)) == moment


def test_utc_now_is_aware_utc():
    assert utc_now().utcoffset() == timedelta(0)
