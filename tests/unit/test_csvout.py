"""CSV answers: RFC 4180 quoting and no formulas."""
from __future__ import annotations

import csv
import io

import pytest

from api.reports.csvout import harmless, to_csv
from common.sites import site_of


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_header_row_then_values_in_header_order_with_crlf():
    text = to_csv(["page", "v", "u"], [{"u": 1, "v": 2, "page": "example.com/a"}])
    assert text == "page,v,u\r\nexample.com/a,2,1\r\n"


@pytest.mark.parametrize(
    "page",
    ['example.com/a,b', 'example.com/"quoted"', "example.com/line\nbreak", "example.com/cr\rlf", "example.com/ünï,cödé"],
    ids=["comma", "quotes", "newline", "carriage-return", "unicode"],
)
def test_pages_with_special_characters_round_trip(page):
    assert parse(to_csv(["page", "v"], [{"page": page, "v": 7}])) == [["page", "v"], [page, "7"]]


def test_quotes_are_doubled_inside_a_quoted_field():
    assert to_csv(["page"], [{"page": 'a"b,c'}]) == 'page\r\n"a""b,c"\r\n'


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_starts_are_neutralised(cell):
    assert harmless(cell) == "'" + cell
    assert parse(to_csv(["page"], [{"page": cell}]))[1] == ["'" + cell]


def test_ordinary_text_and_numbers_are_untouched():
    assert harmless("example.com/=a") == "example.com/=a"
    assert harmless(0) == 0 and harmless(12) == 12


@pytest.mark.parametrize(
    ("page", "site"),
    [
        ("example.com/pricing", "example.com"),
        ("example.com/", "example.com"),
        ("example.com/a/b", "example.com"),
        ("/pricing", ""),
        ("pricing", ""),
        ("", ""),
        ("例え.jp/ページ", "例え.jp"),
    ],
)
def test_site_of(page, site):
    assert site_of(page) == site
