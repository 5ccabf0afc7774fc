"""The dashboard as a test reads it (what a person sees), and the API answers it must equal."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.helpers import wait_for

HOUR = timedelta(hours=1)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def count(text: str) -> int | None:
    """"1,234" -> 1234; "–" (nothing reported) -> None."""
    digits = re.sub(r"\D", "", text)
    return int(digits) if digits else None


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    granularity: str

    @property
    def params(self) -> dict[str, str]:
        return {"from": iso(self.start), "to": iso(self.end)}


def last_24_hours(now: datetime) -> Window:
    hour = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return Window(hour - 23 * HOUR, hour + HOUR, "hour")


def days(first: date, last: date, tz: str) -> Window:
    """Whole days of `tz`, `last` included; hours for up to two days, as the dashboard asks."""
    zone = ZoneInfo(tz)
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    return Window(start, end, "hour" if (last - first).days + 1 <= 2 else "day")


def last_days(n: int, now: datetime, tz: str) -> Window:
    today = now.astimezone(ZoneInfo(tz)).date()
    return days(today - timedelta(days=n - 1), today, tz)


@dataclass
class Shown:
    totals: tuple[int | None, int | None]
    points: list[tuple[str, int | None, int | None]]
    pages: list[tuple[str, int | None, int | None]]


class ReportApi:
    """The public report endpoints, asked exactly what the dashboard asks."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: str) -> dict:
        response = requests.get(self.base_url + path, params=params, headers=self.headers, timeout=10)
        assert response.status_code == 200, f"{path} {params}: {response.status_code} {response.text}"
        return response.json()

    def expected(self, window: Window, tz: str, site: str = "*", page: str | None = None) -> Shown:
        subject = {"page": page} if page is not None else {"site": site}
        report = self.get("/report", **subject, tz=tz, granularity=window.granularity, **window.params)
        pages = self.get("/pages", **({} if site == "*" else {"site": site}), **window.params)
        return Shown(
            totals=(report["totals"]["views"], report["totals"]["visitors"]),
            points=[(item["t"], item["v"], item.get("u")) for item in report["data"]],
            pages=[(row["page"], row["v"], row.get("u")) for row in pages["data"]],
        )


# textContent, not the visible text: the data table is inside a <details> that may be closed.
READ_SHOWN = """
const text = (element) => element.textContent.trim();
const cells = (row) => [...row.querySelectorAll("td")].map(text);
return {
  totals: [text(document.getElementById("total-views")), text(document.getElementById("total-visitors"))],
  points: [...document.querySelectorAll("#points tbody tr")].map((row) => [row.dataset.t, ...cells(row)]),
  pages: [...document.querySelectorAll("#top-pages tbody tr")].map((row) => [text(row.querySelector("th")), ...cells(row)]),
};
"""


class DashboardPage:
    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, query: str = "") -> "DashboardPage":
        self.driver.get(f"{self.base_url}/{query}")
        wait_for(lambda: self.loads() >= 1, timeout=30, what="the dashboard's first load")
        return self

    def loads(self) -> int:
        return int(self.driver.execute_script("return document.body.dataset.loads || '0'"))

    def after_a_load(self, action: Callable[[], object]) -> None:
        """Do something that makes the page load again, and wait until that load has finished."""
        before = self.loads()
        action()
        wait_for(lambda: self.loads() > before, timeout=30, what="the dashboard to load again")

    def element(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def text(self, selector: str) -> str:
        # textContent: also the rows of the data table while its <details> is closed.
        return self.element(selector).get_attribute("textContent").strip()

    def choose(self, control_id: str, value: str) -> None:
        self.after_a_load(lambda: Select(self.element(f"#{control_id}")).select_by_value(value))

    def choose_custom(self, first: date, last: date) -> None:
        Select(self.element("#range")).select_by_value("custom")
        for control_id, day in (("from", first), ("to", last)):
            # Typing into a date input depends on the locale; set its value as a script would.
            self.driver.execute_script("arguments[0].value = arguments[1]", self.element(f"#{control_id}"), day.isoformat())
        self.after_a_load(lambda: self.element("#apply").click())

    def shown(self) -> Shown:
        """Totals, chart points (its data table) and top pages, read in one script: one consistent moment."""
        seen = self.driver.execute_script(READ_SHOWN)
        numbers = lambda row: tuple(count(cell) for cell in row)  # noqa: E731
        return Shown(
            totals=numbers(seen["totals"]),  # type: ignore[arg-type]
            points=[(t, *numbers(cells)) for t, *cells in seen["points"]],
            pages=[(name, *numbers(cells)) for name, *cells in seen["pages"]],
        )

    def error(self) -> str:
        box = self.element("#error")
        return box.get_attribute("textContent").strip() if box.is_displayed() else ""

    def overflows_horizontally(self) -> bool:
        return self.driver.execute_script("return document.documentElement.scrollWidth > document.documentElement.clientWidth")
