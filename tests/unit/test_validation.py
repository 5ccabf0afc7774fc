"""Request validation: pure functions that see the whole request and list every problem."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from api.reports.params import ReportQuery, validate_report_query
from api.validation import (
    Invalid,
    Problem,
    TimestampRules,
    idempotency_key_problem,
    parse_json_object,
    pointer,
    validate_multi,
    validate_single,
)

UTC = timezone.utc
NOW = datetime(2025, 7, 16, 10, 20, tzinfo=UTC)
NOW_HOUR = 1752660000  # 2025-07-16T10:00:00Z
TS = "2025-07-16T09:15:00Z"
TS_HOUR = NOW_HOUR - 3600
RETENTION_DAYS = 30
OLDEST_HOUR = "2025-06-16T10:00:00Z"  # floor_hour(NOW) - 30 days: the first hour still accepted


def rules() -> TimestampRules:
    return TimestampRules(now=NOW, retention_days=RETENTION_DAYS)


def problems_of(call, *args) -> list[Problem]:
    with pytest.raises(Invalid) as caught:
        call(*args)
    assert caught.value.problems, "Invalid must carry at least one problem"
    assert caught.value.message
    return caught.value.problems


def only_problem(call, *args) -> Problem:
    problems = problems_of(call, *args)
    assert len(problems) == 1, problems
    return problems[0]


# --------------------------------------------------------------------------- JSON bodies


def test_pointer_escapes_slash_and_tilde():
    assert pointer("example.com/a", "2025-07-16T10:00:00Z") == "/example.com~1a/2025-07-16T10:00:00Z"
    assert pointer("a~b/c") == "/a~0b~1c"
    assert pointer("") == "/"


def test_parse_json_object_accepts_an_object():
    assert parse_json_object('{"page": "例え", "n": [1, {"x": null}]}'.encode()) == {"page": "例え", "n": [1, {"x": None}]}


def test_parse_json_object_accepts_surrounding_whitespace():
    assert parse_json_object(b' \n {"a": 1} \n') == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "body is empty"),
        (b"  \n\t ", "body is empty"),
        (b"\xff\xfe{}", "not valid UTF-8 (byte 0)"),
        (b'{"page": "caf\xe9"}', "not valid UTF-8 (byte 13)"),
        (b"{", "not valid JSON"),
        (b"page=x", "not valid JSON"),
        (b"{'page': 'x'}", "not valid JSON"),
        (b'{"a": 1,}', "not valid JSON"),
        (b'{"a": 1} {"b": 2}', "not valid JSON"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": Infinity}', "Infinity is not valid JSON"),
        (b'{"a": -Infinity}', "-Infinity is not valid JSON"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"[]", "must be a JSON object, not an array"),
        (b'[{"page": "x"}]', "must be a JSON object, not an array"),
        (b'"page"', "must be a JSON object, not a string"),
        (b"42", "must be a JSON object, not a number"),
        (b"null", "must be a JSON object, not null"),
        (b"true", "must be a JSON object, not a boolean"),
    ],
    ids=[
        "empty", "whitespace", "not-utf8", "latin1-in-string", "truncated", "form-encoded", "single-quotes", "trailing-comma",
        "two-documents", "nan", "infinity", "minus-infinity", "huge-integer", "array", "array-of-objects", "string", "number", "null",
        "boolean",
    ],
)
def test_parse_json_object_rejects(raw, why):
    problem = only_problem(parse_json_object, raw)
    assert problem.at == ""
    assert why in problem.problem


@pytest.mark.parametrize(
    "raw", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000], ids=["arrays", "objects", "balanced-arrays"]
)
def test_deeply_nested_json_is_invalid_not_a_recursion_error(raw):
    problem = only_problem(parse_json_object, raw)
    assert "nested too deeply" in problem.problem or "not valid JSON" in problem.problem


def test_duplicate_key_is_rejected_with_its_pointer():
    problem = only_problem(parse_json_object, b'{"page": "a", "page": "b"}')
    assert problem == Problem("/page", "key appears more than once in the same object")


def test_duplicate_nested_key_points_at_where_it_is():
    raw = b'{"example.com/a": {"2025-07-16T09:00:00Z": 1, "2025-07-16T09:00:00Z": 2}}'
    problem = only_problem(parse_json_object, raw)
    assert "more than once" in problem.problem
    assert problem.at == "/example.com~1a/2025-07-16T09:00:00Z"


def test_lone_surrogate_escape_parses_but_is_not_an_acceptable_page():
    data = parse_json_object(b'{"page": "\\ud800"}')
    problem = only_problem(validate_single, data, rules())
    assert problem == Problem("/page", "page contains an unpaired UTF-16 surrogate, which is not a character")


# --------------------------------------------------------------------------- single


@pytest.mark.parametrize(
    "page",
    [
        "example.com/a",
        "x" * 2048,
        "例え.jp/ページ",
        "emoji/🙂",
        'say "hi" \\ there',
        "x'; DROP TABLE page_views; --",
        "a\tb\nc",
        " leading and trailing ",
        "/",
        "~0~1",
    ],
    ids=["plain", "exactly-2048", "japanese", "emoji", "quotes-backslash", "sql-looking", "control-chars", "spaces", "slash", "tildes"],
)
def test_single_accepts_pages_literally(page):
    assert validate_single({"page": page, "timestamp": TS}, rules()) == {(page, TS_HOUR): 1}


def test_single_without_timestamp_counts_in_the_hour_of_now():
    assert validate_single({"page": "a"}, rules()) == {("a", NOW_HOUR): 1}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"page": "x" * 2049}, Problem("/page", "page has 2049 characters; at most 2048 are allowed")),
        ({"page": ""}, Problem("/page", "page must not be empty")),
        ({"page": "a\x00b"}, Problem("/page", "page must not contain the NUL character (\\u0000)")),
        ({"page": "\ud800"}, Problem("/page", "page contains an unpaired UTF-16 surrogate, which is not a character")),
        ({"page": "ok\udfff"}, Problem("/page", "page contains an unpaired UTF-16 surrogate, which is not a character")),
        ({"page": 7}, Problem("/page", "page must be a string, not a number")),
        ({"page": None}, Problem("/page", "page must be a string, not null")),
        ({"page": ["a"]}, Problem("/page", "page must be a string, not an array")),
        ({"page": {"a": 1}}, Problem("/page", "page must be a string, not an object")),
        ({"page": True}, Problem("/page", "page must be a string, not a boolean")),
        ({}, Problem("/page", "page is required")),
        ({"timestamp": TS}, Problem("/page", "page is required")),
        ({"page": "a", "count": 3}, Problem("/count", "unknown field; expected page and optionally timestamp")),
        ({"page": "a", "a/b": 3}, Problem("/a~1b", "unknown field; expected page and optionally timestamp")),
    ],
    ids=[
        "page-2049", "page-empty", "page-nul", "page-lone-high-surrogate", "page-lone-low-surrogate", "page-number", "page-null",
        "page-list", "page-object", "page-bool", "no-page", "only-timestamp", "unknown-field", "unknown-field-escaped",
    ],
)
def test_single_rejects(data, expected):
    assert only_problem(validate_single, data, rules()) == expected


@pytest.mark.parametrize(
    ("timestamp", "hour"),
    [
        ("2025-07-16T09:15:00Z", TS_HOUR),
        ("2025-07-16T11:15:00+02:00", TS_HOUR),
        ("2025-07-16T03:45:00-05:30", TS_HOUR),
        ("2025-07-16T09:15:00", TS_HOUR),
        ("2025-07-16T09:15:00.999999Z", TS_HOUR),
        ("2025-07-16T11:20:00Z", NOW_HOUR + 3600),  # exactly one hour after now
        ("2025-07-16T13:20:00+02:00", NOW_HOUR + 3600),  # the same instant with an offset
        (OLDEST_HOUR, NOW_HOUR - 30 * 24 * 3600),
        ("2025-06-16T12:00:00+02:00", NOW_HOUR - 30 * 24 * 3600),
    ],
    ids=[
        "z", "plus-offset", "minus-half-hour-offset", "naive", "fraction", "one-hour-ahead", "one-hour-ahead-offset", "oldest-hour",
        "oldest-hour-offset",
    ],
)
def test_single_timestamp_accepted(timestamp, hour):
    assert validate_single({"page": "a", "timestamp": timestamp}, rules()) == {("a", hour): 1}


@pytest.mark.parametrize(
    ("timestamp", "why"),
    [
        ("2025-07-16T11:20:01Z", "more than one hour in the future"),
        ("2025-07-16T11:20:00.000001Z", "more than one hour in the future"),
        ("2025-07-16T13:20:01+02:00", "more than one hour in the future"),
        ("2030-01-01T00:00:00Z", "more than one hour in the future"),
        ("2025-06-16T09:59:59Z", "older than the retention window of 30 days"),
        ("2025-06-16T11:59:59+02:00", "older than the retention window of 30 days"),
        ("1970-01-01T00:00:00Z", "older than the retention window"),
        ("0001-01-01T00:00:00Z", "older than the retention window"),
        ("9999-12-31T23:00:00-05:00", "outside the supported range of years"),
        ("yesterday", "is not an ISO 8601 timestamp"),
        ("", "is not an ISO 8601 timestamp"),
        ("2025-07-16T25:00:00Z", "is not an ISO 8601 timestamp"),
        ("2025-07-16T10:00:00Z" + " " * 60, "longer than 64 characters"),
        (1752660000, "must be an ISO 8601 string, not a number"),
        (None, "must be an ISO 8601 string, not null"),
        (["2025-07-16T10:00:00Z"], "must be an ISO 8601 string, not an array"),
    ],
    ids=[
        "one-hour-one-second-ahead", "one-hour-one-microsecond-ahead", "ahead-with-offset", "far-future", "hour-before-oldest",
        "hour-before-oldest-offset", "epoch", "year-1", "overflow-9999", "word", "empty", "hour-25", "too-long", "number", "null", "list",
    ],
)
def test_single_timestamp_rejected(timestamp, why):
    problem = only_problem(validate_single, {"page": "a", "timestamp": timestamp}, rules())
    assert problem.at == "/timestamp"
    assert why in problem.problem


def test_single_lists_every_problem():
    problems = problems_of(validate_single, {"page": "", "timestamp": "soon", "extra": 1}, rules())
    assert {p.at for p in problems} == {"/page", "/timestamp", "/extra"}


# --------------------------------------------------------------------------- multi


def test_multi_counts_per_page_and_hour():
    data = {"example.com/a": {TS: 5, "2025-07-16T08:00:00Z": 2}, "example.com/b": {TS: 1}}
    expected = {("example.com/a", TS_HOUR): 5, ("example.com/a", TS_HOUR - 3600): 2, ("example.com/b", TS_HOUR): 1}
    assert validate_multi(data, rules()) == expected


def test_multi_adds_timestamps_of_the_same_hour():
    data = {"a": {"2025-07-16T09:00:00Z": 1, "2025-07-16T09:59:59Z": 2, "2025-07-16T11:30:00+02:00": 4}}
    assert validate_multi(data, rules()) == {("a", TS_HOUR): 7}


@pytest.mark.parametrize("count", [1, 1_000_000], ids=["one", "one-million"])
def test_multi_count_limits_accepted(count):
    assert validate_multi({"a": {TS: count}}, rules()) == {("a", TS_HOUR): count}


@pytest.mark.parametrize(
    ("count", "why"),
    [
        (0, "got 0"),
        (-1, "got -1"),
        (1_000_001, "got 1000001"),
        (True, "not a boolean"),
        (False, "not a boolean"),
        (5.0, "not a number"),
        ("5", "not a string"),
        (None, "not null"),
        ([5], "not an array"),
        ({"n": 5}, "not an object"),
    ],
    ids=["zero", "negative", "over-million", "true", "false", "float", "string", "null", "list", "object"],
)
def test_multi_count_rejected(count, why):
    problem = only_problem(validate_multi, {"example.com/a": {TS: count}}, rules())
    assert problem.at == "/example.com~1a/2025-07-16T09:15:00Z"
    assert problem.problem.startswith("count must be an integer from 1 to 1000000")
    assert why in problem.problem


def test_multi_with_exactly_the_maximum_entries_is_accepted():
    data = {f"p{i}": {TS: 1} for i in range(10_000)}
    assert sum(validate_multi(data, rules()).values()) == 10_000


@pytest.mark.parametrize(
    "data",
    [
        {f"p{i}": {TS: 1} for i in range(10_001)},
        {"a": {f"2025-07-16T09:{m:02d}:{s:02d}Z": 1 for m in range(60) for s in range(60)}, **{f"p{i}": {TS: 1} for i in range(6_401)}},
    ],
    ids=["many-pages", "one-page-many-timestamps"],
)
def test_multi_over_the_maximum_entries_is_rejected(data):
    problem = only_problem(validate_multi, data, rules())
    assert problem == Problem("", "request has 10001 entries; at most 10000 are allowed per request")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, Problem("", 'no page views in the request; expected {"<page>": {"<timestamp>": <count>}}')),
        ({"example.com/a": [TS, 1]}, Problem("/example.com~1a", "must be an object of timestamp to count, not an array")),
        ({"a": 5}, Problem("/a", "must be an object of timestamp to count, not a number")),
        ({"a": None}, Problem("/a", "must be an object of timestamp to count, not null")),
        ({"a": TS}, Problem("/a", "must be an object of timestamp to count, not a string")),
        ({"example.com/a": {}}, Problem("/example.com~1a", "has no timestamps")),
        ({"": {TS: 1}}, Problem("/", "page must not be empty")),
        ({"x" * 2049: {TS: 1}}, Problem("/" + "x" * 2049, "page has 2049 characters; at most 2048 are allowed")),
        ({"a\x00": {TS: 1}}, Problem("/a\x00", "page must not contain the NUL character (\\u0000)")),
        ({"\ud800": {TS: 1}}, Problem("/\ud800", "page contains an unpaired UTF-16 surrogate, which is not a character")),
    ],
    ids=[
        "empty-object", "page-to-list", "page-to-number", "page-to-null", "page-to-string", "page-to-empty-object", "empty-page",
        "page-2049", "page-nul", "page-lone-surrogate",
    ],
)
def test_multi_rejects(data, expected):
    assert only_problem(validate_multi, data, rules()) == expected


def test_multi_accepts_unusual_pages_literally():
    pages = ["x" * 2048, "例え.jp/ページ", 'a "quoted" page', "1; DELETE FROM page_views"]
    assert validate_multi({page: {TS: 2} for page in pages}, rules()) == {(page, TS_HOUR): 2 for page in pages}


def test_multi_lists_every_bad_entry_and_nothing_is_returned():
    data = {
        "example.com/a": {"2025-07-16T09:00:00Z": 0, "2025-07-16T08:00:00Z": 3, "2030-01-01T00:00:00Z": 1},
        "example.com/b": {"2025-07-16T09:00:00Z": 4},
        "example.com/c": {"not a time": 2},
    }
    problems = problems_of(validate_multi, data, rules())
    assert [p.at for p in problems] == [
        "/example.com~1a/2025-07-16T09:00:00Z",
        "/example.com~1a/2030-01-01T00:00:00Z",
        "/example.com~1c/not a time",
    ]
    assert "got 0" in problems[0].problem
    assert "future" in problems[1].problem
    assert "not an ISO 8601 timestamp" in problems[2].problem


def test_multi_entry_with_bad_timestamp_and_bad_count_gets_both_problems():
    problems = problems_of(validate_multi, {"a": {"nope": 0}}, rules())
    assert [p.at for p in problems] == ["/a/nope", "/a/nope"]
    assert "timestamp" in problems[0].problem and "count" in problems[1].problem


def test_multi_bad_page_problems_and_entry_problems_are_all_listed():
    problems = problems_of(validate_multi, {"": {TS: 0}, "ok": [], "fine": {TS: 1}}, rules())
    assert [p.at for p in problems] == ["/", "//2025-07-16T09:15:00Z", "/ok"]


def test_invalid_summary_counts_the_problems():
    with pytest.raises(Invalid) as caught:
        validate_multi({"a": {TS: 0}, "b": {TS: 0}, "c": {TS: 0}}, rules())
    assert caught.value.message == "3 problems in the request; nothing was accepted"


def test_invalid_summary_of_one_problem_names_where():
    with pytest.raises(Invalid) as caught:
        validate_single({}, rules())
    assert caught.value.message == "/page: page is required; nothing was accepted"


def test_timestamp_rules_are_fixed_at_construction():
    fixed = rules()
    assert fixed.hour_of("2025-07-16T11:20:00Z") == (NOW_HOUR + 3600, None)
    assert fixed.hour_of("2025-07-16T11:20:00Z") == (NOW_HOUR + 3600, None)  # cached answer is the same
    hour, why = fixed.hour_of("2025-07-16T11:20:01Z")
    assert hour is None and "future" in why


def test_retention_rule_follows_retention_days():
    one_day = TimestampRules(now=NOW, retention_days=1)
    assert one_day.hour_of("2025-07-15T10:00:00Z") == (NOW_HOUR - 24 * 3600, None)
    hour, why = one_day.hour_of("2025-07-15T09:59:59Z")
    assert hour is None and "retention window of 1 days" in why


# --------------------------------------------------------------------------- Idempotency-Key


@pytest.mark.parametrize(
    "key",
    ["a", "order-42", "x" * 200, " !~", "550e8400-e29b-41d4-a716-446655440000"],
    ids=["one-char", "word", "exactly-200", "printable-edges", "uuid"],
)
def test_idempotency_key_accepted(key):
    assert idempotency_key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "must not be empty"),
        ("x" * 201, "has 201 characters; at most 200 are allowed"),
        ("a\tb", "printable ASCII"),
        ("a\x00b", "printable ASCII"),
        ("a\x7fb", "printable ASCII"),
        ("clé", "printable ASCII"),
        ("ключ", "printable ASCII"),
        ("a\nb", "printable ASCII"),
    ],
    ids=["empty", "201-chars", "tab", "nul", "del", "latin1", "cyrillic", "newline"],
)
def test_idempotency_key_rejected(key, why):
    problem = idempotency_key_problem(key)
    assert problem is not None and why in problem
    assert "Idempotency-Key" in problem


# --------------------------------------------------------------------------- report


def query(**params: str | list[str]) -> dict[str, list[str]]:
    return {name: value if isinstance(value, list) else [value] for name, value in params.items()}


def report_problems(**params: str | list[str]) -> list[Problem]:
    return problems_of(validate_report_query, query(**params), NOW)


def report_problem(**params: str | list[str]) -> Problem:
    problems = report_problems(**params)
    assert len(problems) == 1, problems
    return problems[0]


def test_report_defaults_to_the_24_hours_before_the_current_hour():
    assert validate_report_query(query(page="example.com/a"), NOW) == ReportQuery(
        page="example.com/a", start=datetime(2025, 7, 15, 10, tzinfo=UTC), hours=24, descending=False, take=None
    )


def test_report_desc_and_take():
    result = validate_report_query(query(page="a", order="desc", take="24"), NOW)
    assert (result.descending, result.take, result.hours) == (True, 24, 24)
    assert validate_report_query(query(page="a", order="asc", take="1"), NOW).descending is False


def test_report_now_moves_the_window():
    result = validate_report_query(query(page="a", now="2025-07-01T05:59:59+02:00"), NOW)
    assert (result.start, result.hours) == (datetime(2025, 6, 30, 3, tzinfo=UTC), 24)


def test_report_from_to_sets_the_window():
    result = validate_report_query(query(page="a", **{"from": "2025-07-01T00:00:00Z", "to": "2025-07-03T00:00:00+00:00"}), NOW)
    assert (result.start, result.hours) == (datetime(2025, 7, 1, tzinfo=UTC), 48)


def test_report_from_to_with_offsets_aligned_in_utc():
    result = validate_report_query(query(page="a", **{"from": "2025-07-01T02:00:00+02:00", "to": "2025-07-01T08:00:00+05:00"}), NOW)
    assert (result.start, result.hours) == (datetime(2025, 7, 1, tzinfo=UTC), 3)


def test_report_range_of_exactly_31_days_is_accepted():
    result = validate_report_query(query(page="a", **{"from": "2025-06-01T00:00:00Z", "to": "2025-07-02T00:00:00Z"}), NOW)
    assert result.hours == 31 * 24


@pytest.mark.parametrize(("take", "ok"), [("48", True), ("1", True), ("49", False)], ids=["range-hours", "one", "over-range-hours"])
def test_report_take_is_limited_by_the_range(take, ok):
    params = query(page="a", take=take, **{"from": "2025-07-01T00:00:00Z", "to": "2025-07-03T00:00:00Z"})
    if ok:
        assert validate_report_query(params, NOW).take == int(take)
    else:
        problem = only_problem(validate_report_query, params, NOW)
        assert problem.at == "take" and "from 1 to 48" in problem.problem


@pytest.mark.parametrize(
    ("params", "at", "why"),
    [
        ({}, "page", "page is required"),
        ({"page": ""}, "page", "page must not be empty"),
        ({"page": "x" * 2049}, "page", "at most 2048"),
        ({"page": "a\x00"}, "page", "NUL"),
        ({"page": "a", "order": "up"}, "order", "order must be asc or desc, got 'up'"),
        ({"page": "a", "order": "DESC"}, "order", "order must be asc or desc"),
        ({"page": "a", "take": "0"}, "take", "take must be a whole number from 1 to 24, got '0'"),
        ({"page": "a", "take": "25"}, "take", "from 1 to 24, got '25'"),
        ({"page": "a", "take": "abc"}, "take", "got 'abc'"),
        ({"page": "a", "take": "-1"}, "take", "got '-1'"),
        ({"page": "a", "take": "1.5"}, "take", "got '1.5'"),
        ({"page": "a", "take": ""}, "take", "got ''"),
        ({"page": "a", "take": "٣"}, "take", "from 1 to 24"),
        ({"page": "a", "now": "soon"}, "now", "now must be an ISO 8601 timestamp"),
        ({"page": "a", "now": "2025-07-16T10:00:00Z" + "0" * 60}, "now", "now must be an ISO 8601 timestamp"),
        ({"page": "a", "from": "2025-07-01T00:00:00Z"}, "to", "from and to must be given together"),
        ({"page": "a", "to": "2025-07-01T00:00:00Z"}, "from", "from and to must be given together"),
        ({"page": "a", "from": "2025-07-01T00:30:00Z", "to": "2025-07-02T00:00:00Z"}, "from", "from must be the start of an hour"),
        ({"page": "a", "from": "2025-07-01T00:00:00Z", "to": "2025-07-02T00:00:01Z"}, "to", "to must be the start of an hour"),
        ({"page": "a", "from": "2025-07-01T05:00:00+05:30", "to": "2025-07-02T00:00:00Z"}, "from", "start of an hour"),
        ({"page": "a", "from": "2025-07-02T00:00:00Z", "to": "2025-07-02T00:00:00Z"}, "to", "to must be later than from"),
        ({"page": "a", "from": "2025-07-02T00:00:00Z", "to": "2025-07-01T00:00:00Z"}, "to", "to must be later than from"),
        ({"page": "a", "from": "2025-06-01T00:00:00Z", "to": "2025-07-02T01:00:00Z"}, "to", "at most 31 days apart"),
        ({"page": "a", "from": "bad", "to": "2025-07-02T00:00:00Z"}, "from", "from must be an ISO 8601 timestamp"),
        (
            {"page": "a", "now": "2025-07-02T00:00:00Z", "from": "2025-07-01T00:00:00Z", "to": "2025-07-02T00:00:00Z"},
            "now",
            "now cannot be combined",
        ),
        ({"page": "a", "limit": "5"}, "limit", "unknown parameter; expected one of page, now, order, take, from, to"),
        ({"page": ["a", "b"]}, "page", "given more than once"),
        ({"page": "a", "order": ["asc", "asc"]}, "order", "given more than once"),
    ],
    ids=[
        "no-page", "empty-page", "long-page", "nul-page", "bad-order", "upper-order", "take-0", "take-25", "take-abc", "take-negative",
        "take-fraction", "take-empty", "take-arabic-digit", "bad-now", "now-too-long", "from-without-to", "to-without-from",
        "from-unaligned",
        "to-unaligned", "from-unaligned-in-utc", "to-equals-from", "to-before-from", "over-31-days", "bad-from", "now-with-from-to",
        "unknown-parameter", "repeated-page", "repeated-order",
    ],
)
def test_report_rejects(params, at, why):
    problem = report_problem(**params)
    assert problem.at == at
    assert why in problem.problem


@pytest.mark.parametrize(
    "now",
    ["0001-01-01T00:30:00Z", "0001-01-01T23:59:59Z", "0001-01-01T05:00:00+05:00"],
    ids=["year-1-first-hour", "year-1-last-hour", "year-1-offset"],
)
def test_report_now_too_early_for_a_24_hour_window_is_invalid_not_an_overflow(now):
    problem = report_problem(page="a", now=now)
    assert problem.at == "now"


@pytest.mark.parametrize(
    "params",
    [
        {"now": "0001-01-02T00:00:00Z"},
        {"now": "9999-12-31T23:59:59Z"},
        {"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"},
        {"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:00:00Z"},
    ],
    ids=["now-year-1-day-2", "now-end-of-9999", "range-year-1", "range-end-of-9999"],
)
def test_report_extreme_years_that_fit_are_accepted(params):
    assert validate_report_query(query(page="a", **params), NOW).hours in (23, 24)


def test_report_lists_every_problem():
    problems = report_problems(order="sideways", take="0", extra="1")
    assert {p.at for p in problems} == {"extra", "page", "order", "take"}


def test_report_message_does_not_claim_nothing_was_accepted():
    with pytest.raises(Invalid) as caught:
        validate_report_query(query(order="x"), NOW)
    assert "nothing was accepted" not in caught.value.message
    assert caught.value.message == "2 problems in the request"


def test_report_accepts_pages_literally():
    page = "例え.jp/ページ?q=\"1\"&x='; DROP TABLE page_views; --"
    assert validate_report_query(query(page=page), NOW).page == page


def test_problems_are_json_serialisable():
    problems = problems_of(validate_multi, {"a": {TS: 0}, "b": []}, rules())
    json.dumps([{"at": p.at, "problem": p.problem} for p in problems])


def test_now_for_rules_can_be_any_moment_within_the_hour():
    late = TimestampRules(now=NOW + timedelta(minutes=39, seconds=59), retention_days=RETENTION_DAYS)
    assert late.hour_of(OLDEST_HOUR)[1] is None
    assert late.hour_of("2025-07-16T11:59:59Z") == (NOW_HOUR + 3600, None)
