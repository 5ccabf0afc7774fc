"""BEACON_RATE_LIMIT through HTTP: per client (as TRUSTED_PROXIES defines it), 429 with Retry-After, nothing counted."""
from __future__ import annotations

import json

from tests.e2e.test_beacon import BEACON, LOCAL_PROXY, TEXT
from tests.helpers import total_views, wait_for


def send(api, client: str):
    body = json.dumps({"url": "https://shop.example/limited"})
    return api.post(BEACON, data=body, headers={**TEXT, "X-Forwarded-For": client})


def test_a_client_over_the_limit_gets_429_and_is_not_counted(start_api, start_worker, engine):
    api = start_api(beacon_rate_limit="2/minute", trusted_proxies=LOCAL_PROXY)
    start_worker()
    answers = [send(api, "203.0.113.7").status_code for _ in range(3)]
    assert answers == [202, 202, 429]
    refused = send(api, "203.0.113.7")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Access-Control-Allow-Origin"]  # a page can read why
    assert send(api, "198.51.100.9").status_code == 202  # another client is not affected
    assert 'pageviews_requests_rejected_total{reason="rate_limited"} 2.0' in api.get("/metrics").text
    wait_for(lambda: total_views(engine) == 3, what="the 3 views answered 202")
    assert total_views(engine) == 3
