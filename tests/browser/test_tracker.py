"""The tracker in a real headless Chromium: a page on one origin, the tracker and the API on another.

A tiny http.server on its own port plays the website (http://localhost:<port>); its pages
load tracker.js from the API (http://127.0.0.1:<api port>), a cross-origin setup like
a real site and its stats server. The browser says it is a desktop Chrome: its own
"HeadlessChrome" agent is a bot and would be dropped.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from sqlalchemy import text

from tests.helpers import views_by_page_hour, wait_for

DESKTOP_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
DESKTOP_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
# What headless Chromium calls itself unless told otherwise.
HEADLESS_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"


@pytest.fixture
def website(settings) -> Iterator[str]:
    """http://localhost:<port>: any path is a page that loads the tracker from the API's origin."""
    tracker = f"http://127.0.0.1:{settings.port}/tracker.js"

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = f'<!doctype html><meta charset="utf-8"><title>{self.path}</title><script defer src="{tracker}"></script><p>{self.path}</p>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def views_by_page(engine) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (page, _hour), views in views_by_page_hour(engine).items():
        counts[page] = counts.get(page, 0) + views
    return counts


def site_visitors(engine, site: str) -> int:
    """Visitors of the whole site: the union of the sketches of all its pages' rows."""
    statement = text("SELECT coalesce(round(hll_cardinality(hll_union_agg(visitors)))::bigint, 0) FROM page_views WHERE page LIKE :prefix")
    with engine.connect() as connection:
        return int(connection.execute(statement, {"prefix": site + "/%"}).scalar())


def test_tracker_counts_page_loads_and_path_changes_and_visitors(settings, start_api, start_worker, engine, website, make_browser):
    start_api()
    start_worker()
    site = website.removeprefix("http://")

    first = make_browser(user_agent=DESKTOP_CHROME)
    for path in ("/", "/pricing", "/docs/start"):
        first.get(website + path)
    first.execute_script("history.pushState({}, '', '/app/settings')")  # a single-page app changes the path: a view
    first.execute_script("history.pushState({}, '', '/app/settings?tab=2')")  # query only: none
    first.execute_script("location.hash = 'billing'")  # hash only: none
    first.execute_script("history.replaceState({}, '', '/app/settings#top')")  # hash only: none

    expected = {f"{site}/": 1, f"{site}/pricing": 1, f"{site}/docs/start": 1, f"{site}/app/settings": 1}
    wait_for(lambda: views_by_page(engine) == expected, timeout=30, what=f"the 4 views {expected}")
    assert site_visitors(engine, site) == 1

    second = make_browser(user_agent=DESKTOP_FIREFOX)  # another browser context, another agent: another visitor
    second.get(website + "/pricing")
    expected[f"{site}/pricing"] = 2
    wait_for(lambda: views_by_page(engine) == expected, timeout=30, what="the second browser's view")
    assert site_visitors(engine, site) == 2
    assert views_by_page(engine) == expected  # nothing more arrived from the first browser meanwhile

    make_browser(user_agent=HEADLESS_CHROME).get(website + "/headless")  # HeadlessChrome is a bot: answered, not counted
    first.execute_script("history.pushState({}, '', '/after-the-bot')")
    expected[f"{site}/after-the-bot"] = 1
    wait_for(lambda: views_by_page(engine) == expected, timeout=30, what="the view after the bot's, and not the bot's")
