"""GET /report end to end: views go in through HTTP and workers, the edges come out through /report."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers import total_views, wait_for

PAGE = "example.com/reported"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def reported(settings, start_api, start_worker, engine):
    """Views placed around a `now` two hours ago, so the window's edges are all in the past."""
    api = start_api()
    start_worker()
    current = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    now = current - timedelta(hours=2) + timedelta(minutes=17)
    now_hour = current - timedelta(hours=2)
    placed = {
        now_hour - timedelta(hours=25): 100,  # just before the window: excluded
        now_hour - timedelta(hours=24): 1,  # first hour of the window
        now_hour - timedelta(hours=10): 7,
        now_hour - timedelta(hours=1): 3,  # last hour of the window
        now_hour: 1000,  # the hour of `now` itself: excluded
    }
    body = {PAGE: {iso(hour): views for hour, views in placed.items()}, "example.com/other": {iso(now_hour - timedelta(hours=10)): 50}}
    assert api.post("/page-views/multi", body).status_code == 202
    # Offsets: 12:30+02:00 is 10:30Z, counted in the 10:00Z hour.
    local = (now_hour - timedelta(hours=10) + timedelta(minutes=30)).astimezone(timezone(timedelta(hours=2)))
    assert api.post("/page-views/single", {"page": PAGE, "timestamp": local.isoformat()}).status_code == 202
    naive = (now_hour - timedelta(hours=10) + timedelta(minutes=5)).replace(tzinfo=None).isoformat()  # naive means UTC
    assert api.post("/page-views/single", {"page": PAGE, "timestamp": naive}).status_code == 202
    wait_for(lambda: total_views(engine) == sum(placed.values()) + 50 + 2, what="every view counted")
    return api, now, now_hour


def report(api, **params):
    response = api.get("/report", params={"page": PAGE, **params})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_last_24_complete_hours_zero_filled_ascending(reported):
    api, now, now_hour = reported
    data = report(api, now=iso(now))
    assert len(data) == 24
    assert [row["t"] for row in data] == [iso(now_hour - timedelta(hours=24 - i)) for i in range(24)]
    assert [row["h"] for row in data] == [(now_hour - timedelta(hours=24 - i)).hour for i in range(24)]
    values = {row["t"]: row["v"] for row in data}
    assert values[iso(now_hour - timedelta(hours=24))] == 1
    assert values[iso(now_hour - timedelta(hours=10))] == 9  # 7 + the offset view + the naive view
    assert values[iso(now_hour - timedelta(hours=1))] == 3
    assert sum(values.values()) == 13  # neither the hour before the window nor the hour of now
    assert sum(1 for row in data if row["v"] == 0) == 21


def test_order_take_and_now_with_an_offset(reported):
    api, now, now_hour = reported
    ascending = report(api, now=iso(now))
    assert report(api, now=iso(now), order="desc") == list(reversed(ascending))
    assert report(api, now=iso(now), take="3") == ascending[:3]
    assert report(api, now=iso(now), order="desc", take="1") == [ascending[-1]]
    # The same instant written with an offset reports the same hours.
    assert report(api, now=now.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat()) == ascending


def test_default_now_is_the_current_hour(reported):
    api, _now, now_hour = reported
    data = report(api)
    current_hour = now_hour + timedelta(hours=2)
    assert data[-1]["t"] == iso(current_hour - timedelta(hours=1))
    assert {row["t"]: row["v"] for row in data}[iso(now_hour)] == 1000  # now in the window, two hours back


def test_custom_range_with_from_and_to(reported):
    api, _now, now_hour = reported
    start, end = now_hour - timedelta(hours=25), now_hour + timedelta(hours=1)
    data = report(api, **{"from": iso(start), "to": iso(end)})
    assert len(data) == 26
    assert data[0] == {"h": start.hour, "v": 100, "u": 0, "t": iso(start)}
    assert data[-1] == {"h": now_hour.hour, "v": 1000, "u": 0, "t": iso(now_hour)}
    assert sum(row["v"] for row in data) == 1113
    assert report(api, **{"from": iso(start), "to": iso(end), "order": "desc", "take": "2"}) == list(reversed(data))[:2]


def test_a_page_with_no_views_reports_zeros(reported):
    api, now, _now_hour = reported
    data = api.get("/report", params={"page": "example.com/never-seen", "now": iso(now)}).json()["data"]
    assert len(data) == 24 and all(row["v"] == 0 for row in data)
