"""BEACON_RATE_LIMIT on a tiny route of its own (the beacon applies the same decorator)."""
from __future__ import annotations

import pytest
from flask import Flask, jsonify, request

from api import errors, ratelimit
from common.config import ConfigError, Settings


def tiny_app(limit: str) -> Flask:
    app = Flask(__name__)
    errors.register(app)
    ratelimit.install(app, Settings.from_mapping({"BEACON_RATE_LIMIT": limit}))

    @app.post("/limited")
    @ratelimit.rate_limited(key=lambda: request.headers.get("X-Client", "peer"))
    def limited():
        return jsonify(accepted=1), 202

    return app


def post(client, who: str):
    return client.post("/limited", headers={"X-Client": who})


def test_over_the_limit_is_429_with_retry_after_and_other_clients_are_not_affected():
    client = tiny_app("3/minute").test_client()
    assert [post(client, "a").status_code for _ in range(3)] == [202, 202, 202]
    refused = post(client, "a")
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert post(client, "b").status_code == 202


def test_empty_means_no_limit():
    client = tiny_app("").test_client()
    assert {post(client, "a").status_code for _ in range(50)} == {202}


@pytest.mark.parametrize("raw", ["60/minute", "10 per second", "1000/Hour", " 5/days "])
def test_the_setting_takes_the_limits_notation(raw):
    settings = Settings.from_mapping({"BEACON_RATE_LIMIT": raw})
    assert settings.beacon_rate_limit == raw.strip()
    assert ratelimit.RateLimit(settings.beacon_rate_limit).item.amount >= 1  # and the library reads it


@pytest.mark.parametrize("raw", ["60", "0/minute", "ten/minute", "60/fortnight", "60/minute;1/second"])
def test_a_bad_setting_names_itself(raw):
    with pytest.raises(ConfigError, match="BEACON_RATE_LIMIT"):
        Settings.from_mapping({"BEACON_RATE_LIMIT": raw})
