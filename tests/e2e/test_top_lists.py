"""GET /pages and /sites end to end: exact against what was sent, before and after the cleaner rolled days
up, with late views for rolled-up days, and while workers are flushing."""
from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.e2e.reports_data import HOUR, by_page, by_site, in_window, iso, ranked, send, send_and_wait, spread, today
from tests.helpers import total_views, wait_for
from worker.cleaner import Cleaner


@pytest.fixture
def sent(start_api, start_worker, engine):
    api = start_api()
    start_worker()
    counted: Counter = Counter()
    send_and_wait(api, engine, counted, spread(7, today() - timedelta(days=4), 100, step=3))
    return api, counted


def top(api, path: str, **params) -> dict:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def pairs(answer: dict, kind: str) -> list[tuple[str, int]]:
    return [(item[kind], item["v"]) for item in answer["data"]]


def assert_exact(api, views: Counter, start, end) -> None:
    window = {"from": iso(start), "to": iso(end)}
    sent_here = in_window(views, start, end)
    pages = top(api, "/pages", limit="1000", **window)
    assert pages["data"] == [{"page": p, "v": v, "u": 0} for p, v in ranked(by_page(sent_here), 1000)]
    assert pages["totals"] == {"views": sum(sent_here.values()), "visitors": 0}
    assert pairs(top(api, "/pages", limit="3", **window), "page") == ranked(by_page(sent_here), 3)
    of_site = in_window(views, start, end, "example.com")
    answer = top(api, "/pages", site="example.com", **window)
    assert pairs(answer, "page") == ranked(by_page(of_site), 10)
    assert answer["totals"]["views"] == sum(of_site.values())
    sites = top(api, "/sites", **window)
    assert pairs(sites, "site") == ranked(by_site(sent_here), 10)
    assert sites["totals"]["views"] == sum(sent_here.values())


def windows() -> list[tuple]:
    """Whole days, days with ragged edges, and the default-sized 24 hours."""
    first = today() - timedelta(days=4)
    return [(first, today()), (first + 5 * HOUR, today() + HOUR), (first + 30 * HOUR, first + 54 * HOUR)]


def test_top_pages_and_sites_equal_the_sums_sent(sent):
    api, views = sent
    for start, end in windows():
        assert_exact(api, views, start, end)


def test_default_window_is_the_last_24_complete_hours(sent):
    api, views = sent
    now = today() - timedelta(days=2, minutes=-30)
    expected = in_window(views, now.replace(minute=0) - 24 * HOUR, now.replace(minute=0))
    assert pairs(top(api, "/pages", now=iso(now)), "page") == ranked(by_page(expected), 10)
    assert pairs(top(api, "/sites", now=iso(now)), "site") == ranked(by_site(expected), 10)


def test_exact_after_the_cleaner_rolled_days_up_and_with_late_views(sent, settings, engine):
    api, views = sent
    report = Cleaner(settings, engine).run()
    assert report is not None and report.days_rolled_up >= 3
    for start, end in windows():
        assert_exact(api, views, start, end)
    late = Counter({("example.com/late", today() - timedelta(days=3) + 7 * HOUR): 500, ("shop.test/cart", today() - timedelta(days=2)): 40})
    send_and_wait(api, engine, views, late)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT views FROM page_days WHERE page = 'example.com/late'")).scalar() == 500
    for start, end in windows():
        assert_exact(api, views, start, end)


def test_each_answer_is_one_snapshot_while_workers_flush(sent, engine):
    api, views = sent
    stop = threading.Event()

    def keep_sending() -> None:
        for n in range(1000):
            if stop.is_set():
                return
            more = Counter({(f"example.com/stream{n % 7}", today() + HOUR * (n % 2) - HOUR): 1, ("other.test/x", today() - HOUR): 2})
            send(api, more)
            views.update(more)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        for _ in range(25):
            window = {"from": iso(today() - timedelta(days=4)), "to": iso(today() + HOUR), "limit": "1000"}
            pages, sites = top(api, "/pages", **window), top(api, "/sites", **window)
            assert sum(item["v"] for item in pages["data"]) == pages["totals"]["views"]
            assert sum(item["v"] for item in sites["data"]) == sites["totals"]["views"]
    finally:
        stop.set()
        sender.join()
    wait_for(lambda: total_views(engine) == sum(views.values()), what="every view counted")
    assert_exact(api, views, today() - timedelta(days=4), today() + HOUR)


def test_csv_lists_are_quoted_and_harmless(sent):
    api, views = sent
    window = {"from": iso(today() - timedelta(days=4)), "to": iso(today()), "limit": "1000", "format": "csv"}
    response = api.get("/pages", params=window)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows[0] == ["page", "v", "u"]
    names = {row[0] for row in rows[1:]}
    assert {"example.com/a,b", 'example.com/"q"', "'=1+1", "'-x/y", "shop.test/=1+1"} <= names
    sites = list(csv.reader(io.StringIO(api.get("/sites", params=window).text, newline="")))
    assert sites[0] == ["site", "v", "u"] and "'-x" in {row[0] for row in sites[1:]}


@pytest.mark.parametrize(
    ("path", "params", "problems"),
    [
        ("/pages", {"limit": "0", "format": "xml", "site": "a/b", "tz": "UTC"}, {"limit", "format", "site", "tz"}),
        ("/pages", {"from": "2025-07-01T00:30:00Z", "to": "2026-07-03T00:00:00Z", "now": "x"}, {"from", "now"}),
        ("/sites", {"limit": "1001", "site": "a", "from": "2024-01-01T00:00:00Z", "to": "2025-07-01T00:00:00Z"}, {"limit", "site", "to"}),
    ],
)
def test_bad_parameters_are_a_400_listing_each_problem(sent, path, params, problems):
    api, _views = sent
    response = api.get(path, params=params)
    assert response.status_code == 400
    assert {p["at"] for p in response.json()["error"]["problems"]} == problems
