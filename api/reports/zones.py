"""Buckets on the wall clock of a time zone: pure functions over aware datetimes, no I/O.

Rows are hourly in UTC. An hour of a zone whose offset is a whole number of hours is
exactly one UTC hour, and a day there is 23, 24 or 25 whole UTC hours, so every bucket is
a run of whole UTC hours and reports stay exact. A zone whose offset anywhere in the
window is not whole (Asia/Kolkata, +05:30; Australia/Lord_Howe's half-hour DST; the
local mean times of old dates) would cut UTC hours in two: it is refused, never guessed.

A bucket is [start, end) in UTC; `label` is its start on the zone's wall clock.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Granularity = Literal["hour", "day"]
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
UTC_NAMES = ("UTC", "Etc/UTC", "Z")
DEFAULT_BUCKETS: dict[str, int] = {"hour": 24, "day": 30}


@dataclass(frozen=True)
class Bucket:
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    label: datetime  # start on the zone's wall clock (aware, with the zone's offset)
    text: str = field(init=False, compare=False)  # format_label(label), made once: buckets() is cached

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", format_label(self.label))


def zone(name: str) -> ZoneInfo:
    """The zone called `name`; ValueError when there is none (paths and odd names included)."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name or "\x00" in name:
        raise ValueError(f"{name[:80]!r} is not an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name[:80]!r} is not an IANA time zone name such as Europe/Berlin") from None


def is_utc(tz: ZoneInfo) -> bool:
    return tz.key in UTC_NAMES


def format_label(moment: datetime) -> str:
    """2025-07-16T10:00:00+02:00, or ...Z when the offset is zero (as /report always wrote UTC)."""
    offset = moment.utcoffset()
    if not offset:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat(timespec="seconds")


def uneven_offset_problem(tz: ZoneInfo, start: datetime, end: datetime) -> str | None:
    """Why the window [start, end) cannot be bucketed in tz, or None: an offset that is not whole hours."""
    if is_utc(tz):
        return None
    day = start.date()
    while datetime.combine(day, time(), timezone.utc) < end:
        bad = _first_uneven_offset(tz, day)
        if bad is not None:
            return (
                f"{tz.key} is {bad} hours from UTC on {day.isoformat()}; reports are built from whole UTC hours, "
                "so only zones whose offset is a whole number of hours throughout the window can be answered"
            )
        day += DAY
    return None


@functools.lru_cache(maxsize=8192)
def _first_uneven_offset(tz: ZoneInfo, day: date) -> str | None:
    """The first offset of tz during the UTC day `day` that is not whole hours, as text; None if all are."""
    first = datetime.combine(day, time(), timezone.utc)
    for hour in range(24):
        # An uneven offset lasts months (a standard offset, or a half-hour DST), never
        # less than an hour, so the offset at each hour start finds it in every zone of the tz database.
        offset = (first + hour * HOUR).astimezone(tz).utcoffset() or timedelta()
        if offset % HOUR:
            return _hours(offset)
    return None


def _hours(offset: timedelta) -> str:
    sign = "-" if offset < timedelta() else "+"
    minutes, seconds = divmod(abs(int(offset.total_seconds())), 60)
    text = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return text + (f":{seconds:02d}" if seconds else "")


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """UTC start of the local day: its midnight, or the first instant after a gap that skips midnight."""
    # fold=0 reads a skipped midnight with the offset before the gap, which lands on the
    # first instant of the day after it; an ambiguous midnight takes its first occurrence.
    return datetime.combine(day, time(), tz).astimezone(timezone.utc)


def floor_bucket(moment: datetime, tz: ZoneInfo, granularity: Granularity) -> datetime:
    """UTC start of the bucket of tz that contains moment."""
    hour = moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    if granularity == "hour":
        return hour
    day_start = start_of_day(moment.astimezone(tz).date(), tz)
    return day_start if day_start <= moment else start_of_day(moment.astimezone(tz).date() - DAY, tz)


def is_aligned(moment: datetime, tz: ZoneInfo, granularity: Granularity) -> bool:
    return floor_bucket(moment, tz, granularity) == moment


def step(start: datetime, tz: ZoneInfo, granularity: Granularity, count: int) -> datetime:
    """The UTC start of the bucket `count` buckets after (or, negative, before) the one starting at `start`."""
    if granularity == "hour":
        return start + count * HOUR
    return start_of_day(start.astimezone(tz).date() + count * DAY, tz)


def default_window(now: datetime, tz: ZoneInfo, granularity: Granularity) -> tuple[datetime, datetime]:
    """The last 24 complete hours, or 30 complete days, before the bucket of `now` in tz."""
    end = floor_bucket(now, tz, granularity)
    return step(end, tz, granularity, -DEFAULT_BUCKETS[granularity]), end


@functools.lru_cache(maxsize=256)
def buckets(start: datetime, end: datetime, tz: ZoneInfo, granularity: Granularity) -> tuple[Bucket, ...]:
    """The buckets of tz covering [start, end), both bucket-aligned, in ascending order.

    Cached: most requests ask for the same few windows (the default ones move once an
    hour), and a month of hours is 720 labels to format. Only times, never counts."""
    found: list[Bucket] = []
    current = start
    while current < end:
        following = current + HOUR if granularity == "hour" else step(current, tz, "day", 1)
        found.append(Bucket(current, following, current.astimezone(tz)))
        current = following
    return tuple(found)


def count_buckets(start: datetime, end: datetime, tz: ZoneInfo, granularity: Granularity) -> int:
    if granularity == "hour":
        return int((end - start) / HOUR)
    return (end.astimezone(tz).date() - start.astimezone(tz).date()).days
