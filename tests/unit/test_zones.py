"""Buckets on a zone's wall clock: daylight saving days of 23 and 25 hours, uneven offsets refused."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from api.reports import zones

UTC = timezone.utc
BERLIN = zones.zone("Europe/Berlin")
NEW_YORK = zones.zone("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (BERLIN, "2025-03-30", 23),
        (BERLIN, "2025-10-26", 25),
        (BERLIN, "2025-07-16", 24),
        (NEW_YORK, "2025-03-09", 23),
        (NEW_YORK, "2025-11-02", 25),
        (NEW_YORK, "2025-07-16", 24),
    ],
    ids=["berlin-spring", "berlin-autumn", "berlin-summer", "new-york-spring", "new-york-autumn", "new-york-summer"],
)
def test_day_buckets_are_as_long_as_the_day(tz, day, hours):
    start = zones.start_of_day(datetime.fromisoformat(day).date(), tz)
    end = zones.step(start, tz, "day", 1)
    [bucket] = zones.buckets(start, end, tz, "day")
    assert bucket.end - bucket.start == timedelta(hours=hours)
    assert bucket.label.strftime("%Y-%m-%d %H:%M") == f"{day} 00:00"
    assert len(zones.buckets(start, end, tz, "hour")) == hours


def test_hour_buckets_of_the_autumn_day_repeat_two_oclock_with_two_offsets():
    start = zones.start_of_day(datetime(2025, 10, 26).date(), BERLIN)
    hours = zones.buckets(start, zones.step(start, BERLIN, "day", 1), BERLIN, "hour")
    labels = [zones.format_label(b.label) for b in hours]
    assert labels[:4] == ["2025-10-26T00:00:00+02:00", "2025-10-26T01:00:00+02:00", "2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00"]
    assert [b.label.hour for b in hours].count(2) == 2
    assert hours[0].start == utc(2025, 10, 25, 22)


def test_spring_day_in_new_york_skips_two_oclock():
    start = zones.start_of_day(datetime(2025, 3, 9).date(), NEW_YORK)
    hours = zones.buckets(start, zones.step(start, NEW_YORK, "day", 1), NEW_YORK, "hour")
    assert 2 not in [b.label.hour for b in hours]
    assert start == utc(2025, 3, 9, 5)


def test_labels_keep_z_for_utc_and_an_offset_elsewhere():
    moment = utc(2025, 7, 16, 8)
    assert zones.format_label(moment.astimezone(zones.zone("UTC"))) == "2025-07-16T08:00:00Z"
    assert zones.format_label(moment.astimezone(BERLIN)) == "2025-07-16T10:00:00+02:00"
    assert zones.format_label(moment.astimezone(NEW_YORK)) == "2025-07-16T04:00:00-04:00"


def test_default_windows_end_at_the_bucket_of_now():
    now = utc(2025, 7, 16, 22, 30)  # 00:30 on the 17th in Berlin
    assert zones.default_window(now, BERLIN, "hour") == (utc(2025, 7, 15, 22), utc(2025, 7, 16, 22))
    start, end = zones.default_window(now, BERLIN, "day")
    assert end == utc(2025, 7, 16, 22)  # midnight of the 17th in Berlin
    assert start == utc(2025, 6, 16, 22)
    assert zones.count_buckets(start, end, BERLIN, "day") == 30


def test_day_window_across_a_change_of_offset_counts_calendar_days():
    start = zones.start_of_day(datetime(2025, 10, 20).date(), BERLIN)
    end = zones.start_of_day(datetime(2025, 11, 3).date(), BERLIN)
    days = zones.buckets(start, end, BERLIN, "day")
    assert len(days) == zones.count_buckets(start, end, BERLIN, "day") == 14
    assert sum((b.end - b.start for b in days), timedelta()) == timedelta(hours=14 * 24 + 1)
    assert all(b.end == nxt.start for b, nxt in zip(days, days[1:], strict=False))


@pytest.mark.parametrize(
    ("moment", "granularity", "aligned"),
    [
        (utc(2025, 7, 15, 22), "day", True),
        (utc(2025, 7, 15, 23), "day", False),
        (utc(2025, 7, 15, 23), "hour", True),
        (utc(2025, 7, 15, 23, 30), "hour", False),
        (utc(2025, 3, 29, 23), "day", True),  # 30 March starts at +01:00
        (utc(2025, 3, 30, 22), "day", True),  # 31 March starts at +02:00
    ],
)
def test_alignment_in_berlin(moment, granularity, aligned):
    assert zones.is_aligned(moment, BERLIN, granularity) is aligned


@pytest.mark.parametrize(
    ("name", "start", "why"),
    [
        ("Asia/Kolkata", utc(2025, 7, 1), "+05:30"),
        ("Asia/Kathmandu", utc(2025, 7, 1), "+05:45"),
        ("Australia/Lord_Howe", utc(2025, 7, 1), "+10:30"),
        ("Europe/Berlin", utc(1890, 7, 1), "+00:53:28"),
    ],
    ids=["kolkata", "kathmandu", "lord-howe-winter", "berlin-mean-time"],
)
def test_uneven_offsets_are_refused(name, start, why):
    problem = zones.uneven_offset_problem(zones.zone(name), start, start + timedelta(days=1))
    assert problem is not None and why in problem and name in problem


def test_whole_hour_zones_are_accepted_across_their_changes():
    assert zones.uneven_offset_problem(BERLIN, utc(2025, 1, 1), utc(2026, 1, 1)) is None
    assert zones.uneven_offset_problem(NEW_YORK, utc(2025, 1, 1), utc(2026, 1, 1)) is None
    assert zones.uneven_offset_problem(zones.zone("UTC"), utc(1890, 1, 1), utc(1891, 1, 1)) is None


def test_an_uneven_offset_anywhere_in_the_window_is_found():
    # Lord Howe is +11:00 in summer (whole) and +10:30 from April: a window reaching into April fails.
    lord_howe = zones.zone("Australia/Lord_Howe")
    assert zones.uneven_offset_problem(lord_howe, utc(2025, 1, 10), utc(2025, 1, 20)) is None
    assert zones.uneven_offset_problem(lord_howe, utc(2025, 3, 20), utc(2025, 4, 20)) is not None


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "/etc/localtime", "Europe/Berlin\x00", "x" * 100])
def test_unknown_zones_are_value_errors(name):
    with pytest.raises(ValueError, match="not an IANA time zone"):
        zones.zone(name)


def test_consecutive_runs_and_the_hours_outside_them():
    from datetime import date

    from api.reports.reading import consecutive_runs, hours_outside

    days = [date(2025, 7, d) for d in (1, 2, 3, 5, 7, 8)]
    assert consecutive_runs(days) == [(days[0], days[2]), (days[3], days[3]), (days[4], days[5])]
    assert consecutive_runs([]) == []
    start, end = utc(2025, 6, 30, 5), utc(2025, 7, 9, 3)
    assert hours_outside(start, end, days) == [
        (start, utc(2025, 7, 1)), (utc(2025, 7, 4), utc(2025, 7, 5)), (utc(2025, 7, 6), utc(2025, 7, 7)), (utc(2025, 7, 9), end)
    ]
    assert hours_outside(utc(2025, 7, 1), utc(2025, 7, 4), days[:3]) == []
