"""The report scenario: GET /report latency on a table of millions of hourly rows."""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import text

from bench import wrk
from bench.context import Run
from bench.ingest import base_url, cpu_groups
from bench.processes import CpuMeter
from common.logging import fields
from common.timeutil import floor_hour

log = logging.getLogger("bench")

HOURS = 720  # 30 days of hourly rows per page
CONNECTIONS = 8
PAGE_PREFIX = "report-p"  # no characters that need escaping in a query string

# One row per page and hour, shard 0, a views count that varies with page and hour.
FILL_DAY = text(
    """
    INSERT INTO page_views (page, view_hour, shard, views)
    SELECT :prefix || p, h, 0, 1 + (p * 7 + extract(epoch FROM h)::bigint / 3600) % 100
    FROM generate_series(0, :pages - 1) AS p,
         generate_series(CAST(:first AS timestamptz), CAST(:last AS timestamptz), interval '1 hour') AS h
    """
)


def report(run: Run) -> dict[str, Any]:
    settings = run.settings_for("report")
    run.reset_tables()
    pages = max(1, -(-run.durations.report_rows // HOURS))  # rounded up: at least report_rows rows
    try:
        fill = _fill(run, pages)
        api = run.start_api(settings)
        try:
            meter = CpuMeter(cpu_groups(api, [])).start()
            result = wrk.run(base_url(settings), "report.lua", connections=CONNECTIONS, duration_s=run.durations.report_s, args=[str(pages), PAGE_PREFIX], with_deadline=False)
            cpu = meter.stop({"wrk": result.cpu_s})
        finally:
            run.stop(api)
    finally:
        run.delete_topology(settings)
        run.reset_tables()  # ten million rows must not weigh on anything after this
    return {
        "rows": fill["rows"],
        "pages": pages,
        "hours_per_page": HOURS,
        "fill_s": fill["fill_s"],
        "vacuum_analyze_s": fill["vacuum_analyze_s"],
        "connections": CONNECTIONS,
        "duration_s": run.durations.report_s,
        "req_per_s": round(result["posts_ok"] / (result["duration_us"] / 1e6), 1),
        **result.latency_ms(),
        "ok": int(result["posts_ok"]),
        "non_2xx": int(result["posts_bad"]),
        "socket_errors": result.socket_errors(),
        "cpu": cpu,
    }


def _fill(run: Run, pages: int) -> dict[str, Any]:
    """pages x HOURS rows ending with the current hour, day by day, then VACUUM ANALYZE."""
    last_hour = floor_hour(datetime.now(timezone.utc))
    first_hour = last_hour - timedelta(hours=HOURS - 1)
    started = time.monotonic()
    with run.engine.begin() as connection:
        for day in _days(first_hour.date(), last_hour.date()):
            connection.execute(text("SELECT page_views_ensure_partition(:day)"), {"day": day})
    day_start = first_hour
    while day_start <= last_hour:
        day_end = min(last_hour, datetime.combine(day_start.date() + timedelta(days=1), datetime.min.time(), timezone.utc) - timedelta(hours=1))
        with run.engine.begin() as connection:
            connection.execute(FILL_DAY, {"prefix": PAGE_PREFIX, "pages": pages, "first": day_start, "last": day_end})
        day_start = day_end + timedelta(hours=1)
    fill_s = time.monotonic() - started
    started = time.monotonic()
    with run.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE page_views"))
        rows = int(connection.execute(text("SELECT count(*) FROM page_views")).scalar())
    vacuum_s = time.monotonic() - started
    log.info("report table filled", extra=fields(rows=rows, fill_s=round(fill_s, 1), vacuum_analyze_s=round(vacuum_s, 1)))
    return {"rows": rows, "fill_s": round(fill_s, 1), "vacuum_analyze_s": round(vacuum_s, 1)}


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
