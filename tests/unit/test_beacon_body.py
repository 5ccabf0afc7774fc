"""The beacon body: strict, every problem listed, the page derived from the URL."""
from __future__ import annotations

import pytest

from api.beacon_body import validate_beacon
from api.validation import Invalid


def problems_at(data: dict) -> list[str]:
    with pytest.raises(Invalid) as caught:
        validate_beacon(data)
    return [p.at for p in caught.value.problems]


def test_url_gives_the_page() -> None:
    assert validate_beacon({"url": "https://Example.com/pricing?plan=pro#faq"}) == "example.com/pricing"


@pytest.mark.parametrize("referrer", ["", "https://www.google.com/", "android-app://com.google.android.gm/"])
def test_referrer_is_optional_and_validated(referrer: str) -> None:
    assert validate_beacon({"url": "https://example.com/", "referrer": referrer}) == "example.com/"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({}, ["/url"]),
        ({"url": None}, ["/url"]),
        ({"url": 5}, ["/url"]),
        ({"url": "example.com/a"}, ["/url"]),
        ({"url": "https://example.com/" + "a" * 5000}, ["/url"]),
        ({"url": "https://example.com/", "page": "x"}, ["/page"]),
        ({"url": "https://example.com/", "referrer": None}, ["/referrer"]),
        ({"url": "https://example.com/", "referrer": "x" * 2049}, ["/referrer"]),
        ({"url": "https://example.com/", "referrer": "not a url"}, ["/referrer"]),
        ({"url": "https://example.com/", "referrer": "https://a.example/\n"}, ["/referrer"]),
        ({"url": 1, "referrer": 2, "title": "t"}, ["/title", "/url", "/referrer"]),
    ],
)
def test_every_problem_is_listed(data: dict, where: list[str]) -> None:
    assert problems_at(data) == where
