"""The cleaner's Prometheus metrics, served on METRICS_PORT (default 9100; 0 turns it off).

`cli.run_logging_failure` reports each run with ``run_done(report)`` or ``run_failed()``; a run
skipped because another cleaner holds the lock is not a run and is not counted.
"""
from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

from common.config import Settings
from worker.cleaner.base import RunReport
from worker.metrics import process_registry, start_endpoint

DEFAULT_PORT = 9100
RUN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

registry = _r = process_registry()
runs = Counter("pageviews_cleaner_runs_total", "Cleaner runs, by result (ok or failed)", ["result"], registry=_r)
rows_compacted = Counter("pageviews_cleaner_rows_compacted_total", "Shard rows merged by compaction (rows before the merge)", registry=_r)
partitions_created = Counter("pageviews_cleaner_partitions_created_total", "Day partitions created ahead", registry=_r)
partitions_dropped = Counter("pageviews_cleaner_partitions_dropped_total", "Day partitions dropped for retention", registry=_r)
ids_pruned = Counter("pageviews_cleaner_ids_pruned_total", "Exactly-once message ids pruned", registry=_r)
run_duration = Histogram("pageviews_cleaner_run_duration_seconds", "Duration of a successful cleaner run", buckets=RUN_BUCKETS, registry=_r)
last_success = Gauge("pageviews_cleaner_last_success_timestamp_seconds", "Unix time the last successful run ended (0: none yet)", registry=_r)
for _result in ("ok", "failed"):
    runs.labels(_result)


def serve(settings: Settings) -> None:
    start_endpoint(registry, settings.metrics_port, DEFAULT_PORT, "cleaner")


def run_done(report: RunReport | None) -> None:
    if report is None:  # skipped: another cleaner holds the lock
        return
    runs.labels("ok").inc()
    rows_compacted.inc(report.rows_compacted)
    partitions_created.inc(report.partitions_created)
    partitions_dropped.inc(report.partitions_dropped)
    ids_pruned.inc(report.ids_pruned)
    run_duration.observe(report.seconds)
    last_success.set(time.time())


def run_failed() -> None:
    runs.labels("failed").inc()
