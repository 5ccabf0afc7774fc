"""The API's Prometheus metrics, served by GET /metrics and summed over every gunicorn process.

Hooks, one line each where they are called:
- ``register(app)``: request count and duration per endpoint (Flask before/after request) and
  the GET /metrics route;
- ``rejected_for(code)``: called by api/errors.py for every error it renders; the codes of
  ``REASON_OF_CODE`` count as rejected requests. An endpoint that raises ``ApiError`` with one
  of those codes is counted without doing anything; ``rejected(reason)`` is for a rejection
  answered without raising (a CORS refusal or a rate limit answered in a before_request);
- ``accepted(views)``: views (not requests) accepted, labelled by the endpoint serving the request;
- ``dropped(reason, views)``: views received and deliberately not counted (bots);
- ``confirm_timer()``: publish-to-confirm latency of one request.

Multiprocess mode: gunicorn's master makes a fresh directory in PROMETHEUS_MULTIPROC_DIR before
it forks (api/metrics_files.py, hooked in by api/gunicorn_conf.py), each process writes its
figures there, the process answering a scrape sums them, and the master retires a dead
process's files.
prometheus_client picks that mode when it is first imported, so it is imported on first use,
in the forked process, and not when this package is imported (which `python -m api` does
before its launcher runs).
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Iterator

from flask import Blueprint, Flask, Response, g, request

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

ENDPOINTS = ("single", "multi", "beacon")  # the ingest endpoints, for pageviews_views_accepted_total
REASON_OF_CODE = {
    "invalid_request": "validation",
    "request_entity_too_large": "too_large",
    "unsupported_media_type": "media_type",
    "forbidden_origin": "origin",
    "unauthorized": "auth",
    "overloaded": "overloaded",
    "broker_unavailable": "broker_unavailable",
    "rate_limited": "rate_limited",
}
DROP_REASONS = ("bot",)
# Seconds. A confirm normally takes a few ms; PUBLISH_TIMEOUT_MS (2 s) is the ceiling.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

bp = Blueprint("metrics", __name__)


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # *_created series: noise for dashboards, absent in multiprocess mode anyway
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("pageviews_requests_total", "HTTP requests answered, by endpoint and status", ["endpoint", "status"], registry=r)
        self.accepted = Counter("pageviews_views_accepted_total", "Views accepted (answered 2xx), by ingest endpoint", ["endpoint"], registry=r)
        self.rejected = Counter("pageviews_requests_rejected_total", "Requests refused, by reason", ["reason"], registry=r)
        self.dropped = Counter("pageviews_views_dropped_total", "Views received and deliberately not counted, by reason", ["reason"], registry=r)
        self.confirm = Histogram(
            "pageviews_publish_confirm_seconds", "From handing a request's messages to the publisher to RabbitMQ's confirm", buckets=LATENCY_BUCKETS, registry=r
        )
        self.duration = Histogram("pageviews_request_duration_seconds", "HTTP request duration, by endpoint", ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        # Every labelled series exists from the start at 0, so rate() and alerts see the first event.
        for endpoint in ENDPOINTS:
            self.accepted.labels(endpoint)
        for reason in REASON_OF_CODE.values():
            self.rejected.labels(reason)
        for reason in DROP_REASONS:
            self.dropped.labels(reason)


_created: _Metrics | None = None
_creating = threading.Lock()


def _metrics() -> _Metrics:
    """The process's metrics, made by the first request. Made once under a lock: two request
    threads that each made their own would each write their own running total to the same
    slot of the multiprocess file, and the later write would erase the other's increments."""
    global _created
    if _created is None:
        with _creating:
            if _created is None:
                _created = _Metrics()
    return _created


def _endpoint() -> str:
    """The endpoint's short name (the view function's), a bounded label; `none` for unknown paths."""
    return (request.endpoint or "none").rsplit(".", 1)[-1]


# -- hooks


def register(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_count_request)
    app.register_blueprint(bp)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    endpoint = _endpoint()
    metrics = _metrics()
    metrics.requests.labels(endpoint, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        metrics.duration.labels(endpoint).observe(time.perf_counter() - started)
    return response


def rejected_for(code: str) -> None:
    reason = REASON_OF_CODE.get(code)
    if reason is not None:
        rejected(reason)


def rejected(reason: str) -> None:
    _metrics().rejected.labels(reason).inc()


def accepted(views: int) -> None:
    _metrics().accepted.labels(_endpoint()).inc(views)


def dropped(reason: str, views: int) -> None:
    _metrics().dropped.labels(reason).inc(views)


@contextlib.contextmanager
def confirm_timer() -> Iterator[None]:
    """Observes the time to a successful confirm; a failure is counted as a rejection instead."""
    started = time.perf_counter()
    yield
    _metrics().confirm.observe(time.perf_counter() - started)


# -- exposition


@bp.get("/metrics")
def metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    from prometheus_client import CollectorRegistry, multiprocess, values

    # prometheus_client's own record of the mode it chose on import.
    if values.ValueClass is values.MutexValue:  # one process (tests, a bare create_app())
        return _metrics().registry
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)
    return combined


# -- the launcher's side (api/__main__.py)
