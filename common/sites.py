"""The site of a page: what site reports and the per-site rollup group pages by.

site_of(page) is the text before the first `/` when the page has a `/` and does not start
with one (`example.com/pricing` -> `example.com`); any other page belongs to no site,
stored as the site `''` so that all-pages totals still count it. The SQL function
`page_site(text)` (migration 0004) is the same rule inside PostgreSQL; a test keeps them equal.
"""
from __future__ import annotations

NO_SITE = ""


def site_of(page: str) -> str:
    slash = page.find("/")
    return page[:slash] if slash > 0 else NO_SITE
