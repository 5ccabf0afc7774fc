"""The command line: `--once` for cron, otherwise a loop every CLEAN_INTERVAL until SIGTERM or SIGINT."""
from __future__ import annotations

import argparse
import logging
import threading

from sqlalchemy.exc import SQLAlchemyError

from common import process
from common.db import make_engine
from common.logging import error_summary, fields
from worker.cleaner import metrics
from worker.cleaner.cleaner import Cleaner

log = logging.getLogger("worker.cleaner")


def run_logging_failure(cleaner: Cleaner) -> bool:
    """One run; a database failure is logged (the next run tries again) and returns False."""
    try:
        report = cleaner.run()
    except SQLAlchemyError as exc:
        log.error("cleaner run failed", extra=fields(error=error_summary(exc)))
        metrics.run_failed()
        return False
    metrics.run_done(report)
    return True


def run_every(cleaner: Cleaner, interval_s: int, stop: threading.Event) -> None:
    while not stop.is_set():
        run_logging_failure(cleaner)
        stop.wait(interval_s)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker.cleaner", description="Keeps page_views small and the exactly-once bookkeeping bounded.")
    parser.add_argument("--once", action="store_true", help="run once and exit (0 on success), e.g. from cron")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = process.start("cleaner", once=args.once)
    stop = process.stop_on_signals(log)  # the current batch commits, the run ends before the next one, main returns
    if not args.once:  # a run from cron is over before anything could scrape it
        metrics.serve(settings)
    engine = make_engine(settings.database_url, application_name="pageviews-cleaner", pool_size=2)
    try:
        cleaner = Cleaner(settings, engine, stop=stop)
        if args.once:
            return 0 if run_logging_failure(cleaner) else 1
        run_every(cleaner, settings.clean_interval, stop)
        return 0
    finally:
        engine.dispose()
