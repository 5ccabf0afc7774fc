"""Is a beacon from a bot? Decided by its User-Agent with a maintained list, not one of ours.

The list is crawlerdetect's (a Python port of JayBizzle/Crawler-Detect, the list Laravel
and many analytics tools use; over 1,400 patterns, updated with upstream releases). Its
generic pattern matches "headless", so HeadlessChrome, Puppeteer and Playwright defaults
are bots, and so are curl, python-requests and the like. A missing or blank User-Agent is
a bot too: every browser sends one.

Only the beacon endpoint filters bots: server-to-server clients of single and multi
legitimately send curl or python-requests as their agent.
"""
from __future__ import annotations

import functools

from crawlerdetect import CrawlerDetect


@functools.cache
def _detector() -> CrawlerDetect:
    # One per process: it compiles a large regex on first use (~30 ms) and caches
    # the last 1024 verdicts, so a busy site's few agents are a dict lookup.
    return CrawlerDetect()


def load() -> None:
    """Compile the list now (create_app), not in the first visitor's request."""
    _detector().is_crawler("Mozilla/5.0")


def is_bot(user_agent: str | None) -> bool:
    if user_agent is None or not user_agent.strip():
        return True
    return _detector().is_crawler(user_agent)
