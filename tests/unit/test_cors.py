"""CORS answers as a pure function of ALLOWED_ORIGINS and the request's Origin."""
from __future__ import annotations

import pytest

from api.cors import ForbiddenOrigin, cors_headers
from common.config import ConfigError, Settings

LISTED = ("https://example.com", "http://localhost:8080")


@pytest.mark.parametrize("origin", ["https://example.com", "null", None])
def test_any_origin_when_all_are_allowed(origin: str | None) -> None:
    assert cors_headers(("*",), origin) == {"Access-Control-Allow-Origin": "*"}


@pytest.mark.parametrize("origin", ["https://example.com", "http://localhost:8080", "HTTPS://EXAMPLE.COM"])
def test_a_listed_origin_is_echoed(origin: str) -> None:
    assert cors_headers(LISTED, origin) == {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


@pytest.mark.parametrize("origin", ["https://evil.example", "http://example.com", "https://example.com:8443", "null", ""])
def test_an_unlisted_origin_is_forbidden(origin: str) -> None:
    with pytest.raises(ForbiddenOrigin):
        cors_headers(LISTED, origin)


def test_no_origin_is_not_a_cross_origin_request() -> None:
    assert cors_headers(LISTED, None) == {"Vary": "Origin"}


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("*", ("*",)),
        (" * ", ("*",)),
        ("https://Example.com", ("https://example.com",)),
        ("https://example.com:443/, http://localhost:8080", ("https://example.com", "http://localhost:8080")),
        ("http://[::1]:80", ("http://[::1]",)),
    ],
)
def test_allowed_origins_setting_is_spelled_as_browsers_send_origin(raw: str, parsed: tuple) -> None:
    assert Settings.from_mapping({"ALLOWED_ORIGINS": raw}).allowed_origins == parsed


@pytest.mark.parametrize("raw", ["", "example.com", "https://example.com/app", "ftp://example.com", "https://example.com:x", "*, https://a.example"])
def test_bad_allowed_origins_name_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError, match="ALLOWED_ORIGINS"):
        Settings.from_mapping({"ALLOWED_ORIGINS": raw})


def test_trusted_proxies_setting_round_trips() -> None:
    settings = Settings.from_mapping({"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1 ,fd00::/8"})
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.168.1.1/32", "fd00::/8"]
    assert Settings.from_env(settings.as_env()) == settings
    assert Settings.from_mapping({}).trusted_proxies == ()


def test_bad_trusted_proxies_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Settings.from_mapping({"TRUSTED_PROXIES": "10.0.0.0/33"})
