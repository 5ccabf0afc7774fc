"""Metrics through the real API (two gunicorn processes), a worker and the cleaner: the figures agree with the data."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from common.broker import BrokerAdmin, Topology
from tests.helpers import Process, free_port, hour_ago, total_views, wait_for
from tests.observability import names_exported, names_used, scrape, value


def _worker_with_metrics(start_worker):
    port = free_port()
    start_worker(metrics_port=port)
    url = f"http://127.0.0.1:{port}/metrics"
    wait_for(lambda: scrape(url), what="the worker's metrics endpoint")
    return url


def test_accepted_and_flushed_counters_rise_by_exactly_the_views_counted(settings, start_api, start_worker, engine):
    api = start_api(api_processes=2)  # two processes: /metrics must sum both
    worker_url = _worker_with_metrics(start_worker)
    before = scrape(api.base_url + "/metrics")

    hour = hour_ago(2)
    singles = [("/page-views/single", {"page": f"example.com/s{i}", "timestamp": hour}) for i in range(40)]
    multis = [("/page-views/multi", {f"example.com/m{i}": {hour: i + 1, hour_ago(3): 2}}) for i in range(20)]
    with ThreadPoolExecutor(max_workers=8) as pool:  # several connections, so both processes answer
        statuses = list(pool.map(lambda r: api.post(*r).status_code, singles + multis))
    assert statuses == [202] * len(statuses)
    single_views, multi_views = len(singles), sum(i + 1 + 2 for i in range(20))
    total = single_views + multi_views
    wait_for(lambda: total_views(engine) == total, timeout=30, what=f"{total} views in the database")

    after = scrape(api.base_url + "/metrics")

    def rise(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert rise("pageviews_views_accepted_total", endpoint="single") == single_views
    assert rise("pageviews_views_accepted_total", endpoint="multi") == multi_views
    assert rise("pageviews_requests_total", endpoint="single", status="202") == len(singles)
    assert rise("pageviews_requests_total", endpoint="multi", status="202") == len(multis)
    assert rise("pageviews_publish_confirm_seconds_count") == len(singles) + len(multis)
    assert rise("pageviews_request_duration_seconds_count", endpoint="single") == len(singles)

    # The worker acknowledges (and counts) just after its commit: wait for the counter, then check it exactly.
    worker = wait_for(lambda: (s := scrape(worker_url)) and value(s, "pageviews_worker_views_flushed_total") >= total and s, what="flushed counter")
    assert value(worker, "pageviews_worker_views_flushed_total") == total
    assert value(worker, "pageviews_worker_rows_flushed_total") == len(singles) + 2 * len(multis)
    assert value(worker, "pageviews_worker_duplicate_messages_total") == 0
    assert value(worker, "pageviews_worker_dead_lettered_total") == 0
    assert value(worker, "pageviews_worker_views_buffered") == 0
    assert value(worker, "pageviews_oldest_unflushed_view_age_seconds") == 0
    assert 0 < value(worker, "pageviews_worker_messages_consumed_total") <= len(singles) + 2 * len(multis)
    assert value(worker, "pageviews_worker_flush_duration_seconds_count") >= 1


def test_queue_depth_and_consumers_per_partition(settings, start_api, start_worker):
    api = start_api()
    worker_url = _worker_with_metrics(start_worker)
    partitions = [str(p) for p in range(settings.num_partitions)]

    def settled() -> bool:
        samples = scrape(worker_url)
        return all(value(samples, "pageviews_queue_consumers", partition=p) == 1 for p in partitions) and all(
            value(samples, "pageviews_queue_depth_messages", partition=p) == 0 for p in partitions
        )

    assert api.post("/page-views/single", {"page": "example.com/depth"}).status_code == 202
    wait_for(settled, timeout=30, what="one consumer and an empty queue on every partition")


def test_rejections_are_counted_by_reason(settings, start_api):
    api = start_api()
    before = scrape(api.base_url + "/metrics")
    assert api.post("/page-views/single", data="x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert api.post("/page-views/single", {"page": ""}).status_code == 400
    after = scrape(api.base_url + "/metrics")
    for reason in ("media_type", "validation"):
        assert value(after, "pageviews_requests_rejected_total", reason=reason) - value(before, "pageviews_requests_rejected_total", reason=reason) == 1


def test_every_pageviews_metric_on_the_dashboard_and_in_the_alerts_is_exported(settings, start_api, start_worker):
    api = start_api()
    worker_url = _worker_with_metrics(start_worker)
    cleaner_port = free_port()
    cleaner = Process("cleaner", "worker.cleaner", settings.replace(metrics_port=cleaner_port))
    try:
        cleaner_url = f"http://127.0.0.1:{cleaner_port}/metrics"
        wait_for(lambda: scrape(cleaner_url), what="the cleaner's metrics endpoint")
        exported = set()
        for url in (api.base_url + "/metrics", worker_url, cleaner_url):
            exported |= names_exported(scrape(url))
    finally:
        cleaner.close()
    used = {name: where for name, where in names_used().items() if name.startswith("pageviews_")}
    assert used, "the dashboard and the alerts use no pageviews_* metric?"
    missing = {name: sorted(where) for name, where in used.items() if name not in exported}
    assert not missing, f"used but exported by no endpoint: {missing}"


def test_every_rabbitmq_metric_on_the_dashboard_and_in_the_alerts_is_exported(settings):
    """Against the local broker's rabbitmq_prometheus endpoint (port 15692), if that plugin is on."""
    url = f"http://{urlsplit(settings.amqp_url).hostname}:15692/metrics/per-object"
    try:
        scrape(url)
    except requests.RequestException as exc:
        pytest.skip(f"rabbitmq_prometheus does not answer on {url} ({type(exc).__name__}); it is not enabled here and tests do not enable plugins")
    # Per-queue series exist only while some queue does: declare this test's own.
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(Topology.from_settings(settings))
    used = {name: where for name, where in names_used().items() if name.startswith("rabbitmq_")}
    missing: dict[str, list[str]] = {}

    def all_exported() -> bool:
        exported = names_exported(scrape(url))
        missing.clear()
        missing.update({name: sorted(where) for name, where in used.items() if name not in exported})
        return not missing

    try:
        wait_for(all_exported, timeout=30, what="every rabbitmq_* metric used to be exported")
    except AssertionError:
        pass
    assert not missing, f"not exported by rabbitmq_prometheus: {missing}"


def test_views_held_and_their_age_show_while_the_database_is_unreachable(settings, start_api, start_worker):
    """A worker whose DATABASE_URL points at a closed port keeps its deliveries: buffered views, freshness and depth show them."""
    api = start_api()
    port = free_port()
    closed = settings.database_url.replace(f":{urlsplit(settings.database_url).port}/", f":{free_port()}/")
    start_worker(metrics_port=port, database_url=closed)
    url = f"http://127.0.0.1:{port}/metrics"
    wait_for(lambda: scrape(url), what="the worker's metrics endpoint")
    for page in ("example.com/x", "example.com/y", "example.com/z"):
        assert api.post("/page-views/multi", {page: {hour_ago(1): 4}}).status_code == 202

    def holding() -> dict | None:
        samples = scrape(url)
        held = value(samples, "pageviews_worker_views_buffered") == 12 and value(samples, "pageviews_oldest_unflushed_view_age_seconds") >= 2
        # Delivered and unacknowledged: still in the queues (the management API samples every 5 s).
        queued = value(samples, "pageviews_queue_depth_messages") == 3
        return samples if held and queued else None

    samples = wait_for(holding, timeout=30, what="12 views in 3 messages held for 2 s")
    assert value(samples, "pageviews_worker_views_flushed_total") == 0
