"""RabbitMQ stopped and started, PostgreSQL restarted, during a load: exact counts, no restarts of ours."""
from __future__ import annotations

import time

import pytest

from tests.exactness import compare, drain
from tests.helpers import hour_ago, total_views, wait_for
from tests.load import LoadGenerator

pytestmark = pytest.mark.fault

PUBLISH_TIMEOUT_MS = 1500
BEACON_HEADERS = {"Content-Type": "text/plain", "Origin": "https://example.com", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36"}


def test_broker_outage_answers_503_then_recovers_by_itself(settings, start_api, start_worker, engine, control, record_figures):
    api = start_api(publish_timeout_ms=PUBLISH_TIMEOUT_MS)
    start_worker()
    load = LoadGenerator(api.base_url, threads=6, plain_share=0.3).start()
    wait_for(lambda: total_views(engine) > 5000, timeout=60, what="views flowing before the outage")

    control.stop_broker()
    try:
        wait_for(lambda: load.ledger.failures[503] >= 20, timeout=30, what="clients seeing 503 during the outage")
        started = time.monotonic()
        response = api.post("/page-views/single", {"page": "example.com/during-outage", "timestamp": hour_ago(1)})
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers.get("Retry-After")
        assert response.json()["error"]["code"] == "broker_unavailable"
        # Bounded: never more than the publish timeout plus a little, however long the outage.
        assert elapsed < PUBLISH_TIMEOUT_MS / 1000 + 1.5, elapsed
        ready = api.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["broker"] != "ok", ready.text
        beacon = api.post("/page-views/beacon", data='{"url": "https://example.com/during-outage"}', headers=BEACON_HEADERS)
        assert beacon.status_code == 503 and beacon.headers.get("Retry-After"), beacon.text
        assert beacon.json()["error"]["code"] == "broker_unavailable" and beacon.headers["Access-Control-Allow-Origin"] == "*"
    finally:
        control.start_broker()

    wait_for(lambda: api.post("/page-views/single", {"page": "example.com/after-outage", "timestamp": hour_ago(1)}).status_code == 202,
             timeout=60, interval=0.5, what="the API accepting again without a restart")
    accepted_after = load.ledger.accepted_requests
    wait_for(lambda: load.ledger.accepted_requests > accepted_after + 200, timeout=60, what="load accepted again")
    ledger = load.stop()
    ledger.accepted.update({("example.com/after-outage", hour_ago(1)): 1})  # the probe that got 202
    drain(api, settings, engine)
    figures = compare("rabbitmq stop_app/start_app", ledger, engine)
    record_figures(figures)
    assert ledger.gave_up == 0, figures.line()
    assert figures.lost == 0 and figures.duplicated == 0, figures.line()


def test_database_restart_during_load_is_exact(settings, start_api, start_worker, engine, control, record_figures):
    api = start_api()
    start_worker()
    load = LoadGenerator(api.base_url, threads=6, plain_share=0.3).start()
    wait_for(lambda: total_views(engine) > 5000, timeout=60, what="views flowing before the restart")

    try:
        control.restart_database()
    finally:
        control.start_database_if_stopped()
    before = wait_for(lambda: total_views(engine), timeout=60, what="the database answering again")
    # The API's pooled connections died with the server: the first report retries on a new one.
    report = api.get("/report", params={"page": "example.com/load/1"})
    assert report.status_code == 200, report.text
    wait_for(lambda: total_views(engine) > before + 5000, timeout=60, what="workers writing again after the restart")

    ledger = load.stop()
    drain(api, settings, engine)
    figures = compare("postgresql restart", ledger, engine)
    record_figures(figures)
    assert ledger.gave_up == 0, figures.line()
    assert figures.lost == 0 and figures.duplicated == 0, figures.line()
