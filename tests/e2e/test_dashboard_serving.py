"""The dashboard's files as the running API serves them: caching, ETags, 304s, nothing from elsewhere."""
from __future__ import annotations

import re

import pytest

from api.dashboard import ASSETS

YEAR_S = 365 * 24 * 3600


@pytest.fixture
def api(start_api):
    return start_api()


def asset_urls(index_html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', index_html)


def test_the_page_is_public_html_revalidated_with_its_etag(api):
    response = api.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    etag = response.headers["ETag"]
    again = api.session.get(api.base_url + "/", headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    assert api.session.get(api.base_url + "/", headers={"If-None-Match": '"other"'}, timeout=10).status_code == 200


def test_every_asset_is_versioned_cached_for_a_year_and_answers_304(api):
    urls = asset_urls(api.get("/").text)
    assert {url.rsplit("/", 1)[-1] for url in urls} >= {"dashboard.js", "dashboard.css", "uPlot.iife.min.js", "uPlot.min.css", "favicon.svg"}
    for url in urls:
        response = api.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == f"public, max-age={YEAR_S}, immutable", url
        assert response.content == (ASSETS / url.split("/", 3)[3]).read_bytes()
        again = api.session.get(api.base_url + url, headers={"If-None-Match": response.headers["ETag"]}, timeout=10)
        assert again.status_code == 304, url


def test_module_scripts_and_styles_have_their_types(api):
    version = asset_urls(api.get("/").text)[0].split("/")[2]
    for name, content_type in (("dashboard.js", "text/javascript"), ("chart.js", "text/javascript"), ("dashboard.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        assert api.get(f"/dashboard/{version}/{name}").headers["Content-Type"].startswith(content_type), name


def test_an_old_version_still_gets_the_file_but_only_briefly(api):
    response = api.get("/dashboard/0123456789abcdef/dashboard.js")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=60"


def test_nothing_outside_the_assets_and_no_missing_file_is_served(api):
    version = asset_urls(api.get("/").text)[0].split("/")[2]
    for path in (f"/dashboard/{version}/../dashboard.py", f"/dashboard/{version}/%2e%2e/dashboard.py", f"/dashboard/{version}/nope.js", "/dashboard/x"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
