"""The report scenario: GET /report, /pages and /sites latency on ten million hourly page rows.

page_views is filled in SQL with one row per page and hour (shard 0) from midnight UTC 30
days ago to the current hour; pages are `s<site>.test/p<n>` over SITES sites. The rollups
are then built as the system builds them: site_hours from those rows (what the flushes
would have written), page_days by the cleaner's own step for every whole day before today.
Then one wrk phase per question, each on a fresh set of 8 connections.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import text

from bench import wrk
from bench.context import Run
from bench.ingest import base_url, cpu_groups
from bench.processes import CpuMeter
from common.logging import fields
from common.timeutil import floor_hour
from worker.cleaner import Cleaner, RunReport

log = logging.getLogger("bench")

HOURS = 720  # 30 days of hourly rows per page, for the page count
SITES = 100
CONNECTIONS = 8

# One row per page and hour, shard 0, a views count that varies with page and hour.
FILL_DAY = text(
    """
    INSERT INTO page_views (page, view_hour, shard, views)
    SELECT 's' || (p % :sites) || '.test/p' || p, h, 0, 1 + (p * 7 + extract(epoch FROM h)::bigint / 3600) % 100
    FROM generate_series(0, :pages - 1) AS p,
         generate_series(CAST(:first AS timestamptz), CAST(:last AS timestamptz), interval '1 hour') AS h
    """
)
# What the flushes would have written alongside those rows.
FILL_SITE_HOURS = text(
    "INSERT INTO site_hours (site, view_hour, shard, views) SELECT page_site(page), view_hour, 0, sum(views) FROM page_views GROUP BY 1, 2"
)


@dataclass(frozen=True)
class Phase:
    name: str
    template: str  # see bench/lua/report_paths.lua
    target_p99_ms: float | None


def phases(now: datetime) -> list[Phase]:
    """The questions of issue 11, with the windows they name."""
    hour, today = floor_hour(now), now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    hours_30 = f"from={_iso(hour - timedelta(hours=HOURS))}&to={_iso(hour)}"
    days = {n: f"from={_iso(today - timedelta(days=n))}&to={_iso(today)}" for n in (7, 30)}
    return [
        Phase("page", "/report?page=s{s}.test/p{n}", 15),
        Phase("site-30d-hours", "/report?site=s{s}.test&" + hours_30, 50),
        Phase("pages-7d", "/pages?" + days[7], 50),
        Phase("pages-30d", "/pages?" + days[30], 150),
        Phase("pages-of-site-30d", "/pages?site=s{s}.test&" + days[30], None),
        Phase("sites-30d", "/sites?" + days[30], None),
        Phase("all-30d-days-berlin", "/report?site=*&granularity=day&tz=Europe/Berlin", None),
        Phase("pages-last-24h", "/pages", None),  # ragged: hourly rows only, no whole day
    ]


def report(run: Run) -> dict[str, Any]:
    settings = run.settings_for("report")
    run.reset_tables()
    pages = max(1, -(-run.durations.report_rows // HOURS))  # rounded up: at least report_rows rows
    try:
        fill = _fill(run, pages)
        fill.update(_roll_up(run))
        api = run.start_api(settings)
        try:
            measured = {phase.name: _measure(run, settings, phase, pages, api) for phase in phases(datetime.now(timezone.utc))}
        finally:
            run.stop(api)
    finally:
        run.delete_topology(settings)
        run.reset_tables()  # ten million rows must not weigh on anything after this
    page = measured["page"]
    return {**fill, "pages": pages, "sites": SITES, "connections": CONNECTIONS, "duration_s": run.durations.report_s, **page, "phases": measured}


def _measure(run: Run, settings, phase: Phase, pages: int, api) -> dict[str, Any]:
    meter = CpuMeter(cpu_groups(api, [])).start()
    args = [str(pages), str(SITES), phase.template]
    result = wrk.run(base_url(settings), "report_paths.lua", connections=CONNECTIONS, duration_s=run.durations.report_s, args=args, with_deadline=False)
    cpu = meter.stop({"wrk": result.cpu_s})
    figures = {
        "path": phase.template,
        "target_p99_ms": phase.target_p99_ms,
        "req_per_s": round(result["posts_ok"] / (result["duration_us"] / 1e6), 1),
        **result.latency_ms(),
        "ok": int(result["posts_ok"]),
        "non_2xx": int(result["posts_bad"]),
        "socket_errors": result.socket_errors(),
        "cpu": cpu,
    }
    log.info("report phase", extra=fields(phase=phase.name, p50_ms=figures["p50_ms"], p99_ms=figures["p99_ms"], req_per_s=figures["req_per_s"]))
    return figures


def _fill(run: Run, pages: int) -> dict[str, Any]:
    """pages x hours rows from midnight 30 days ago to the current hour, day by day, then VACUUM ANALYZE."""
    last_hour = floor_hour(datetime.now(timezone.utc))
    first_hour = last_hour.replace(hour=0) - timedelta(days=30)
    started = time.monotonic()
    with run.engine.begin() as connection:
        for day in _days(first_hour.date(), last_hour.date()):
            connection.execute(text("SELECT page_views_ensure_partition(:day)"), {"day": day})
    day_start = first_hour
    while day_start <= last_hour:
        day_end = min(last_hour, datetime.combine(day_start.date() + timedelta(days=1), datetime.min.time(), timezone.utc) - timedelta(hours=1))
        with run.engine.begin() as connection:
            connection.execute(FILL_DAY, {"sites": SITES, "pages": pages, "first": day_start, "last": day_end})
        day_start = day_end + timedelta(hours=1)
    fill_s = time.monotonic() - started
    started = time.monotonic()
    rows = _vacuum(run, "page_views")
    vacuum_s = time.monotonic() - started
    log.info("report table filled", extra=fields(rows=rows, fill_s=round(fill_s, 1), vacuum_analyze_s=round(vacuum_s, 1)))
    return {"rows": rows, "fill_s": round(fill_s, 1), "vacuum_analyze_s": round(vacuum_s, 1), "hours_per_page": int((last_hour - first_hour) / timedelta(hours=1)) + 1}


def _roll_up(run: Run, site_hours: bool = True) -> dict[str, Any]:
    started = time.monotonic()
    if site_hours:
        with run.engine.begin() as connection:
            connection.execute(FILL_SITE_HOURS)
    site_s = time.monotonic() - started
    now = datetime.now(timezone.utc)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    cleaner = Cleaner(run.base.replace(retention_days=31), run.engine)
    report = RunReport()
    started = time.monotonic()
    # The cleaner's step, with the cutoff at the first filled midnight and every day before today closed.
    cleaner.build_day_rollups(today - timedelta(days=30), today + timedelta(hours=1), report)
    days_s = time.monotonic() - started
    for table in ("site_hours", "page_days"):
        _vacuum(run, table)
    log.info("rollups built", extra=fields(site_hours_s=round(site_s, 1), days=report.days_rolled_up, page_days=report.page_day_rows_built, seconds=round(days_s, 1)))
    return {"site_hours_fill_s": round(site_s, 1), "days_rolled_up": report.days_rolled_up, "page_day_rows": report.page_day_rows_built, "roll_up_s": round(days_s, 1)}


def _vacuum(run: Run, table: str) -> int:
    with run.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {table}"))
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar())


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
