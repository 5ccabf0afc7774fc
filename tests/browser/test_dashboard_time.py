"""The dashboard's windows (time.js, run in Chromium) equal Python's zoneinfo, daylight saving included.

The report API refuses a window that is not aligned to the buckets of its zone, so the
page must find the same midnights as the server does, also on 23- and 25-hour days.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from tests.browser.dashboard_page import DashboardPage, days, last_24_hours, last_days

# Moments next to daylight-saving changes in 2026: Europe 29 March / 25 October,
# United States 8 March / 1 November, Lord Howe half-hour shifts 5 April / 4 October.
MOMENTS = [
    datetime(2026, 3, 29, 0, 30, tzinfo=timezone.utc),
    datetime(2026, 3, 30, 12, 0, tzinfo=timezone.utc),
    datetime(2026, 10, 25, 23, 59, tzinfo=timezone.utc),
    datetime(2026, 11, 2, 4, 30, tzinfo=timezone.utc),
    datetime(2026, 3, 9, 5, 0, tzinfo=timezone.utc),
    datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc),
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Tokyo", "Pacific/Kiritimati"]

WINDOW_FOR = """
const [range, tz, now, custom, done] = arguments;
import(document.querySelector("script[type=module]").src.replace("dashboard.js", "time.js"))
  .then((time) => { const w = time.windowFor(range, tz, now, custom); done([w.from, w.to, w.granularity]); })
  .catch((error) => done(String(error)));
"""


def window_in_browser(driver, range_: str, tz: str, now: datetime, custom: dict | None = None):
    result = driver.execute_async_script(WINDOW_FOR, range_, tz, now.timestamp() * 1000, custom or {})
    assert isinstance(result, list), result
    start, end, granularity = result
    return datetime.fromtimestamp(start / 1000, timezone.utc), datetime.fromtimestamp(end / 1000, timezone.utc), granularity


@pytest.fixture
def browser(start_api, make_browser):
    api = start_api()
    driver = make_browser()
    DashboardPage(driver, api.base_url).open()
    return driver


def test_windows_match_zoneinfo_around_daylight_saving(browser):
    for tz in ZONES:
        for now in MOMENTS:
            expected = [("24h", last_24_hours(now)), ("7d", last_days(7, now, tz)), ("30d", last_days(30, now, tz))]
            for range_, window in expected:
                got = window_in_browser(browser, range_, tz, now)
                assert got == (window.start, window.end, window.granularity), (tz, now, range_)


def test_custom_ranges_are_whole_days_and_hourly_up_to_two_days(browser):
    cases = [(date(2026, 10, 24), date(2026, 10, 25)), (date(2026, 3, 29), date(2026, 3, 29)), (date(2026, 3, 1), date(2026, 3, 31)), (date(2026, 1, 1), date(2026, 1, 3))]
    for tz in ZONES:
        for first, last in cases:
            window = days(first, last, tz)
            got = window_in_browser(browser, "custom", tz, datetime.now(timezone.utc), {"from": first.isoformat(), "to": last.isoformat()})
            assert got == (window.start, window.end, window.granularity), (tz, first, last)
    berlin = window_in_browser(browser, "custom", "Europe/Berlin", datetime.now(timezone.utc), {"from": "2026-10-24", "to": "2026-10-25"})
    assert berlin[1] - berlin[0] == timedelta(hours=49) and berlin[2] == "hour"  # a 25-hour day is still one day


def test_a_custom_range_backwards_is_refused_with_a_reason(browser):
    result = browser.execute_async_script(WINDOW_FOR, "custom", "UTC", 0, {"from": "2026-02-02", "to": "2026-02-01"})
    assert result == "Error: From must be on or before To."
