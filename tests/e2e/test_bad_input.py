"""Bad requests against the real API process: the right 4xx, a JSON error body, and nothing published.

No worker runs, so anything the API published would still sit in this test's own queues;
each test checks that they are empty after its request. Every case is sent to a fresh API
process with its own queue prefix, so a leak is charged to the request that caused it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
import requests

from tests.helpers import ApiProcess, hour_ago, queue_depths, wait_for

JSON = {"Content-Type": "application/json"}
SINGLE = "/page-views/single"
MULTI = "/page-views/multi"


def _timestamp(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


TS = hour_ago(2)
TWO_HOURS_AHEAD = _timestamp(timedelta(hours=2))
PAST_RETENTION = hour_ago(31 * 24)  # RETENTION_DAYS defaults to 30
GOOD_SINGLE = {"page": "example.com/a", "timestamp": TS}
GOOD_SINGLE_BYTES = json.dumps(GOOD_SINGLE).encode()
FORM = "application/x-www-form-urlencoded"
A = "/example.com~1a"


Send = Callable[[ApiProcess], requests.Response]


@dataclass
class Case:
    send: Send
    status: int
    code: str
    problems_at: list[str] | None = field(default=None)  # the `at` of every problem, in order, when it matters


def post_json(path: str, body: object, headers: dict | None = None) -> Send:
    return lambda api: api.post(path, data=json.dumps(body).encode(), headers={**JSON, **(headers or {})})


def post_raw(path: str, data: bytes, headers: dict | None = JSON) -> Send:
    return lambda api: api.post(path, data=data, headers=headers)


def post_chunked(path: str, make_body: Callable[[], bytes]) -> Send:
    """Sent without Content-Length (Transfer-Encoding: chunked): the size is only known while reading."""

    def send(api: ApiProcess) -> requests.Response:
        body = make_body()
        return api.post(path, data=(body[start : start + 65536] for start in range(0, len(body), 65536)), headers=JSON)

    return send


def get(path: str, params: object = None) -> Send:
    return lambda api: api.get(path, params=params)


def request(method: str, path: str) -> Send:
    return lambda api: api.session.request(method, api.base_url + path, timeout=10)


def invalid(send: Send, problems_at: list[str] | None = None) -> Case:
    return Case(send, 400, "invalid_request", problems_at)


def over_one_mib_of_valid_json() -> bytes:
    body = json.dumps({f"example.com/{i:07d}": {TS: 1} for i in range(22_000)}).encode()
    assert 1024 * 1024 < len(body) < 1.2 * 1024 * 1024  # ~1.1 MB, just over the 1 MiB limit
    return body


def valid_mib_then_garbage() -> bytes:
    """The first MiB is a complete, valid request; what follows it is not JSON at all."""
    return json.dumps(GOOD_SINGLE).encode() + b" " * (1100 * 1024) + b"not JSON"


CASES = {
    # -- the body as a whole
    "content-type-missing": Case(post_raw(SINGLE, GOOD_SINGLE_BYTES, headers=None), 415, "unsupported_media_type"),
    "content-type-text-plain": Case(post_raw(SINGLE, GOOD_SINGLE_BYTES, {"Content-Type": "text/plain"}), 415, "unsupported_media_type"),
    "content-type-form": Case(post_raw(MULTI, b"page=x", {"Content-Type": FORM}), 415, "unsupported_media_type"),
    "body-over-1mib": Case(lambda api: api.post(MULTI, data=over_one_mib_of_valid_json(), headers=JSON), 413, "request_entity_too_large"),
    "body-over-1mib-chunked": Case(post_chunked(MULTI, over_one_mib_of_valid_json), 413, "request_entity_too_large"),
    "body-over-1mib-chunked-valid-first-mib": Case(post_chunked(SINGLE, valid_mib_then_garbage), 413, "request_entity_too_large"),
    "body-not-json": invalid(post_raw(SINGLE, b"page=example.com/a"), [""]),
    "body-empty": invalid(post_raw(SINGLE, b""), [""]),
    "body-invalid-utf8": invalid(post_raw(SINGLE, b'{"page": "caf\xe9"}'), [""]),
    "body-array": invalid(post_raw(MULTI, b'[{"example.com/a": {}}]'), [""]),
    "body-string": invalid(post_raw(SINGLE, b'"example.com/a"'), [""]),
    "body-null": invalid(post_raw(SINGLE, b"null"), [""]),
    "body-duplicate-keys": invalid(post_raw(SINGLE, b'{"page": "a", "page": "b"}'), ["/page"]),
    "body-nan": invalid(post_raw(MULTI, b'{"example.com/a": {"' + TS.encode() + b'": NaN}}'), [""]),
    "body-duplicate-nested-keys": invalid(post_raw(MULTI, f'{{"example.com/a": {{"{TS}": 1, "{TS}": 2}}}}'.encode()), [f"{A}/{TS}"]),
    "body-deeply-nested": invalid(post_raw(MULTI, b"[" * 100_000), [""]),
    # -- single
    "single-missing-page": invalid(post_json(SINGLE, {"timestamp": TS}), ["/page"]),
    "single-empty-page": invalid(post_json(SINGLE, {"page": ""}), ["/page"]),
    "single-page-2049": invalid(post_json(SINGLE, {"page": "x" * 2049}), ["/page"]),
    "single-page-number": invalid(post_json(SINGLE, {"page": 42}), ["/page"]),
    "single-page-null": invalid(post_json(SINGLE, {"page": None}), ["/page"]),
    "single-page-list": invalid(post_json(SINGLE, {"page": ["example.com/a"]}), ["/page"]),
    "single-page-nul": invalid(post_json(SINGLE, {"page": "example.com/a\u0000b"}), ["/page"]),
    "single-page-lone-surrogate": invalid(post_raw(SINGLE, b'{"page": "\\ud800"}'), ["/page"]),
    "single-bad-timestamp": invalid(post_json(SINGLE, {"page": "example.com/a", "timestamp": "yesterday"}), ["/timestamp"]),
    "single-timestamp-number": invalid(post_json(SINGLE, {"page": "example.com/a", "timestamp": 1752660000}), ["/timestamp"]),
    "single-2h-in-future": invalid(post_json(SINGLE, {"page": "example.com/a", "timestamp": TWO_HOURS_AHEAD}), ["/timestamp"]),
    "single-older-than-retention": invalid(post_json(SINGLE, {"page": "example.com/a", "timestamp": PAST_RETENTION}), ["/timestamp"]),
    "single-unknown-field": invalid(post_json(SINGLE, {**GOOD_SINGLE, "count": 5}), ["/count"]),
    # -- multi
    "multi-empty-object": invalid(post_json(MULTI, {}), [""]),
    "multi-page-to-list": invalid(post_json(MULTI, {"example.com/a": [TS, 1]}), [A]),
    "multi-page-to-empty-object": invalid(post_json(MULTI, {"example.com/a": {}}), [A]),
    "multi-count-zero": invalid(post_json(MULTI, {"example.com/a": {TS: 0}}), [f"{A}/{TS}"]),
    "multi-count-negative": invalid(post_json(MULTI, {"example.com/a": {TS: -3}}), [f"{A}/{TS}"]),
    "multi-count-over-million": invalid(post_json(MULTI, {"example.com/a": {TS: 1_000_001}}), [f"{A}/{TS}"]),
    "multi-count-float": invalid(post_json(MULTI, {"example.com/a": {TS: 5.0}}), [f"{A}/{TS}"]),
    "multi-count-string": invalid(post_json(MULTI, {"example.com/a": {TS: "5"}}), [f"{A}/{TS}"]),
    "multi-count-bool": invalid(post_json(MULTI, {"example.com/a": {TS: True}}), [f"{A}/{TS}"]),
    "multi-count-null": invalid(post_json(MULTI, {"example.com/a": {TS: None}}), [f"{A}/{TS}"]),
    "multi-10001-entries": invalid(post_json(MULTI, {f"example.com/{i}": {TS: 1} for i in range(10_001)}), [""]),
    "multi-one-bad-among-good": invalid(
        post_json(MULTI, {f"example.com/{i}": {TS: 3} for i in range(20)} | {"example.com/a": {TS: 2, TWO_HOURS_AHEAD: 1}}),
        [f"{A}/{TWO_HOURS_AHEAD}"],
    ),
    "multi-several-bad-all-listed": invalid(
        post_json(MULTI, {"example.com/a": {TS: 0, "soon": 1}, "example.com/b": {TS: 4}, "": {TS: 1}, "example.com/c": []}),
        [f"{A}/{TS}", f"{A}/soon", "/", "/example.com~1c"],
    ),
    # -- Idempotency-Key (the body is fine; only the header is wrong)
    "key-empty": invalid(post_json(SINGLE, GOOD_SINGLE, {"Idempotency-Key": ""}), ["Idempotency-Key"]),
    "key-201-chars": invalid(post_json(SINGLE, GOOD_SINGLE, {"Idempotency-Key": "k" * 201}), ["Idempotency-Key"]),
    "key-tab": invalid(post_json(SINGLE, GOOD_SINGLE, {"Idempotency-Key": "order\t42"}), ["Idempotency-Key"]),
    "key-non-ascii": invalid(post_json(MULTI, {"example.com/a": {TS: 1}}, {"Idempotency-Key": "clé-42"}), ["Idempotency-Key"]),
    # -- report
    "report-missing-page": invalid(get("/report"), ["page"]),
    "report-bad-order": invalid(get("/report", {"page": "a", "order": "sideways"}), ["order"]),
    "report-take-0": invalid(get("/report", {"page": "a", "take": "0"}), ["take"]),
    "report-take-25": invalid(get("/report", {"page": "a", "take": "25"}), ["take"]),
    "report-take-x": invalid(get("/report", {"page": "a", "take": "x"}), ["take"]),
    "report-bad-now": invalid(get("/report", {"page": "a", "now": "noonish"}), ["now"]),
    "report-from-without-to": invalid(get("/report", {"page": "a", "from": hour_ago(5)}), ["to"]),
    "report-unaligned-from": invalid(get("/report", {"page": "a", "from": "2025-07-01T00:30:00Z", "to": "2025-07-02T00:00:00Z"}), ["from"]),
    "report-to-not-after-from": invalid(
        get("/report", {"page": "a", "from": "2025-07-02T00:00:00Z", "to": "2025-07-02T00:00:00Z"}),
        ["to"],
    ),
    "report-over-31-days": invalid(get("/report", {"page": "a", "from": "2025-06-01T00:00:00Z", "to": "2025-07-02T01:00:00Z"}), ["to"]),
    "report-bad-now-year-1": invalid(get("/report", {"page": "a", "now": "0001-01-01T00:30:00Z"}), ["now"]),
    "report-page-2049-chars-long-url": invalid(get("/report", {"page": "a/" * 1024 + "b"}), ["page"]),
    "report-unknown-parameter": invalid(get("/report", {"page": "a", "limit": "5"}), ["limit"]),
    # -- routing
    "unknown-path": Case(get("/page-views"), 404, "not_found"),
    "wrong-method-get-single": Case(get(SINGLE), 405, "method_not_allowed"),
    "wrong-method-post-report": Case(request("POST", "/report"), 405, "method_not_allowed"),
    "wrong-method-put-multi": Case(request("PUT", MULTI), 405, "method_not_allowed"),
}


def _published(settings) -> int:
    return sum(queue_depths(settings).values())


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_request_is_refused_with_a_json_error_and_nothing_is_published(case: Case, settings, start_api):
    api = start_api()
    response = case.send(api)
    published = _published(settings)

    assert response.status_code == case.status, f"{response.text[:500]} (views published: {published})"
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:500]
    error = response.json()["error"]
    assert error["code"] == case.code
    assert isinstance(error["message"], str) and error["message"]
    if case.status == 400:
        problems = error["problems"]
        assert problems and all(isinstance(p["at"], str) and isinstance(p["problem"], str) and p["problem"] for p in problems)
        if case.problems_at is not None:
            assert [p["at"] for p in problems] == case.problems_at, problems
    assert published == 0


def test_the_published_check_sees_a_good_request(settings, start_api):
    """The control for the matrix above: with the same setup, a valid request does show up in the queues."""
    api = start_api()
    assert api.post(SINGLE, GOOD_SINGLE).status_code == 202
    wait_for(lambda: _published(settings) == 1, what="the one valid view in its queue")


def test_405_names_the_allowed_methods(settings, start_api):
    response = start_api().get(SINGLE)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize(
    "params",
    [
        {"page": "a/" * 1024},
        {"page": "é" * 2048},
        {"page": "a", "now": "9999-12-31T23:59:59Z"},
        {"page": "a", "from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:00:00Z"},
        {"page": "a", "from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"},
    ],
    ids=["page-2048-chars-with-slashes", "page-2048-non-ascii-chars", "now-end-of-9999", "range-end-of-9999", "range-year-1"],
)
def test_valid_report_at_the_limits_is_answered(settings, start_api, params):
    """The good side of the report limits above: the longest page, the extreme years."""
    response = start_api().get("/report", params)
    assert response.status_code == 200, response.text[:300]
    assert all(row["v"] == 0 for row in response.json()["data"])
