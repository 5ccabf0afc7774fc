"""Views sent through the API for the report tests, and the answers they imply, computed from what was sent."""
from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from common.sites import site_of
from tests.helpers import ApiProcess, total_views, wait_for

HOUR = timedelta(hours=1)
# Sites, pages without a site, and names a spreadsheet would run as a formula.
PAGES = ["example.com/", "example.com/pricing", "example.com/a,b", 'example.com/"q"', "shop.test/cart", "shop.test/=1+1", "/root", "=1+1", "-x/y"]

Sent = Counter  # (page, UTC hour) -> views


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def today() -> datetime:
    """The start of a UTC day the tests place views around: today's, or yesterday's in the first hours.

    Test data reaches a few hours past this day's start, and the API refuses timestamps more
    than an hour ahead: anchored at least six hours back, the data is in the past at any time of day.
    """
    return (datetime.now(timezone.utc) - timedelta(hours=6)).replace(hour=0, minute=0, second=0, microsecond=0)


def send(api: ApiProcess, views: Sent) -> None:
    body: dict[str, dict[str, int]] = {}
    for (page, hour), count in views.items():
        body.setdefault(page, {})[iso(hour)] = count
    response = api.post("/page-views/multi", body)
    assert response.status_code == 202, response.text


def send_and_wait(api: ApiProcess, engine, sent: Sent, views: Sent) -> None:
    send(api, views)
    sent.update(views)
    wait_for(lambda: total_views(engine) == sum(sent.values()), timeout=60, what="every view counted")  # a busy machine


def spread(seed: int, first: datetime, hours: int, step: int = 5) -> Sent:
    """Views of every page at every `step`-th hour from `first`, random counts."""
    rng = random.Random(seed)
    return Counter({(page, first + HOUR * h): rng.randint(1, 20) for page in PAGES for h in range(0, hours, step)})


def in_window(sent: Sent, start: datetime, end: datetime, site: str | None = None) -> Sent:
    """The views sent in [start, end), of one site (None: every page)."""
    return Counter({key: n for key, n in sent.items() if start <= key[1] < end and (site is None or site_of(key[0]) == site)})


def by_page(sent: Sent) -> Counter:
    totals: Counter = Counter()
    for (page, _hour), count in sent.items():
        totals[page] += count
    return totals


def by_site(sent: Sent) -> Counter:
    totals: Counter = Counter()
    for (page, _hour), count in sent.items():
        totals[site_of(page)] += count
    return totals


def by_local_day(sent: Sent, tz: ZoneInfo) -> Counter:
    totals: Counter = Counter()
    for (_page, hour), count in sent.items():
        totals[hour.astimezone(tz).date().isoformat()] += count
    return totals


def ranked(totals: Counter, limit: int) -> list[tuple[str, int]]:
    """Most views first, then by name (code points), as /pages and /sites order them."""
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
