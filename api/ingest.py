"""POST /page-views/single and /page-views/multi: validate all, publish, answer after the broker confirms."""
from __future__ import annotations

import time
from typing import Any, Callable

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from api import metrics
from api.errors import ApiError
from api.publishing import IngestRequest, split_by_partition
from api.services import Services, services
from api.validation import (
    Invalid,
    Problem,
    TimestampRules,
    idempotency_key_problem,
    parse_json_object,
    validate_multi,
    validate_single,
)
from common.broker import BrokerUnavailable, PublishTimeout
from common.timeutil import utc_now
from common.views import ViewCounts

bp = Blueprint("ingest", __name__)

MAX_BODY_BYTES = 1024 * 1024
_RETRY_ADVICE = "retry with the same Idempotency-Key header to be sure each view is counted once"


@bp.post("/page-views/single")
def single() -> tuple[Response, int]:
    return _accept(validate_single)


@bp.post("/page-views/multi")
def multi() -> tuple[Response, int]:
    return _accept(validate_multi)


def _accept(validate: Callable[[dict[str, Any], TimestampRules], ViewCounts]) -> tuple[Response, int]:
    started = time.monotonic()
    svc = services()
    body = _json_body()
    key = _idempotency_key()
    counts = validate(body, TimestampRules(now=utc_now(), retention_days=svc.settings.retention_days))
    publish_confirmed(svc, IngestRequest(split_by_partition(counts, svc.settings.num_partitions), key), started)
    accepted = sum(counts.values())
    metrics.accepted(accepted)
    return jsonify(accepted=accepted), 202


def _json_body() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", f"Content-Type must be application/json, got {request.mimetype or 'none'!r}")
    return parse_json_object(read_body())


def read_body(limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, or 413 past `limit` bytes (which must be the request's max_content_length)."""
    if request.content_length is not None:
        return request.get_data(cache=False)  # werkzeug has already refused a declared length over the limit
    # Chunked: werkzeug stops reading at the limit without saying so, which would publish
    # a truncated body. Read one byte past the limit to know.
    body = request.environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    why = idempotency_key_problem(key)
    if why is not None:
        raise Invalid([Problem("Idempotency-Key", why)])
    return key


def publish_confirmed(svc: Services, ingest: IngestRequest, started: float, advice: str = _RETRY_ADVICE) -> None:
    """Publish and wait for the broker's confirm until PUBLISH_TIMEOUT_MS after `started`; 503 otherwise."""
    timeout_s = svc.settings.publish_timeout_ms / 1000
    publisher = svc.publisher()
    try:
        with metrics.confirm_timer():
            publisher.submit(ingest).wait(timeout=started + timeout_s - time.monotonic())
    except PublishTimeout:
        raise ApiError.unavailable("broker", f"RabbitMQ did not confirm within {svc.settings.publish_timeout_ms} ms; {advice}") from None
    except BrokerUnavailable as exc:
        raise ApiError.unavailable("broker", f"{exc}; {advice}") from None
