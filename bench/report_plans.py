"""`python -m bench.report_plans [--rows N] [--database NAME] [--fill]`: the query plans behind the report phases.

Fills a database of its own as the report scenario does (with --fill, or when it is empty),
then, for each phase of bench/report.py, runs the endpoint's own validation and reads with
a listener that records every statement, and prints EXPLAIN (ANALYZE, BUFFERS) of each one
with its parameters. For BENCHMARKS.md: the database side of each answer, apart from HTTP,
Python and queueing.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import event, text

from api.reports import reading, zones
from api.reports.params import validate_pages_query, validate_report_query, validate_sites_query
from bench.context import Run
from bench.report import HOURS, SITES, _fill, _roll_up, phases
from common import db
from common import logging as structured_logging

READERS = {
    "/report": lambda engine, args, now: _report(engine, validate_report_query(args, now)),
    "/pages": lambda engine, args, now: reading.top_pages(db.ReportDatabase(engine), validate_pages_query(args, now)),
    "/sites": lambda engine, args, now: reading.top_sites(db.ReportDatabase(engine), validate_sites_query(args, now)),
}


def _report(engine, query):
    starts = [b.start for b in zones.buckets(query.start, query.end, zones.zone(query.tz), query.granularity)]
    return reading.bucket_counts(db.ReportDatabase(engine), query, starts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_plans", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--database", default="pageviews_bench_plans")
    parser.add_argument("--database-server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--fill", action="store_true", help="drop, recreate and fill the database first")
    parser.add_argument("--rebuild-days", action="store_true", help="empty page_days and build it again with the cleaner's step")
    args = parser.parse_args(argv)
    structured_logging.configure("info")
    run = Run(quick=False, database_server_url=args.database_server, amqp_url="amqp://guest:guest@127.0.0.1:5672/%2F", database=args.database)  # not used
    if args.fill:
        run.create_database()
        _fill(run, max(1, -(-args.rows // HOURS)))
        _roll_up(run)
    else:
        run.engine = db.make_engine(run.base.database_url, application_name="pageviews-bench-plans", statement_timeout_ms=0, autocommit=True)
        if args.rebuild_days:
            with run.engine.begin() as connection:
                connection.execute(text("TRUNCATE page_days, rollup_days"))
            print(f"-- rebuilt: {_roll_up(run, site_hours=False)}")
    with run.engine.connect() as connection:
        pages = connection.execute(text("SELECT count(DISTINCT page) FROM page_views WHERE view_hour = (SELECT max(view_hour) FROM page_views)")).scalar()
    print(f"-- {args.database}: {pages} pages over {SITES} sites\n")
    for phase in phases(datetime.now(timezone.utc)):
        _explain_phase(run.engine, phase.name, phase.template.replace("{n}", "7").replace("{s}", "7"))
    return 0


def _explain_phase(engine, name: str, path: str) -> None:
    parts = urlsplit(path)
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 - SQLAlchemy's signature
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        READERS[parts.path](engine, parse_qs(parts.query, keep_blank_values=True), datetime.now(timezone.utc))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    print(f"## {name}: GET {path}\n")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in captured:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue  # BEGIN and ROLLBACK of a snapshot
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            print("\n".join(row[0] for row in cursor.fetchall()), end="\n\n")
        raw.rollback()
    finally:
        raw.close()


if __name__ == "__main__":
    sys.exit(main())
