"""Query parameters of GET /report, /pages and /sites: pure validation that lists every problem.

Each parameter arrives as the list of values given (a repeated parameter is a problem).
`now` moves the default window, as it always has for /report; it lets a client (and a
test) ask "as of" a moment without from/to.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from api.reports import zones
from api.reports.zones import Granularity
from api.validation import MAX_TIMESTAMP_LENGTH, Invalid, Problem, page_problem
from common.timeutil import parse_timestamp

MAX_HOUR_BUCKETS = 31 * 24
MAX_DAY_BUCKETS = 366
MAX_TOP_RANGE = timedelta(days=366)
LIMIT_DEFAULT, LIMIT_MAX = 10, 1000
ALL_SITES = "*"
FORMATS = ("json", "csv")

# The first six are the parameters /report always had; its error message lists them first.
REPORT_PARAMETERS = ("page", "now", "order", "take", "from", "to", "site", "tz", "granularity", "format")
PAGES_PARAMETERS = ("site", "from", "to", "now", "limit", "format")
SITES_PARAMETERS = ("from", "to", "now", "limit", "format")


@dataclass(frozen=True)
class ReportQuery:
    page: str | None  # exactly one of page and site
    start: datetime  # UTC start of the first bucket
    hours: int  # length of the window in UTC hours (days of 23 or 25 hours included)
    descending: bool
    take: int | None
    site: str | None = None  # "*" for all pages
    tz: str = "UTC"
    granularity: Granularity = "hour"
    format: str = "json"

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


@dataclass(frozen=True)
class TopQuery:
    """GET /pages (site optional: None and "*" are all pages) and GET /sites (site always None)."""

    start: datetime
    end: datetime
    limit: int
    site: str | None = None
    format: str = "json"


def validate_report_query(args: Mapping[str, list[str]], now: datetime) -> ReportQuery:
    """Query parameters of /report -> the buckets to report."""
    problems, value = _known_once(args, REPORT_PARAMETERS)
    page, site = value.get("page"), value.get("site")
    if page is None and site is None:
        problems.append(Problem("page", "page is required, or else site (a site, or * for all pages)"))
    elif page is not None and site is not None:
        problems.append(Problem("site", "give page or site, not both"))
    elif page is not None and (why := page_problem(page)) is not None:
        problems.append(Problem("page", why))
    elif site is not None and (why := site_problem(site)) is not None:
        problems.append(Problem("site", why))

    order = value.get("order", "asc")
    if order not in ("asc", "desc"):
        problems.append(Problem("order", f"order must be asc or desc, got {order!r}"))
    granularity = value.get("granularity", "hour")
    if granularity not in ("hour", "day"):
        problems.append(Problem("granularity", f"granularity must be hour or day, got {granularity[:40]!r}"))
        granularity = "hour"
    fmt = _format(value, problems)
    tz = _zone(value.get("tz", "UTC"), problems)

    start, end = _report_window(value, now, tz, granularity, problems)  # type: ignore[arg-type]
    if tz is not None and start < end and (why := zones.uneven_offset_problem(tz, start, end)) is not None:
        problems.append(Problem("tz", why))
    count = zones.count_buckets(start, end, tz or zones.zone("UTC"), granularity)  # type: ignore[arg-type]
    take = _number(value.get("take"), "take", 1, count, problems)
    if problems:
        raise Invalid(problems, message=_message(problems))
    hours = int((end - start).total_seconds()) // 3600
    return ReportQuery(page, start, hours, order == "desc", take, site, tz.key, granularity, fmt)  # type: ignore[arg-type, union-attr]


def validate_pages_query(args: Mapping[str, list[str]], now: datetime) -> TopQuery:
    problems, value = _known_once(args, PAGES_PARAMETERS)
    site = value.get("site")
    if site is not None and (why := site_problem(site)) is not None:
        problems.append(Problem("site", why))
    return _top_query(value, now, problems, None if site == ALL_SITES else site)


def validate_sites_query(args: Mapping[str, list[str]], now: datetime) -> TopQuery:
    problems, value = _known_once(args, SITES_PARAMETERS)
    return _top_query(value, now, problems, None)


def site_problem(site: str) -> str | None:
    """Why `site` is not a site to report on, or None. `*` means every page."""
    if site == ALL_SITES:
        return None
    why = page_problem(site)
    if why is not None:
        return why.replace("page", "site", 1) + "; use site=* for all pages"
    if "/" in site:
        return "site must not contain '/': a site is the part of a page before its first '/', e.g. example.com"
    return None


# --------------------------------------------------------------------------- parts


def _known_once(args: Mapping[str, list[str]], known: tuple[str, ...]) -> tuple[list[Problem], dict[str, str]]:
    problems = [Problem(name, f"unknown parameter; expected one of {', '.join(known)}") for name in args if name not in known]
    problems += [Problem(name, "given more than once") for name, values in args.items() if name in known and len(values) > 1]
    return problems, {name: values[0] for name, values in args.items() if values and name in known}


def _message(problems: list[Problem]) -> str:
    return f"{problems[0].at}: {problems[0].problem}" if len(problems) == 1 else f"{len(problems)} problems in the request"


def _format(value: Mapping[str, str], problems: list[Problem]) -> str:
    fmt = value.get("format", "json")
    if fmt not in FORMATS:
        problems.append(Problem("format", f"format must be json or csv, got {fmt[:40]!r}"))
        return "json"
    return fmt


def _zone(name: str, problems: list[Problem]) -> zones.ZoneInfo | None:
    try:
        return zones.zone(name)
    except ValueError as exc:
        problems.append(Problem("tz", str(exc)))
        return None


def _report_window(
    value: Mapping[str, str], now: datetime, tz: zones.ZoneInfo | None, granularity: Granularity, problems: list[Problem]
) -> tuple[datetime, datetime]:
    tz = tz or zones.zone("UTC")  # an unknown zone is already a problem; the window is still checked
    return _window(value, now, tz, granularity, problems, partial(_report_too_long, tz, granularity))


def _report_too_long(tz: zones.ZoneInfo, granularity: Granularity, start: datetime, end: datetime) -> str | None:
    if granularity == "hour" and end - start > timedelta(hours=MAX_HOUR_BUCKETS):
        return "from and to may be at most 31 days apart"
    if granularity == "day" and zones.count_buckets(start, end, tz, "day") > MAX_DAY_BUCKETS:
        return f"from and to may be at most {MAX_DAY_BUCKETS} days apart"
    return None


def _top_too_long(start: datetime, end: datetime) -> str | None:
    return "from and to may be at most 366 days apart" if end - start > MAX_TOP_RANGE else None


def _window(
    value: Mapping[str, str],
    now: datetime,
    tz: zones.ZoneInfo,
    granularity: Granularity,
    problems: list[Problem],
    too_long: Callable[[datetime, datetime], str | None],
) -> tuple[datetime, datetime]:
    """The default window before `now`'s bucket, or from/to checked: aligned, in order, not too long."""
    default = zones.default_window(now, tz, granularity)
    if "from" not in value and "to" not in value:
        if "now" not in value:
            return default
        moment = _time(value["now"], "now", problems)
        if moment is None:
            return default
        try:
            return zones.default_window(moment, tz, granularity)
        except (OverflowError, ValueError):
            span = "24 hours" if granularity == "hour" else "30 days"
            problems.append(Problem("now", f"now is too early: the {span} before it would be before year 1"))
            return default
    if "now" in value:
        problems.append(Problem("now", "now cannot be combined with from and to"))
    if "from" not in value or "to" not in value:
        problems.append(Problem("from" if "from" not in value else "to", "from and to must be given together"))
        return default
    start = _aligned(value["from"], "from", tz, granularity, problems)
    end = _aligned(value["to"], "to", tz, granularity, problems)
    if start is None or end is None:
        return default
    if end <= start:
        problems.append(Problem("to", "to must be later than from"))
        return default
    if (why := too_long(start, end)) is not None:
        problems.append(Problem("to", why))
        return default
    return start, end


def _aligned(text: str, name: str, tz: zones.ZoneInfo, granularity: Granularity, problems: list[Problem]) -> datetime | None:
    moment = _time(text, name, problems)
    if moment is None:
        return None
    try:
        aligned = zones.is_aligned(moment, tz, granularity)
    except (OverflowError, ValueError):
        aligned = False
    if aligned:
        return moment
    if granularity == "hour":
        where = "UTC" if zones.is_utc(tz) else f"in {tz.key}"
        problems.append(Problem(name, f"{name} must be the start of an hour ({where}), got {text[:80]!r}"))
    else:
        problems.append(Problem(name, f"{name} must be the start of a day in {tz.key} (its midnight), got {text[:80]!r}"))
    return None


def _time(text: str, name: str, problems: list[Problem]) -> datetime | None:
    try:
        if len(text) > MAX_TIMESTAMP_LENGTH:
            raise ValueError("too long")
        return parse_timestamp(text)
    except ValueError:
        problems.append(Problem(name, f"{name} must be an ISO 8601 timestamp such as 2025-07-16T10:00:00Z, got {text[:80]!r}"))
        return None


def _number(raw: str | None, name: str, low: int, high: int, problems: list[Problem]) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        problems.append(Problem(name, f"{name} must be a whole number from {low} to {high}, got {raw[:20]!r}"))
        return None
    return int(raw)


def _top_query(value: Mapping[str, str], now: datetime, problems: list[Problem], site: str | None) -> TopQuery:
    fmt = _format(value, problems)
    limit = _number(value.get("limit"), "limit", 1, LIMIT_MAX, problems)
    start, end = _window(value, now, zones.zone("UTC"), "hour", problems, _top_too_long)
    if problems:
        raise Invalid(problems, message=_message(problems))
    return TopQuery(start, end, LIMIT_DEFAULT if limit is None else limit, site, fmt)
