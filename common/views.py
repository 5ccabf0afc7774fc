"""The vocabulary of a count of page views, named once for the API, the message codec, the buffer and the store.

A view is counted in the UTC hour that contains it; an hour is named by its start in
Unix seconds (an ``int``: cheap to hash, to compare and to put in a message). So:

- ``PageHour``: ``(page, hour)``, what one row of page_views counts;
- ``ViewCounts``: ``{(page, hour): views}``, a request's or a batch's views collapsed;
- ``View``: ``(page, hour, count)``, one entry of a message (README.md, "Message format"),
  or ``(page, hour, count, visitor)`` for a browser view that carries its visitor id;
- ``VisitorIds``: ``{(page, hour): {visitor ids}}``, the visitors beside a batch's counts.

They are plain tuples and dicts, not classes: a worker decodes hundreds of thousands of
entries a second, and a tuple is the cheapest thing Python builds. Something carried
per (page, hour) beside the count (a set of visitor ids, say) goes in a mapping of its
own keyed by ``PageHour``, so the counts keep their shape.

The page rules live here too, so the API's validation and the worker's decoding of a
message from another producer accept exactly the same pages.
"""
from __future__ import annotations

PageHour = tuple[str, int]  # page, start of the UTC hour in Unix seconds
ViewCounts = dict[PageHour, int]  # (page, hour) -> views
View = tuple[str, int, int] | tuple[str, int, int, int]  # page, hour, count[, visitor id]
VisitorIds = dict[PageHour, set[int]]  # (page, hour) -> signed 64-bit visitor ids

MAX_PAGE_LENGTH = 2048  # characters


def page_problem(page: str) -> str | None:
    """Why the string `page` is not an acceptable page, or None. Pages are otherwise stored literally."""
    if 0 < len(page) <= MAX_PAGE_LENGTH and "\x00" not in page and page.isascii():
        return None  # the common case, at the cost of one call: a worker checks every entry of every message
    if not page:
        return "page must not be empty"
    if len(page) > MAX_PAGE_LENGTH:
        return f"page has {len(page)} characters; at most {MAX_PAGE_LENGTH} are allowed"
    if "\x00" in page:
        return "page must not contain the NUL character (\\u0000)"
    if not page.isascii():
        try:
            page.encode("utf-8")
        except UnicodeEncodeError:
            return "page contains an unpaired UTF-16 surrogate, which is not a character"
    return None

