"""Parameters of /report (site, tz, granularity, format), /pages and /sites: meaning and every problem."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from api.reports.params import TopQuery, validate_pages_query, validate_report_query, validate_sites_query
from api.validation import Invalid

UTC = timezone.utc
NOW = datetime(2025, 7, 16, 10, 20, tzinfo=UTC)


def query(**params: str | list[str]) -> dict[str, list[str]]:
    return {name: value if isinstance(value, list) else [value] for name, value in params.items()}


def problems(validate, **params) -> dict[str, str]:
    with pytest.raises(Invalid) as caught:
        validate(query(**params), NOW)
    return {p.at: p.problem for p in caught.value.problems}


def test_site_instead_of_page():
    result = validate_report_query(query(site="example.com"), NOW)
    assert (result.site, result.page) == ("example.com", None)
    assert validate_report_query(query(site="*"), NOW).site == "*"


def test_days_in_berlin_default_to_the_30_days_before_today_there():
    result = validate_report_query(query(page="a", tz="Europe/Berlin", granularity="day"), NOW)
    assert result.start == datetime(2025, 6, 15, 22, tzinfo=UTC)
    assert result.end == datetime(2025, 7, 15, 22, tzinfo=UTC)
    assert (result.tz, result.granularity) == ("Europe/Berlin", "day")


def test_days_across_the_autumn_change_count_the_long_day():
    params = {"from": "2025-10-20T00:00:00+02:00", "to": "2025-11-03T00:00:00+01:00"}
    result = validate_report_query(query(page="a", tz="Europe/Berlin", granularity="day", take="14", **params), NOW)
    assert result.hours == 14 * 24 + 1 and result.take == 14


def test_366_days_of_days_are_accepted_and_take_goes_up_to_them():
    params = {"from": "2024-07-16T00:00:00Z", "to": "2025-07-17T00:00:00Z"}
    result = validate_report_query(query(page="a", granularity="day", take="366", **params), NOW)
    assert result.hours == 366 * 24


def test_csv_format():
    assert validate_report_query(query(page="a", format="csv"), NOW).format == "csv"


@pytest.mark.parametrize(
    ("params", "at", "why"),
    [
        ({"page": "a", "site": "b"}, "site", "not both"),
        ({"site": ""}, "site", "site must not be empty"),
        ({"site": "example.com/a"}, "site", "must not contain '/'"),
        ({"site": "a\x00"}, "site", "NUL"),
        ({"page": "a", "tz": "Mars/Olympus"}, "tz", "not an IANA time zone"),
        ({"page": "a", "tz": "Asia/Kolkata"}, "tz", "+05:30"),
        ({"page": "a", "tz": "Asia/Kolkata", "granularity": "day"}, "tz", "whole number of hours"),
        ({"page": "a", "granularity": "week"}, "granularity", "hour or day"),
        ({"page": "a", "format": "xml"}, "format", "json or csv"),
        ({"page": "a", "granularity": "day", "from": "2025-07-01T00:00:00Z", "to": "2025-07-02T01:00:00Z"}, "to", "start of a day in UTC"),
        ({"page": "a", "tz": "Europe/Berlin", "granularity": "day", "from": "2025-07-01T00:00:00Z", "to": "2025-07-02T22:00:00Z"}, "from", "midnight"),
        ({"page": "a", "granularity": "day", "from": "2024-07-01T00:00:00Z", "to": "2025-07-03T00:00:00Z"}, "to", "at most 366 days"),
        ({"page": "a", "granularity": "day", "take": "31"}, "take", "from 1 to 30"),
        ({"page": "a", "tz": "Europe/Berlin", "from": "2025-07-01T00:30:00Z", "to": "2025-07-02T00:00:00Z"}, "from", "start of an hour (in Europe/Berlin)"),
    ],
    ids=[
        "page-and-site", "empty-site", "site-with-slash", "nul-site", "unknown-tz", "half-hour-tz", "half-hour-tz-days", "bad-granularity",
        "bad-format", "day-unaligned-utc", "day-unaligned-berlin", "over-366-days", "take-over-days", "hour-unaligned-berlin",
    ],
)
def test_report_rejects(params, at, why):
    found = problems(validate_report_query, **params)
    assert at in found and why in found[at], found


def test_report_lists_every_new_problem_at_once():
    found = problems(validate_report_query, page="a", site="b", tz="Nowhere/City", granularity="weeks", format="pdf")
    assert set(found) == {"site", "tz", "granularity", "format"}


def test_pages_defaults_to_the_last_24_complete_hours_and_ten_pages():
    assert validate_pages_query(query(), NOW) == TopQuery(datetime(2025, 7, 15, 10, tzinfo=UTC), datetime(2025, 7, 16, 10, tzinfo=UTC), 10)


def test_pages_of_one_site_and_all_sites():
    assert validate_pages_query(query(site="example.com", limit="1000", format="csv"), NOW).site == "example.com"
    assert validate_pages_query(query(site="*"), NOW).site is None


def test_pages_accepts_366_days():
    result = validate_pages_query(query(**{"from": "2024-07-16T00:00:00Z", "to": "2025-07-17T00:00:00Z"}), NOW)
    assert result.end - result.start == timedelta(days=366)


def test_sites_with_now():
    result = validate_sites_query(query(now="2025-07-01T05:59:59+02:00", limit="3"), NOW)
    assert (result.start, result.end, result.limit) == (datetime(2025, 6, 30, 3, tzinfo=UTC), datetime(2025, 7, 1, 3, tzinfo=UTC), 3)


@pytest.mark.parametrize("validate", [validate_pages_query, validate_sites_query], ids=["pages", "sites"])
@pytest.mark.parametrize(
    ("params", "at", "why"),
    [
        ({"limit": "0"}, "limit", "from 1 to 1000"),
        ({"limit": "1001"}, "limit", "from 1 to 1000"),
        ({"limit": "ten"}, "limit", "got 'ten'"),
        ({"format": "xls"}, "format", "json or csv"),
        ({"from": "2025-07-01T00:30:00Z", "to": "2025-07-02T00:00:00Z"}, "from", "start of an hour"),
        ({"from": "2025-07-01T00:00:00Z"}, "to", "together"),
        ({"from": "2024-07-01T00:00:00Z", "to": "2025-07-03T00:00:00Z"}, "to", "at most 366 days"),
        ({"from": "2025-07-02T00:00:00Z", "to": "2025-07-01T00:00:00Z"}, "to", "later than from"),
        ({"now": "yesterday"}, "now", "ISO 8601"),
        ({"page": "a"}, "page", "unknown parameter"),
        ({"limit": ["1", "2"]}, "limit", "more than once"),
    ],
    ids=["limit-0", "limit-1001", "limit-text", "bad-format", "unaligned", "from-alone", "over-366-days", "backwards", "bad-now", "page", "repeated"],
)
def test_top_lists_reject(validate, params, at, why):
    found = problems(validate, **params)
    assert at in found and why in found[at], found


def test_sites_has_no_site_parameter_and_pages_checks_it():
    assert "unknown parameter" in problems(validate_sites_query, site="a")["site"]
    assert "must not contain '/'" in problems(validate_pages_query, site="a/b")["site"]


def test_top_lists_list_every_problem():
    assert set(problems(validate_pages_query, limit="0", format="x", site="", extra="1")) == {"limit", "format", "site", "extra"}
