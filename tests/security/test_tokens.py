"""Tokens through HTTP: 401 without a good one, the tokens that work, public endpoints stay public."""
from __future__ import annotations

import pytest

from tests.helpers import hour_ago, total_views, wait_for

REPORT_TOKENS = ("report-token-aaaaaaaaaaaa", "report-token-bbbbbbbbbbbb")
INGEST_TOKEN = "ingest-token-cccccccccccc"


@pytest.fixture
def api(start_api):
    return start_api(report_tokens=REPORT_TOKENS, ingest_tokens=(INGEST_TOKEN,))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


WRONG_HEADERS = [
    {},
    bearer("nope"),
    bearer(REPORT_TOKENS[0][:-1]),
    {"Authorization": f"Basic {INGEST_TOKEN}"},
    {"Authorization": "Bearer"},
]


@pytest.mark.parametrize("headers", WRONG_HEADERS, ids=["none", "wrong", "prefix", "basic", "empty"])
def test_ingest_refuses_without_its_token_and_publishes_nothing(api, start_worker, engine, headers):
    start_worker()
    body = {"page": "example.com/a", "timestamp": hour_ago(2)}
    assert_unauthorized(api.post("/page-views/single", body, headers=headers))
    assert_unauthorized(api.post("/page-views/multi", {"example.com/a": {hour_ago(2): 3}}, headers=headers))
    # A report token is not an ingest token.
    assert_unauthorized(api.post("/page-views/single", body, headers=bearer(REPORT_TOKENS[0])))
    # The one accepted view is the only one counted.
    assert api.post("/page-views/single", body, headers=bearer(INGEST_TOKEN)).status_code == 202
    wait_for(lambda: total_views(engine) == 1, what="the authorised view counted")
    assert total_views(engine) == 1


def test_every_report_token_reads_and_nothing_else_does(api):
    params = {"page": "example.com/a"}
    for headers in [*WRONG_HEADERS, bearer(INGEST_TOKEN)]:
        response = api.session.get(api.base_url + "/report", params=params, headers=headers, timeout=10)
        assert_unauthorized(response)
        assert "Bearer report-token" not in response.text
    for token in REPORT_TOKENS:
        response = api.session.get(api.base_url + "/report", params=params, headers=bearer(token), timeout=10)
        assert response.status_code == 200, response.text
    # 401 comes before validation: a caller without a token learns nothing about parameters.
    assert_unauthorized(api.get("/report", params={"bogus": "1"}))


def test_health_and_readiness_stay_public(api):
    assert api.get("/health").status_code == 200
    assert api.get("/ready").status_code == 200


def test_unset_tokens_leave_the_service_open(start_api):
    api = start_api()
    assert api.post("/page-views/single", {"page": "example.com/a"}).status_code == 202
    assert api.get("/report", params={"page": "example.com/a"}).status_code == 200


def test_tokens_are_never_logged(api):
    api.post("/page-views/single", {"page": "example.com/a"}, headers=bearer("secret-" + INGEST_TOKEN))
    api.get("/report", params={"page": "example.com/a"})
    log = api.output()
    assert INGEST_TOKEN not in log and REPORT_TOKENS[0] not in log
    assert 'REPORT_TOKENS="<2 tokens>"' in log
