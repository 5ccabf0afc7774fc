"""GET /report by site, in time zones, by day, with totals and CSV; views go in through HTTP and workers."""
from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from api.reports import zones
from tests.e2e.reports_data import HOUR, by_local_day, in_window, iso, send_and_wait, spread, today

SITE = "example.com"


@pytest.fixture
def sent(start_api, start_worker, engine):
    """Every page at every 5th hour of the four days before today (UTC), and in the last hour."""
    api = start_api()
    start_worker()
    views = spread(1, today() - timedelta(days=4), 96)
    views.update(spread(2, today() - HOUR, 1, step=1))  # yesterday's last hour, the day after in the east
    counted: Counter = Counter()
    send_and_wait(api, engine, counted, views)
    return api, counted


def get(api, path: str, **params) -> dict:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_site_hour_by_hour_is_the_sum_of_its_pages(sent):
    api, views = sent
    start, end = today() - timedelta(days=4), today()
    answer = get(api, "/report", site=SITE, **{"from": iso(start), "to": iso(end)})
    expected = in_window(views, start, end, SITE)
    assert len(answer["data"]) == 96
    for index, item in enumerate(answer["data"]):
        hour = start + HOUR * index
        assert item["t"] == iso(hour)
        assert item["v"] == sum(n for (page, h), n in expected.items() if h == hour)
        assert item["u"] == 0  # multi carries no visitors
    assert answer["totals"] == {"views": sum(expected.values()), "visitors": 0}


def test_all_pages_include_those_without_a_site(sent):
    api, views = sent
    start, end = today() - timedelta(days=4), today() + HOUR
    answer = get(api, "/report", site="*", **{"from": iso(start), "to": iso(end)})
    assert answer["totals"]["views"] == sum(views.values())
    assert sum(item["v"] for item in answer["data"]) == sum(views.values())


@pytest.mark.parametrize("tz_name", ["Europe/Berlin", "America/New_York", "UTC"])
def test_days_in_a_zone_sum_the_hours_of_their_local_day(sent, tz_name):
    api, views = sent
    tz = ZoneInfo(tz_name)
    first = today().astimezone(tz).date() - timedelta(days=5)
    start, end = zones.start_of_day(first, tz), zones.start_of_day(first + timedelta(days=6), tz)
    answer = get(api, "/report", site="*", tz=tz_name, granularity="day", **{"from": iso(start), "to": iso(end)})
    expected = by_local_day(in_window(views, start, end), tz)
    assert [item["d"] for item in answer["data"]] == [(first + timedelta(days=n)).isoformat() for n in range(6)]
    assert {item["d"]: item["v"] for item in answer["data"] if item["v"]} == dict(expected)
    assert all(item["t"].startswith(item["d"] + "T00:00:00") for item in answer["data"])
    assert answer["totals"]["views"] == sum(expected.values())


def test_one_page_by_day_and_hour_in_berlin(sent):
    api, views = sent
    tz = ZoneInfo("Europe/Berlin")
    page = "example.com/pricing"
    days = get(api, "/report", page=page, tz="Europe/Berlin", granularity="day", now=iso(today() + HOUR * 12))
    assert len(days["data"]) == 30
    mine = Counter({key: n for key, n in views.items() if key[0] == page})
    expected = by_local_day(in_window(mine, zones.start_of_day(today().astimezone(tz).date() - timedelta(days=30), tz), zones.start_of_day(today().astimezone(tz).date(), tz)), tz)
    assert {item["d"]: item["v"] for item in days["data"] if item["v"]} == dict(expected)
    hours = get(api, "/report", page=page, tz="Europe/Berlin", now=iso(today()))
    offset = today().astimezone(tz).utcoffset()
    assert [item["h"] for item in hours["data"]] == [(today() - HOUR * (24 - n)).astimezone(tz).hour for n in range(24)]
    assert hours["data"][-1]["t"] == (today() - HOUR).astimezone(tz).isoformat()
    assert offset and not hours["data"][-1]["t"].endswith("Z")


def test_order_take_and_totals_over_the_whole_window(sent):
    api, views = sent
    params = {"site": SITE, "granularity": "day", "now": iso(today()), "order": "desc", "take": "2"}
    answer = get(api, "/report", **params)
    everything = get(api, "/report", site=SITE, granularity="day", now=iso(today()))
    assert answer["data"] == list(reversed(everything["data"]))[:2]
    assert answer["totals"] == everything["totals"]
    assert answer["totals"]["views"] == sum(in_window(views, today() - timedelta(days=30), today(), SITE).values())


def test_csv_has_the_fields_of_the_items(sent):
    api, _views = sent
    params = {"site": SITE, "granularity": "day", "now": iso(today())}
    response = api.get("/report", params={**params, "format": "csv"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    data = get(api, "/report", **params)["data"]
    assert rows[0] == ["d", "t", "v", "u"]
    assert rows[1:] == [[item["d"], item["t"], str(item["v"]), str(item["u"])] for item in data]


def test_visitors_are_a_union_not_a_sum(sent, engine):
    """Sketches written straight into the rows (the browser collector, issue 10, fills them in the pipeline)."""
    api, _views = sent
    first, second = today() - timedelta(days=4), today() - timedelta(days=4) + 5 * HOUR
    sketch = "(SELECT hll_add_agg(hll_hash_bigint(v)) FROM unnest(CAST(:ids AS bigint[])) v)"
    with engine.begin() as connection:
        for hour, ids in ((first, [1, 2, 3]), (second, [3, 4])):
            for table, key in (("page_views", "page = 'example.com/pricing'"), ("site_hours", "site = 'example.com'")):
                connection.execute(text(f"UPDATE {table} SET visitors = {sketch} WHERE {key} AND view_hour = :hour"), {"ids": ids, "hour": hour})
    window = {"from": iso(first), "to": iso(first + 6 * HOUR)}
    for params in ({"page": "example.com/pricing"}, {"site": SITE}, {"site": "*"}):
        answer = get(api, "/report", **params, **window)
        assert [item["u"] for item in answer["data"]] == [3, 0, 0, 0, 0, 2]
        assert answer["totals"]["visitors"] == 4


@pytest.mark.parametrize(
    ("params", "problems"),
    [
        ({"page": "a", "site": "b", "tz": "Asia/Kolkata", "granularity": "month", "format": "pdf"}, {"site", "tz", "granularity", "format"}),
        ({"site": "a/b", "tz": "Nowhere/Town", "take": "0", "order": "up"}, {"site", "tz", "take", "order"}),
        ({"page": "a", "granularity": "day", "from": "2025-07-01T01:00:00Z", "to": "2025-07-02T00:00:00Z", "limit": "3"}, {"from", "limit"}),
    ],
)
def test_bad_parameters_are_a_400_listing_each_problem(sent, params, problems):
    api, _views = sent
    response = api.get("/report", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert {p["at"] for p in error["problems"]} == problems
