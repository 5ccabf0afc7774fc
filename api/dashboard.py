"""GET / and GET /dashboard/<version>/<file>: the dashboard, static files served by the API itself.

The page is plain HTML, CSS and JavaScript (with uPlot vendored by
scripts/build-dashboard-assets.sh) and reads the public report endpoints like any
other client, so what it shows is what the API answers. Caching:
- `/` is small and names the current assets: `no-cache` (revalidated every time, a 304
  when nothing changed), so a deploy is seen at the next load.
- assets live under a version that is a hash of all their contents, so their URLs
  change whenever any of them does and they can be cached for a year as immutable.
  A URL with an older version (an index cached before a deploy) still gets the current
  file, but only for a minute.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from flask import Blueprint, Response, request, send_from_directory

bp = Blueprint("dashboard", __name__)  # view names are the `endpoint` label of the request metrics

ASSETS = Path(__file__).resolve().parent / "dashboard_assets"
VERSION_PLACEHOLDER = "{{version}}"
VERSIONED_MAX_AGE_S = 365 * 24 * 3600
UNVERSIONED_MAX_AGE_S = 60

# The page loads nothing from elsewhere; the browser enforces it. uPlot styles its
# elements through the CSSOM (element.style), which `style-src 'self'` allows.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@functools.cache
def assets_version() -> str:
    """A hash of every asset's path and bytes: computed once per process (files change with a deploy)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in ASSETS.rglob("*") if p.is_file()):
        digest.update(path.relative_to(ASSETS).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def _index_html() -> bytes:
    return (ASSETS / "index.html").read_text(encoding="utf-8").replace(VERSION_PLACEHOLDER, assets_version()).encode()


@bp.get("/")
def dashboard() -> Response:
    body = _index_html()
    response = Response(body, mimetype="text/html")
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    response.headers["Cache-Control"] = "no-cache"
    _protect(response)
    return response.make_conditional(request)


@bp.get("/dashboard/<version>/<path:name>")
def dashboard_asset(version: str, name: str) -> Response:
    current = version == assets_version()
    # send_from_directory refuses paths outside ASSETS (a JSON 404) and answers
    # If-None-Match / If-Modified-Since with a 304 from its ETag and Last-Modified.
    response = send_from_directory(ASSETS, name, max_age=VERSIONED_MAX_AGE_S if current else UNVERSIONED_MAX_AGE_S)
    if current:
        response.headers["Cache-Control"] += ", immutable"
    _protect(response)
    return response


def _protect(response: Response) -> None:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
