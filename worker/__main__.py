"""`python -m worker`: consume the partitions named by WORKER_PARTITIONS until SIGTERM or SIGINT."""
from __future__ import annotations

import logging

from common import process
from common.db import make_engine
from common.logging import fields
from worker import metrics
from worker.consumer import Consumer
from worker.store import Store

log = logging.getLogger("worker")


def main() -> None:
    settings = process.start("worker")
    stop = process.stop_on_signals(log)  # the loop finishes its turn, flushes, acknowledges and returns
    # No pre-ping: it would cost every flush a round trip, and a flush that meets a dead
    # connection fails as transient and is retried on a new one (worker/flusher.py).
    engine = make_engine(settings.database_url, application_name="pageviews-worker", pool_size=2, pre_ping=False)
    try:
        consumer = Consumer(settings, Store(engine, settings.num_shards, settings.retention_days, exactly_once=settings.exactly_once), stop)
        metrics.serve(settings, consumer.held)
        clean = consumer.run()
    finally:
        engine.dispose()
    log.info("worker stopped", extra=fields(clean=clean))
    if not clean:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
