"""A real headless Chromium through Selenium, for every test that needs a browser.

Debian's chromium and chromium-driver (scripts/install-system-packages.sh) at fixed paths:
with the driver's path given, Selenium never runs selenium-manager, so nothing is downloaded.
`make_browser(user_agent=..., width=..., height=..., timezone=...)` opens a browser; each
records its console (`goog:loggingPrefs`) so a test can assert there were no errors, and
`save_screenshot(driver, name)` keeps a PNG in tests/artifacts/ for whoever reviews the run.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from tests.helpers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "tests" / "artifacts"
# A desktop browser as sites see it: not "HeadlessChrome", which bot filters drop.
DESKTOP_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--lang=en-US",
)

BrowserFactory = Callable[..., WebDriver]


@pytest.fixture(scope="session")
def browser_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserFactory]:
    """Opens Chromiums for the whole session; each is closed at the end unless its test closed it."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"{CHROMIUM} and {CHROMEDRIVER} are needed (scripts/install-system-packages.sh)")
    opened: list[WebDriver] = []

    def open_browser(user_agent: str = DESKTOP_USER_AGENT, width: int = 1280, height: int = 900, timezone: str | None = None) -> WebDriver:
        options = Options()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
        options.add_argument(f"--user-agent={user_agent}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        opened.append(driver)
        # A window is at least 500 px wide; a phone's viewport is set by emulation instead.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", _viewport(width, height))
        if timezone is not None:
            driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": timezone})
        return driver

    yield open_browser
    for driver in opened:
        process = driver.service.process
        if process is not None and process.poll() is None:  # not quit by its test already
            driver.quit()


@pytest.fixture
def make_browser(browser_factory: BrowserFactory) -> Iterator[BrowserFactory]:
    """Like browser_factory, but the browsers a test opens are closed when that test ends."""
    opened: list[WebDriver] = []

    def open_browser(**options: object) -> WebDriver:
        driver = browser_factory(**options)
        opened.append(driver)
        return driver

    yield open_browser
    for driver in opened:
        driver.quit()


def _viewport(width: int, height: int) -> dict:
    return {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}


def console_entries(driver: WebDriver) -> list[dict]:
    """The browser console since the last call (Chromium hands each entry out once)."""
    return driver.get_log("browser")


def console_errors(driver: WebDriver, allow: Callable[[dict], bool] = lambda entry: False) -> list[dict]:
    """SEVERE console entries (script errors, console.error, failed loads) not matched by `allow`."""
    return [entry for entry in console_entries(driver) if entry["level"] == "SEVERE" and not allow(entry)]


def save_screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page (not just the window) as tests/artifacts/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    width, height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    page_height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", _viewport(width, max(height, page_height)))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", _viewport(width, height))
    return path
