"""POST /page-views/beacon and GET /tracker.js against the real API process (no worker unless a test needs one).

Without a worker, anything the API published would still sit in the test's own queues:
`published(settings)` counts it, as in test_bad_input.py.
"""
from __future__ import annotations

import gzip
import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
import requests

from api.visitors import visitor_id
from common import messages
from common.broker import BrokerAdmin, Topology
from tests.exactness import queue_of
from tests.helpers import ApiProcess, queue_depths, total_views, total_visitors, wait_for

BEACON = "/page-views/beacon"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
TEXT = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": BROWSER, "Origin": "https://shop.example"}
LOCAL_PROXY = (ipaddress.ip_network("127.0.0.1/32"),)  # the tests' requests come from 127.0.0.1
GOOD = json.dumps({"url": "https://shop.example/pricing?plan=pro#faq", "referrer": "https://www.google.com/"})

Send = Callable[[ApiProcess], requests.Response]


def published(settings) -> int:
    return sum(queue_depths(settings).values())


def post(data: bytes | str, **headers: str) -> Send:
    return lambda api: api.post(BEACON, data=data, headers={**TEXT, **headers})


def post_chunked(data: bytes) -> Send:
    return lambda api: api.post(BEACON, data=(data[i : i + 1024] for i in range(0, len(data), 1024)), headers=TEXT)


def body(**fields: object) -> str:
    return json.dumps(fields)


@dataclass
class Bad:
    send: Send
    status: int = 400
    code: str = "invalid_request"
    at: list[str] | None = None


BAD = {
    "content-type-missing": Bad(lambda api: api.post(BEACON, data=GOOD, headers={"User-Agent": BROWSER}), 415, "unsupported_media_type"),
    "content-type-form": Bad(post(GOOD, **{"Content-Type": "application/x-www-form-urlencoded"}), 415, "unsupported_media_type"),
    "content-type-xml": Bad(post(GOOD, **{"Content-Type": "application/xml"}), 415, "unsupported_media_type"),
    "body-over-8kib": Bad(post(body(url="https://shop.example/", referrer="https://r.example/" + "a" * 8200)), 413, "request_entity_too_large"),
    "body-over-8kib-chunked": Bad(post_chunked(GOOD.encode() + b" " * 8200), 413, "request_entity_too_large"),
    "body-empty": Bad(post(""), at=[""]),
    "body-not-json": Bad(post("url=https://shop.example/"), at=[""]),
    "body-invalid-utf8": Bad(post(b'{"url": "https://shop.example/caf\xe9"}'), at=[""]),
    "body-latin1-declared": Bad(post(b'{"url": "https://shop.example/caf\xe9"}', **{"Content-Type": "text/plain; charset=ISO-8859-1"}), at=[""]),
    "body-array": Bad(post('["https://shop.example/"]'), at=[""]),
    "body-string": Bad(post('"https://shop.example/"'), at=[""]),
    "body-null": Bad(post("null"), at=[""]),
    "body-duplicate-keys": Bad(post('{"url": "https://a.example/", "url": "https://b.example/"}'), at=["/url"]),
    "body-nan": Bad(post('{"url": NaN}'), at=[""]),
    "body-deeply-nested": Bad(post("[" * 8000), at=[""]),
    "url-missing": Bad(post(body(referrer="")), at=["/url"]),
    "url-null": Bad(post(body(url=None)), at=["/url"]),
    "url-number": Bad(post(body(url=42)), at=["/url"]),
    "url-relative": Bad(post(body(url="/pricing")), at=["/url"]),
    "url-no-scheme": Bad(post(body(url="shop.example/pricing")), at=["/url"]),
    "url-ftp": Bad(post(body(url="ftp://shop.example/pricing")), at=["/url"]),
    "url-javascript": Bad(post(body(url="javascript:alert(1)")), at=["/url"]),
    "url-no-host": Bad(post(body(url="https:///pricing")), at=["/url"]),
    "url-bad-port": Bad(post(body(url="https://shop.example:99999/")), at=["/url"]),
    "url-space-in-host": Bad(post(body(url="https://shop example/")), at=["/url"]),
    "url-bad-idn": Bad(post(body(url="https://a\u200d.example/")), at=["/url"]),
    "url-page-2049": Bad(post(body(url="https://shop.example/" + "a" * (2049 - len("shop.example/")))), at=["/url"]),
    "url-lone-surrogate": Bad(post('{"url": "https://shop.example/\\ud800"}'), at=["/url"]),
    "unknown-field": Bad(post(body(url="https://shop.example/", page="shop.example/")), at=["/page"]),
    "referrer-number": Bad(post(body(url="https://shop.example/", referrer=1)), at=["/referrer"]),
    "referrer-not-a-url": Bad(post(body(url="https://shop.example/", referrer="yesterday")), at=["/referrer"]),
    "referrer-2049": Bad(post(body(url="https://shop.example/", referrer="https://r.example/" + "a" * 2031)), at=["/referrer"]),
    "everything-wrong": Bad(post(body(url=None, referrer=None, title="x")), at=["/title", "/url", "/referrer"]),
    "wrong-method-get": Bad(lambda api: api.get(BEACON), 405, "method_not_allowed"),
    "wrong-method-put": Bad(lambda api: api.session.put(api.base_url + BEACON, data=GOOD, headers=TEXT, timeout=10), 405, "method_not_allowed"),
}


def test_every_bad_beacon_gets_a_json_4xx_and_nothing_is_published(settings, start_api, subtests):
    """One API for all cases, its queues checked after each: a leak shows at the case that caused it."""
    api = start_api()
    for name, case in BAD.items():
        with subtests.test(name):
            response = case.send(api)
            assert response.status_code == case.status, response.text[:300]
            assert response.headers["Content-Type"].startswith("application/json")
            error = response.json()["error"]
            assert error["code"] == case.code and error["message"]
            if case.at is not None:
                assert [p["at"] for p in error["problems"]] == case.at
            if response.status_code != 405:  # the route's CORS headers: scripts may read their errors
                assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert published(settings) == 0


def test_preflight_is_answered_204_with_the_cors_headers(settings, start_api):
    api = start_api()
    response = api.session.options(
        api.base_url + BEACON, headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    )
    assert response.status_code == 204 and response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert int(response.headers["Access-Control-Max-Age"]) > 0


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "text/plain", "application/json", "text/plain; charset=utf-8"])
def test_a_beacon_is_accepted_after_the_confirm_and_carries_cors(settings, start_api, content_type):
    api = start_api()
    response = api.post(BEACON, data=GOOD, headers={**TEXT, "Content-Type": content_type})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert published(settings) == 1  # confirmed before the answer: already in its queue


@pytest.mark.parametrize(
    "agent",
    [None, "", "curl/8.5.0", "python-requests/2.32.3", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"],
    ids=["missing", "empty", "curl", "python-requests", "googlebot", "headless-chrome"],
)
def test_bots_are_answered_202_and_counted_nowhere(settings, start_api, agent):
    api = start_api()
    headers = {key: value for key, value in TEXT.items() if key != "User-Agent"}
    if agent is not None:
        headers["User-Agent"] = agent
    else:
        api.session.headers.pop("User-Agent", None)  # requests would add its own
    response = api.post(BEACON, data=GOOD, headers=headers)
    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "dropped": "bot"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert published(settings) == 0


def test_only_listed_origins_may_send(settings, start_api):
    api = start_api(allowed_origins=("https://shop.example", "http://localhost:8080"))
    allowed = api.post(BEACON, data=GOOD, headers=TEXT)
    assert allowed.status_code == 202
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Origin" in allowed.headers["Vary"]
    preflight = api.session.options(api.base_url + BEACON, headers={"Origin": "http://localhost:8080"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"

    for send in (
        lambda: api.post(BEACON, data=GOOD, headers={**TEXT, "Origin": "https://evil.example"}),
        lambda: api.post(BEACON, data="not json", headers={**TEXT, "Origin": "https://evil.example"}),
        lambda: api.session.options(api.base_url + BEACON, headers={"Origin": "https://evil.example"}),
    ):
        refused = send()
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden_origin"
        assert "Access-Control-Allow-Origin" not in refused.headers
    assert published(settings) == 1  # only the allowed one


def test_single_and_multi_still_refuse_text_plain_and_have_no_bot_filter(settings, start_api):
    api = start_api()
    assert api.post("/page-views/single", data=json.dumps({"page": "a"}), headers={"Content-Type": "text/plain"}).status_code == 415
    assert api.post("/page-views/single", {"page": "a"}, headers={"User-Agent": "curl/8.5.0"}).status_code == 202


# --------------------------------------------------------------------------- through the worker


def this_hour() -> datetime:
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def report_of(api: ApiProcess, page: str) -> list[dict]:
    start = this_hour()
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    params = {"page": page, "from": (start - timedelta(hours=1)).strftime(fmt), "to": (start + timedelta(hours=1)).strftime(fmt)}
    return api.get("/report", params=params).json()["data"]


def send_from(api: ApiProcess, address: str, url: str, agent: str = BROWSER) -> requests.Response:
    return api.post(BEACON, data=json.dumps({"url": url}), headers={**TEXT, "User-Agent": agent, "X-Forwarded-For": f"6.6.6.6, {address}"})


def test_views_and_visitors_are_counted_and_reported(settings, start_api, start_worker, engine):
    api = start_api(trusted_proxies=LOCAL_PROXY)
    start_worker()
    page = "shop.example/pricing"
    # Three visitors: an address and agent twice (once with a query), another address, another agent.
    for address, url, agent in [
        ("198.51.100.1", "https://shop.example/pricing", BROWSER),
        ("198.51.100.1", "https://SHOP.example/pricing?plan=pro", BROWSER),
        ("198.51.100.2", "https://shop.example/pricing", BROWSER),
        ("198.51.100.1", "https://shop.example/pricing", BROWSER + " Edg/131"),
    ]:
        assert send_from(api, address, url, agent).status_code == 202
    assert api.post("/page-views/single", {"page": page}).status_code == 202  # a view without a visitor

    wait_for(lambda: total_views(engine, page) == 5, what="5 views")
    assert total_visitors(engine, page) == 3
    rows = [row for row in report_of(api, page) if row["v"]]
    assert sum(row["v"] for row in rows) == 5
    assert max(row["u"] for row in rows) <= 3 and sum(row["u"] for row in rows) >= 3


def test_a_hundred_visitors_through_http_are_exact(settings, start_api, start_worker, engine):
    api = start_api(trusted_proxies=LOCAL_PROXY)
    start_worker()
    for visitor in range(100):
        for _ in range(2):  # each visitor twice: 200 views, 100 visitors
            assert send_from(api, f"203.0.113.{visitor}", "https://shop.example/").status_code == 202
    wait_for(lambda: total_views(engine, "shop.example/") == 200, what="200 views")
    assert total_visitors(engine, "shop.example/") == 100


# --------------------------------------------------------------------------- tracker.js


def test_tracker_js_is_served_small_cached_and_conditional(settings, start_api):
    api = start_api()
    response = api.session.get(api.base_url + "/tracker.js", headers={"Accept-Encoding": "gzip"}, stream=True)
    raw = response.raw.read()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.headers["Content-Encoding"] == "gzip"
    assert len(raw) < 800, f"tracker.js is {len(raw)} bytes gzipped"
    assert b"sendBeacon" in gzip.decompress(raw)
    assert "max-age=86400" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    again = api.session.get(api.base_url + "/tracker.js", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    plain = api.session.get(api.base_url + "/tracker.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers and plain.headers["ETag"] != etag
    source = plain.text
    assert "document.cookie" not in source and "localStorage" not in source and "sessionStorage" not in source


def test_ten_thousand_visitors_through_queue_worker_and_report_within_two_percent(settings, start_api, start_worker, engine):
    """Ten thousand requests would take minutes on a shared machine, so this one starts at the queue:
    the visitor ids the API would compute for 10,000 addresses, in version-2 messages of 500 views.
    The salt is fixed, so the ids and the estimate are the same on every run: at 0.8 % standard
    error a random salt would miss 2 % about once in 70 runs."""
    api = start_api()
    start_worker()
    page, hour = "shop.example/", int(this_hour().timestamp())
    salt = bytes(range(32))
    views = [(page, hour, 1, visitor_id(salt, "shop.example", f"10.0.{i // 256}.{i % 256}", BROWSER)) for i in range(10_000)]
    topology = Topology(settings.queue_prefix, settings.num_partitions, settings.delivery_limit)
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(topology)
        for start in range(0, len(views), 500):
            message_id = messages.new_message_id()
            admin.publish(queue_of(settings, page), messages.encode(message_id, views[start : start + 500]), message_id)
    wait_for(lambda: total_views(engine, page) == 10_000, timeout=60, what="10,000 views")
    reported = sum(row["u"] for row in report_of(api, page))
    estimated = total_visitors(engine, page)
    assert abs(estimated - 10_000) <= 200, estimated  # 9,956 with this salt
    assert reported == estimated
