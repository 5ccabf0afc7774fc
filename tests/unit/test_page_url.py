"""The page a browser view counts for: host, port, path; IDN and percent-encoding in one canonical form."""
from __future__ import annotations

import pytest

from api.page_url import BadUrl, page_from_url, site_of


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("https://Example.com/pricing?plan=pro#faq", "example.com/pricing"),
        ("https://example.com", "example.com/"),
        ("https://example.com?x=1", "example.com/"),
        ("https://example.com#top", "example.com/"),
        ("HTTPS://EXAMPLE.COM/Docs/", "example.com/Docs/"),  # the path keeps its case
        ("https://example.com:443/a", "example.com/a"),
        ("http://example.com:80/a", "example.com/a"),
        ("https://example.com:80/a", "example.com:80/a"),
        ("http://example.com:443/a", "example.com:443/a"),
        ("http://localhost:8080/", "localhost:8080/"),
        ("http://127.0.0.1:3000/x", "127.0.0.1:3000/x"),
        ("http://[::1]:8080/x", "[::1]:8080/x"),
        ("http://[2001:DB8::1]/x", "[2001:db8::1]/x"),
        ("https://user:secret@example.com/a", "example.com/a"),  # credentials are never kept
        ("https://example.com./a", "example.com./a"),
        ("https://example.com/a/../b", "example.com/a/../b"),  # browsers resolve dot segments first
    ],
)
def test_page_is_host_port_and_path(url: str, page: str) -> None:
    assert page_from_url(url) == page


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("https://bücher.example/", "xn--bcher-kva.example/"),  # Unicode, as typed by hand
        ("https://BÜCHER.example/", "xn--bcher-kva.example/"),
        ("https://xn--bcher-kva.example/", "xn--bcher-kva.example/"),  # what browsers send
        ("https://XN--BCHER-KVA.example/", "xn--bcher-kva.example/"),
        ("https://faß.de/", "xn--fa-hia.de/"),  # non-transitional UTS 46, as browsers: ß stays ß
        ("https://例え.テスト/", "xn--r8jz45g.xn--zckzah/"),
    ],
)
def test_idn_hosts_count_in_their_ascii_form(url: str, page: str) -> None:
    assert page_from_url(url) == page


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("https://example.com/caf%C3%A9", "example.com/caf%C3%A9"),  # as location.href has it
        ("https://example.com/caf%c3%a9", "example.com/caf%C3%A9"),  # hex case does not matter
        ("https://example.com/café", "example.com/caf%C3%A9"),  # a raw character is encoded as browsers do
        ("https://example.com/%7Euser/%41%2d%5F%2E", "example.com/~user/A-_."),  # unreserved characters decoded
        ("https://example.com/a%2Fb", "example.com/a%2Fb"),  # an encoded slash is not a slash
        ("https://example.com/a%2fb", "example.com/a%2Fb"),
        ("https://example.com/a b", "example.com/a%20b"),
        ("https://example.com/a%20b", "example.com/a%20b"),
        ('https://example.com/"<x>`{}', "example.com/%22%3Cx%3E%60%7B%7D"),
        ("https://example.com/100%", "example.com/100%"),  # a lone % stays, like browsers
        ("https://example.com/%zz%4", "example.com/%zz%4"),
        ("https://example.com/a%00b", "example.com/a%00b"),
        ("https://example.com/a\x01b", "example.com/a%01b"),
        ("https://example.com/!$&'()*+,;=:@", "example.com/!$&'()*+,;=:@"),
    ],
)
def test_path_stays_percent_encoded_in_one_canonical_form(url: str, page: str) -> None:
    assert page_from_url(url) == page


@pytest.mark.parametrize(
    "url",
    [
        "example.com/a",
        "/a",
        "ftp://example.com/a",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https:///a",
        "https://exa mple.com/a",
        "https://exa<mple.com/",
        "https://example.com:99999/",
        "https://example.com:port/",
        "http://[::1/",
        "https://a\u200d.example/",  # ZWJ is not allowed in an IDN label
        "https://example.com/" + "a" * 2040,  # 2052 characters of page
        "https://example.com/\ud800",
        "",
    ],
)
def test_uncountable_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(BadUrl) as caught:
        page_from_url(url)
    assert str(caught.value)


def test_page_at_the_length_limit_is_accepted() -> None:
    page = page_from_url("https://example.com/" + "a" * (2048 - len("example.com/")))
    assert len(page) == 2048


@pytest.mark.parametrize(
    ("page", "site"),
    [("example.com/a/b", "example.com"), ("example.com:8080/", "example.com:8080"), ("/a", ""), ("home", "")],
)
def test_site_of_page(page: str, site: str) -> None:
    assert site_of(page) == site
