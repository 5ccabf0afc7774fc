"""The reads behind the reports: which table answers which question (README "Reports").

- one page, any buckets: its hourly rows in page_views (an index range per day);
- one site, or all pages (`site=*`): site_hours, one row per site, hour and shard;
- top sites: site_hours; totals of a site or of all pages: site_hours;
- top pages: page_days for the UTC days the cleaner has rolled up (listed in rollup_days)
  and inside the window, hourly page_views rows for the hours outside those days.
Visitors are always a union of sketches, never a sum.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from api.errors import ApiError
from api.reports.params import ALL_SITES, ReportQuery, TopQuery
from common import db, sql
from common.sql import COMPLETE_DAYS, TOP_SITES

T = TypeVar("T")
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Counts:
    views: int = 0
    visitors: int = 0


@dataclass(frozen=True)
class Ranked:
    name: str  # a page or a site
    counts: Counts


def bucket_counts(database: db.ReportDatabase, query: ReportQuery, starts: list[datetime]) -> tuple[dict[int, Counts], Counts]:
    """Counts per bucket (by its index in `starts`; absent = none) and for the whole window."""
    hourly = query.granularity == "hour"
    rows, params = _rows_of(query.page, query.site)
    params.update(start=query.start, end=query.end)
    if not hourly:
        params["bounds"] = "{" + ",".join(start.isoformat() for start in starts) + "}"
    found = _read(database, lambda connection: connection.execute(sql.bucket_counts(rows, hourly), params).all())
    if not hourly:
        return _by_bucket(found)
    start = query.start.timestamp()  # an hourly bucket is its UTC hour: its index is hours since the start
    counts = {int(hour.timestamp() - start) // 3600: Counts(views, visitors) for hour, views, visitors in found if hour is not None}
    totals = next((Counts(views or 0, visitors) for hour, views, visitors in found if hour is None), Counts())
    return counts, totals


def top_sites(database: db.ReportDatabase, query: TopQuery) -> tuple[list[Ranked], Counts]:
    def work(connection: Connection) -> tuple[list[Ranked], Counts]:
        rows = connection.execute(TOP_SITES, {"start": query.start, "end": query.end, "limit": query.limit}).all()
        return [Ranked(r.site, Counts(r.views, r.visitors)) for r in rows], _window_totals(connection, None, query)

    return _read(database, work, snapshot=True)


def top_pages(database: db.ReportDatabase, query: TopQuery) -> tuple[list[Ranked], Counts]:
    def work(connection: Connection) -> tuple[list[Ranked], Counts]:
        first, last = _whole_days(query.start, query.end)
        days = list(connection.execute(COMPLETE_DAYS, {"first": first, "last": last}).scalars())
        ranges = hours_outside(query.start, query.end, days)
        runs = consecutive_runs(days)
        params: dict = {"days": days, "run_starts": [r[0] for r in runs], "run_ends": [r[1] for r in runs], "limit": query.limit, "site": query.site}
        for n, (low, high) in enumerate(ranges):
            params.update({f"from{n}": low, f"to{n}": high})
        rows = connection.execute(sql.top_pages(len(ranges), query.site is not None), params).all()
        return [Ranked(r.page, Counts(r.views, r.visitors)) for r in rows], _window_totals(connection, query.site, query)

    return _read(database, work, snapshot=True)


def hours_outside(start: datetime, end: datetime, days: list[date]) -> list[tuple[datetime, datetime]]:
    """[start, end) without the given whole UTC days (sorted, each inside it), as sorted ranges."""
    ranges: list[tuple[datetime, datetime]] = []
    cursor = start
    for day in days:
        day_start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        if cursor < day_start:
            ranges.append((cursor, day_start))
        cursor = day_start + DAY
    if cursor < end:
        ranges.append((cursor, end))
    return ranges


def consecutive_runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as (first, last) runs of consecutive days: [1, 2, 3, 5] -> [(1, 3), (5, 5)]."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + DAY == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _whole_days(start: datetime, end: datetime) -> tuple[date, date]:
    """[first, last): the UTC days that lie whole inside [start, end)."""
    first = start.date() if start.hour == 0 else start.date() + DAY
    return first, end.date()


def _rows_of(page: str | None, site: str | None) -> tuple[str, dict]:
    if page is not None:
        return "page", {"page": page}
    if site is None or site == ALL_SITES:
        return "all", {}
    return "site", {"site": site}


def _window_totals(connection: Connection, site: str | None, query: TopQuery) -> Counts:
    rows, params = _rows_of(None, site)
    params.update(bounds="{" + query.start.isoformat() + "}", start=query.start, end=query.end)
    return _by_bucket(connection.execute(sql.bucket_counts(rows, False), params).all())[1]


def _by_bucket(rows: list) -> tuple[dict[int, Counts], Counts]:
    """(1-based bucket or None for the window, views, visitors) rows -> per 0-based bucket, and totals."""
    found = {bucket - 1: Counts(views, visitors) for bucket, views, visitors in rows if bucket is not None}
    totals = next((Counts(views or 0, visitors) for bucket, views, visitors in rows if bucket is None), Counts())
    return found, totals


def _read(database: db.ReportDatabase, work: Callable[[Connection], T], snapshot: bool = False) -> T:
    try:
        return database.read(db.in_one_snapshot(work) if snapshot else work)
    except DBAPIError as exc:
        if db.is_transient(exc):
            raise ApiError.unavailable("database", "PostgreSQL is not answering; retry shortly") from None
        raise
