"""The body of a beacon, `{"url": "...", "referrer"?: "..."}`, checked whole before anything is published.

Pure: no I/O. The referrer is validated so that clients learn the contract now; it is not
stored yet.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from api.page_url import BadUrl, page_from_url
from api.validation import Invalid, Problem, pointer

MAX_URL_LENGTH = 4096  # the page keeps at most 2048 characters; the query that is dropped may be long
MAX_REFERRER_LENGTH = 2048
FIELDS = ("url", "referrer")


def validate_beacon(data: Mapping[str, Any]) -> str:
    """The page the beacon counts a view for; raises Invalid listing every problem."""
    problems = [Problem(pointer(key), "unknown field; expected url and optionally referrer") for key in data if key not in FIELDS]
    page, why = _page(data.get("url")) if "url" in data else (None, "url is required")
    if why is not None:
        problems.append(Problem("/url", why))
    if "referrer" in data and (why := _referrer_problem(data["referrer"])) is not None:
        problems.append(Problem("/referrer", why))
    if problems:
        raise Invalid(problems)
    return page  # type: ignore[return-value]


def _page(url: Any) -> tuple[str | None, str | None]:
    if not isinstance(url, str):
        return None, "url must be a string"
    if len(url) > MAX_URL_LENGTH:
        return None, f"url has {len(url)} characters; at most {MAX_URL_LENGTH} are allowed"
    try:
        return page_from_url(url), None
    except BadUrl as exc:
        return None, str(exc)


def _referrer_problem(referrer: Any) -> str | None:
    """document.referrer: empty, or an absolute URL (not always http: android-app://...)."""
    if not isinstance(referrer, str):
        return "referrer must be a string"
    if len(referrer) > MAX_REFERRER_LENGTH:
        return f"referrer has {len(referrer)} characters; at most {MAX_REFERRER_LENGTH} are allowed"
    if not referrer:
        return None
    if any(ch < " " or ch == "\x7f" for ch in referrer):
        return "referrer must not contain control characters"
    try:
        parts = urlsplit(referrer)
    except ValueError:
        return "referrer is not a valid URL"
    if not parts.scheme or not parts.netloc:
        return "referrer must be empty or an absolute URL such as https://example.com/"
    return None
