"""The dashboard in a real headless Chromium, against the running API and workers with known data.

What the page shows must equal what the public API answers for the same window and zone.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from common.config import Settings
from tests.browser.conftest import console_errors, save_screenshot
from tests.browser.dashboard_page import DashboardPage, ReportApi, days, iso, last_24_hours, last_days
from tests.helpers import ApiProcess, free_port, total_views, wait_for

BROWSER_ZONE = "America/New_York"
REFRESH = "?refresh=3"  # seconds: a page that refreshes often, so a test never waits a minute
PAGES = ("example.com/", "example.com/pricing", "blog.example.org/post", "/no-site")
# Hours before the current one (0 = the current, incomplete hour) -> views per page, by PAGES index.
PLACED = {0: (4, 1, 2, 1), 1: (10, 3, 0, 2), 5: (7, 0, 9, 0), 20: (1, 6, 0, 0), 30: (12, 0, 3, 5), 72: (0, 8, 8, 0), 240: (30, 0, 0, 4), 600: (5, 5, 5, 5)}

@pytest.fixture
def pipeline(start_api, start_worker, engine) -> ApiProcess:
    """The API and a worker, with PLACED counted: views in 8 hours spread over 25 days."""
    api = start_api()
    start_worker()
    current = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    body: dict = {}
    for hours_ago, counts in PLACED.items():
        for page, views in zip(PAGES, counts, strict=True):
            if views:
                body.setdefault(page, {})[iso(current - timedelta(hours=hours_ago) + timedelta(minutes=1))] = views
    assert api.post("/page-views/multi", body).status_code == 202
    expected = sum(sum(counts) for counts in PLACED.values())
    wait_for(lambda: total_views(engine) == expected, what=f"{expected} views counted")
    return api


@pytest.fixture
def dashboard(pipeline, make_browser) -> DashboardPage:
    driver = make_browser(timezone=BROWSER_ZONE)
    return DashboardPage(driver, pipeline.base_url)


def assert_shows(page: DashboardPage, api: ReportApi, window_of, tz: str, site: str = "*", chart_page: str | None = None) -> None:
    """The page equals the API for the window at the moment (re-read until the hour is the same)."""

    def same() -> bool:
        expected = api.expected(window_of(datetime.now(timezone.utc)), tz, site=site, page=chart_page)
        return page.shown() == expected

    wait_for(same, timeout=30, what=f"the dashboard to show what the API answers ({site=}, {tz=}, {chart_page=})")


def test_opens_on_all_sites_over_24_hours_in_the_browser_zone(dashboard, pipeline):
    page = dashboard.open(REFRESH)
    assert page.element("#tz").get_attribute("value") == BROWSER_ZONE
    assert page.element("#site").get_attribute("value") == "*"
    assert page.element("#range").get_attribute("value") == "24h"
    api = ReportApi(pipeline.base_url)
    assert_shows(page, api, last_24_hours, BROWSER_ZONE)
    shown = page.shown()
    in_24_hours = [counts for hours_ago, counts in PLACED.items() if hours_ago < 24]
    assert len(shown.points) == 24 and shown.totals[0] == sum(map(sum, in_24_hours))
    assert "(so far)" in page.text("#points tbody tr:last-child th")  # the current hour is still counting
    by_page = {page_name: sum(counts[i] for counts in in_24_hours) for i, page_name in enumerate(PAGES)}
    assert [(name, views) for name, views, _u in shown.pages] == sorted(by_page.items(), key=lambda item: (-item[1], item[0]))
    assert page.error() == ""
    assert console_errors(page.driver) == []


def test_switching_range_site_and_zone_updates_everything(dashboard, pipeline):
    page = dashboard.open(REFRESH)
    api = ReportApi(pipeline.base_url)
    page.choose("range", "7d")
    assert_shows(page, api, lambda now: last_days(7, now, BROWSER_ZONE), BROWSER_ZONE)
    assert len(page.shown().points) == 7

    page.choose("site", "example.com")
    assert_shows(page, api, lambda now: last_days(7, now, BROWSER_ZONE), BROWSER_ZONE, site="example.com")
    assert {name for name, _v, _u in page.shown().pages} == {"example.com/", "example.com/pricing"}

    page.choose("tz", "Asia/Tokyo")
    assert_shows(page, api, lambda now: last_days(7, now, "Asia/Tokyo"), "Asia/Tokyo", site="example.com")

    page.choose("range", "30d")
    assert_shows(page, api, lambda now: last_days(30, now, "Asia/Tokyo"), "Asia/Tokyo", site="example.com")
    assert page.shown().totals[0] == sum(counts[0] + counts[1] for counts in PLACED.values())

    page.choose("site", "*")
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    page.choose_custom(today - timedelta(days=1), today)  # two days: hours
    assert_shows(page, api, lambda now: days(today - timedelta(days=1), today, "Asia/Tokyo"), "Asia/Tokyo")
    assert len(page.shown().points) == 48
    assert console_errors(page.driver) == []


def test_a_page_click_shows_that_page_chart(dashboard, pipeline):
    page = dashboard.open(REFRESH)
    api = ReportApi(pipeline.base_url)
    assert_shows(page, api, last_24_hours, BROWSER_ZONE)
    page.after_a_load(lambda: page.element("#top-pages button[title$='example.com/pricing']").click())
    assert page.text("#chart-heading") == "example.com/pricing"
    assert page.element("#top-pages button[title$='example.com/pricing']").get_attribute("aria-pressed") == "true"
    assert_shows(page, api, last_24_hours, BROWSER_ZONE, chart_page="example.com/pricing")
    assert page.shown().totals[0] == 1 + 3 + 6

    page.after_a_load(lambda: page.element("#back").click())
    assert page.text("#chart-heading") == "All sites"
    assert_shows(page, api, last_24_hours, BROWSER_ZONE)
    assert console_errors(page.driver) == []


def test_values_are_readable_on_hover_and_on_keyboard_focus(dashboard, pipeline):
    page = dashboard.open(REFRESH)
    assert_shows(page, ReportApi(pipeline.base_url), last_24_hours, BROWSER_ZONE)
    chart = page.element("#chart")
    rows = page.driver.find_elements("css selector", "#points tbody tr")

    ActionChains(page.driver).move_to_element(chart.find_element("css selector", ".u-over")).perform()
    wait_for(lambda: page.text("#readout"), what="a value under the mouse")

    page.driver.execute_script("document.getElementById('tz').focus()")  # the control before the chart
    ActionChains(page.driver).send_keys(Keys.TAB).perform()
    wait_for(lambda: page.driver.switch_to.active_element == chart, what="the chart to take focus from Tab")
    chart.send_keys(Keys.END, Keys.ARROW_LEFT)
    second_last = rows[-2]
    period = second_last.find_element("css selector", "th").get_attribute("textContent")
    views, visitors = (c.get_attribute("textContent") for c in second_last.find_elements("css selector", "td"))
    wait_for(lambda: page.text("#readout") == f"{period}: {views} views, {visitors} visitors", what="the readout of the focused hour")


def test_refreshes_by_itself_without_reloading(dashboard, pipeline, engine):
    page = dashboard.open(REFRESH)
    api = ReportApi(pipeline.base_url)
    assert_shows(page, api, last_24_hours, BROWSER_ZONE)
    before = page.shown().totals[0]
    page.driver.execute_script("window.stillTheSamePage = true")
    assert pipeline.post("/page-views/single", {"page": "example.com/pricing"}).status_code == 202
    wait_for(lambda: page.shown().totals[0] == before + 1, timeout=20, what="the new view on the page")
    assert page.driver.execute_script("return window.stillTheSamePage") is True
    assert_shows(page, api, last_24_hours, BROWSER_ZONE)


def test_screenshots_at_375_and_1280_pixels(pipeline, make_browser):
    for width in (375, 1280):
        driver = make_browser(width=width, height=800, timezone=BROWSER_ZONE)
        page = DashboardPage(driver, pipeline.base_url).open()
        assert_shows(page, ReportApi(pipeline.base_url), last_24_hours, BROWSER_ZONE)
        assert not page.overflows_horizontally(), f"the page scrolls sideways at {width} px"
        assert save_screenshot(driver, f"dashboard-{width}px").stat().st_size > 10_000
        assert console_errors(driver) == []


def test_a_bad_custom_range_is_explained_in_the_page(start_api, make_browser):
    """Runs without issue 11: the dashboard checks its own input before asking the API anything."""
    page = DashboardPage(make_browser(timezone=BROWSER_ZONE), start_api().base_url).open()
    today = datetime.now(timezone.utc).date()
    page.choose_custom(today, today - timedelta(days=3))
    assert "From must be on or before To." in page.error()
    assert page.element("#error").get_attribute("role") == "alert"
    assert not [e for e in console_errors(page.driver) if e["source"] != "network"]  # today's API may refuse /report


def test_every_control_has_a_label(start_api, make_browser):
    """Runs without issue 11."""
    page = DashboardPage(make_browser(), start_api().base_url).open()
    unlabelled = page.driver.execute_script(
        "return [...document.querySelectorAll('select, input')].filter((c) => !c.labels || !c.labels.length).map((c) => c.id)"
    )
    assert unlabelled == []
    assert page.element("#chart").get_attribute("tabindex") == "0"  # reachable with Tab, read with the arrows


def test_a_zone_the_api_refuses_is_explained_in_the_page(dashboard, pipeline):
    page = dashboard.open()
    # +05:30: hourly rows cannot be split into its hours. Chromium lists it by its older name.
    offered = page.driver.execute_script("return [...document.getElementById('tz').options].map((o) => o.value)")
    zone = next(name for name in ("Asia/Kolkata", "Asia/Calcutta") if name in offered)
    page.choose("tz", zone)
    assert "tz" in page.error() and zone in page.error()
    assert not [e for e in console_errors(page.driver) if not (e["source"] == "network" and "400" in e["message"])]
    page.choose("tz", "Europe/Berlin")
    assert page.error() == ""
    assert_shows(page, ReportApi(pipeline.base_url), last_24_hours, "Europe/Berlin")


def test_report_tokens_prompt_then_data(pipeline, settings, make_browser):
    token = "dashboard-test-token"
    guarded = ApiProcess(Settings.from_mapping({**settings.as_env(), "PORT": str(free_port()), "REPORT_TOKENS": token}))
    try:
        assert guarded.get("/report", params={"site": "*"}).status_code == 401
        page = DashboardPage(make_browser(timezone=BROWSER_ZONE), guarded.base_url).open()
        wait_for(lambda: page.element("#token-form").is_displayed(), what="the token prompt")
        assert page.driver.switch_to.active_element == page.element("#token")

        page.after_a_load(lambda: (page.element("#token").send_keys("wrong"), page.element("#token-form button").click()))
        wait_for(lambda: "not accepted" in page.text("#token-why"), what="the wrong token refused")

        page.after_a_load(lambda: (page.element("#token").send_keys(token), page.element("#token-form button").click()))
        assert not page.element("#token-form").is_displayed()
        assert_shows(page, ReportApi(guarded.base_url, token), last_24_hours, BROWSER_ZONE)
        assert page.driver.execute_script("return sessionStorage.getItem('pageviews.reportToken')") == token
        page.driver.refresh()  # the tab keeps the token: no second prompt
        wait_for(lambda: page.loads() >= 1 and page.text("#total-views") != "–", timeout=30, what="numbers after a reload")
        assert not page.element("#token-form").is_displayed()
        # Only the refused data calls may appear in the console: the page itself logs nothing.
        assert not [e for e in console_errors(page.driver) if not (e["source"] == "network" and "401" in e["message"])]
    finally:
        guarded.close()
