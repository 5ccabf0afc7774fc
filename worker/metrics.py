"""A worker's Prometheus metrics, served on METRICS_PORT (default 9101; 0 turns it off).

The consume loop calls the hook below after each committed flush; the figures that describe
the present (views buffered, queue depth and consumers, freshness) are computed when
Prometheus scrapes, from the loop's set of unacknowledged deliveries (worker/pending.py).

Queue depth (`pageviews_queue_depth_messages`, ready + unacknowledged) and consumers per
partition come from RabbitMQ's management API when it answers (exact, for every consumer).
Otherwise from a passive queue.declare, which gives ready messages and consumers but not the
unacknowledged ones; this worker then adds the deliveries it holds unacknowledged itself.
With single active consumer only one consumer of a queue holds deliveries, so the worker
that is active on a partition reports exactly ready + unacknowledged, and a standby reports
at most that: `max by (partition)` over the workers is the depth (the dashboard uses it).

Freshness (`pageviews_oldest_unflushed_view_age_seconds`): now minus the AMQP `timestamp` of
the oldest message this worker holds (delivered, not yet acknowledged, i.e. buffered or being
written). The API publishes every message with a timestamp, milliseconds before it answers
202, so this is the age of the oldest accepted view still waiting here, to the second (the
property has a resolution of one second). A message published without one counts from when
this worker received it. Views still queued behind a worker's prefetch are older than
nothing it holds (queues deliver in order), but a partition without a consumer is seen here
only through its depth. 0 when the worker holds nothing.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, disable_created_metrics, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from common.broker.stats import QueueStatsUnavailable, queue_stats
from common.config import Settings
from common.logging import fields
from common.partitioning import queue_name
from worker.pending import Unacknowledged

log = logging.getLogger(__name__)

DEFAULT_PORT = 9101
FLUSH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)



def process_registry() -> CollectorRegistry:
    """A registry for one process's metrics, with the process's own memory, CPU and open files."""
    disable_created_metrics()  # *_created series: noise on a dashboard
    created = CollectorRegistry()
    ProcessCollector(registry=created)
    return created


registry = _r = process_registry()
consumed = Counter("pageviews_worker_messages_consumed_total", "Messages delivered to this worker (each delivery, redeliveries included)", registry=_r)
views_flushed = Counter("pageviews_worker_views_flushed_total", "Views added to page_views by committed flushes", registry=_r)
rows_flushed = Counter("pageviews_worker_rows_flushed_total", "(page, hour) rows written by committed flushes", registry=_r)
duplicates = Counter("pageviews_worker_duplicate_messages_total", "Messages skipped because their id was already counted", registry=_r)
dead_lettered = Counter("pageviews_worker_dead_lettered_total", "Messages moved to the dead-letter queue by this worker", registry=_r)
views_expired = Counter("pageviews_worker_views_expired_total", "Views dropped because their hour left the retention window while queued", registry=_r)
flush_duration = Histogram("pageviews_worker_flush_duration_seconds", "Time of one attempt to write a batch (one transaction)", buckets=FLUSH_BUCKETS, registry=_r)
last_flush = Gauge("pageviews_worker_last_flush_timestamp_seconds", "Unix time of the last committed flush with messages of the partition (start of consuming until then)", ["partition"], registry=_r)


class _Present(Collector):
    """Figures computed at scrape time: queue depth and consumers per partition, freshness."""

    def __init__(self, amqp_url: str, queues: dict[str, int], source: Unacknowledged) -> None:
        self._amqp_url = amqp_url
        self._queues = queues  # queue name -> partition
        self._held = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("pageviews_oldest_unflushed_view_age_seconds", "Age of the oldest view this worker holds unflushed (from its publish time)", value=self._held.oldest_age())
        yield GaugeMetricFamily("pageviews_worker_views_buffered", "Views this worker holds in memory: buffered or being written", value=self._held.views)
        depth = GaugeMetricFamily("pageviews_queue_depth_messages", "Messages in the partition queue, ready + unacknowledged", labels=["partition"])
        consumers = GaugeMetricFamily("pageviews_queue_consumers", "Consumers registered on the partition queue (active and standby)", labels=["partition"])
        try:
            stats = queue_stats(self._amqp_url, list(self._queues))
        except QueueStatsUnavailable as exc:
            log.warning("queue depths unavailable for this scrape", extra=fields(error=str(exc)[:300]))
            stats = {}
        own = self._held.per_queue()
        for queue, figures in stats.items():
            partition = str(self._queues[queue])
            unacked = figures.unacked if figures.unacked is not None else own.get(queue, 0)
            depth.add_metric([partition], figures.ready + unacked)
            consumers.add_metric([partition], figures.consumers)
        yield depth
        yield consumers

    def describe(self) -> Iterable[Any]:
        return []  # computed per scrape: nothing to check at registration


def serve(settings: Settings, held: Unacknowledged) -> None:
    """Start the metrics endpoint (a daemon thread) unless METRICS_PORT is 0; `held` is the consume loop's."""
    queues = {queue_name(settings.queue_prefix, p): p for p in settings.worker_partitions}
    registry.register(_Present(settings.amqp_url, queues, held))
    now = time.time()
    for partition in settings.worker_partitions:
        last_flush.labels(str(partition)).set(now)
    start_endpoint(registry, settings.metrics_port, DEFAULT_PORT, "worker")


def start_endpoint(chosen: CollectorRegistry, port: int | None, default: int, process: str) -> None:
    """Serve a registry on http://0.0.0.0:<port>/metrics; a port already taken is logged, not fatal (counting matters more)."""
    port = default if port is None else port
    if port == 0:
        log.info("metrics endpoint off", extra=fields(process=process))
        return
    try:
        start_http_server(port, addr="0.0.0.0", registry=chosen)
    except OSError as exc:
        log.error("metrics endpoint could not start", extra=fields(process=process, port=port, error=str(exc)))
        return
    log.info("metrics endpoint", extra=fields(process=process, url=f"http://0.0.0.0:{port}/metrics"))


# -- hooks for the consume loop and the flusher


def flushed(applied: Any, queues: Iterable[str]) -> None:
    """A committed flush: what it wrote, and when, for the partitions its messages came from."""
    views_flushed.inc(applied.views)
    rows_flushed.inc(applied.rows)
    duplicates.inc(applied.duplicates)
    views_expired.inc(applied.expired)
    now = time.time()
    for queue in queues:
        last_flush.labels(queue.rsplit(".p", 1)[-1]).set(now)
