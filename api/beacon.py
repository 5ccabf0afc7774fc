"""POST /page-views/beacon: one view from a web page, with its visitor id; OPTIONS for CORS preflights.

In order: the Origin (403), the Content-Type (415), the size (413), the body (400), all
before anything is published; then bots are answered 202 and dropped; then the view is
published with the same publisher, group commit and confirm as `single`, and answered
202 after the broker confirmed it (503 with Retry-After if it cannot).

The view's hour and the visitor's day are both taken from the moment the request
arrived: browsers' clocks are not trusted. The client's address and agent only go into
the keyed hash; they are never stored, published or logged.
"""
from __future__ import annotations

import time
from datetime import datetime

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import DBAPIError

from api import metrics
from api.beacon_body import validate_beacon
from api.bots import is_bot
from api.client_ip import client_ip
from api.cors import PREFLIGHT_HEADERS, ForbiddenOrigin, cors_headers
from api.errors import ApiError
from api.ingest import publish_confirmed, read_body
from api.page_url import site_of
from api.publishing import IngestRequest, split_by_partition
from api.services import Services, services
from api.validation import parse_json_object
from api.visitors import visitor_id
from common import db
from common.timeutil import hour_start_epoch, utc_now

bp = Blueprint("beacon", __name__)

PATH = "/page-views/beacon"
MAX_BEACON_BYTES = 8 * 1024  # a URL and a referrer; the app's 1 MiB is for multi
MEDIA_TYPES = ("text/plain", "application/json")  # text/plain: what sendBeacon sends a string as
_RETRY_ADVICE = "the view may not have been counted; browsers do not retry beacons"


@bp.route(PATH, methods=["OPTIONS"], provide_automatic_options=False)
def preflight() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    response.headers.update(PREFLIGHT_HEADERS)
    return response  # Access-Control-Allow-Origin comes from _cors below


@bp.post(PATH, provide_automatic_options=False)
def beacon() -> tuple[Response, int]:
    started, now = time.monotonic(), utc_now()
    svc = services()
    if request.mimetype not in MEDIA_TYPES:
        raise ApiError(415, "unsupported_media_type", f"Content-Type must be text/plain or application/json, got {request.mimetype or 'none'!r}")
    request.max_content_length = MAX_BEACON_BYTES
    page = validate_beacon(parse_json_object(read_body(MAX_BEACON_BYTES)))
    agent = request.headers.get("User-Agent")
    if is_bot(agent):
        metrics.dropped("bot", 1)
        return jsonify(accepted=0, dropped="bot"), 202
    visitor = visitor_id(_salt(svc, now), site_of(page), _client_ip(svc), agent or "")
    counts = {(page, hour_start_epoch(now), visitor): 1}
    publish_confirmed(svc, IngestRequest(split_by_partition(counts, svc.settings.num_partitions)), started, _RETRY_ADVICE)
    metrics.accepted(1)
    return jsonify(accepted=1), 202


@bp.before_request
def _check_origin() -> None:
    try:
        cors_headers(services().settings.allowed_origins, request.headers.get("Origin"))
    except ForbiddenOrigin as exc:
        raise ApiError(403, "forbidden_origin", str(exc)) from None


@bp.after_request
def _cors(response: Response) -> Response:
    """Every answer an allowed page gets carries the CORS headers, errors included (so scripts can read them)."""
    try:
        response.headers.update(cors_headers(services().settings.allowed_origins, request.headers.get("Origin")))
    except ForbiddenOrigin:
        pass
    return response


def _client_ip(svc: Services) -> str:
    return client_ip(request.remote_addr or "", request.headers.getlist("X-Forwarded-For"), svc.settings.trusted_proxies)


def _salt(svc: Services, now: datetime) -> bytes:
    try:
        return svc.salts().salt_at(now)
    except DBAPIError as exc:
        if db.is_transient(exc):
            raise ApiError.unavailable("database", "PostgreSQL is not answering, and the visitor salt of the day is needed; retry shortly") from None
        raise
