"""GET /tracker.js: the script a website adds to count its views (api/tracker_assets/tracker.js).

Served as written minus comment lines and indentation (newlines are kept, so the meaning
cannot change), gzipped when the browser accepts it, with a strong ETag per encoding and a
day of caching: a new release reaches every visitor within a day.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, request

bp = Blueprint("tracker", __name__)

SOURCE = Path(__file__).parent / "tracker_assets" / "tracker.js"
MAX_AGE_S = 86_400


@dataclass(frozen=True)
class Encoded:
    body: bytes
    etag: str


@dataclass(frozen=True)
class Script:
    plain: Encoded
    gzipped: Encoded


def minified(source: str) -> str:
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


@functools.cache
def script() -> Script:
    plain = minified(SOURCE.read_text(encoding="utf-8")).encode("utf-8")
    digest = hashlib.sha256(plain).hexdigest()[:20]
    # mtime=0: the same bytes (and ETag) from every process and restart.
    return Script(Encoded(plain, digest), Encoded(gzip.compress(plain, compresslevel=9, mtime=0), digest + "-gz"))


@bp.get("/tracker.js")
def tracker() -> Response:
    served = script()
    wants_gzip = request.accept_encodings["gzip"] > 0
    encoded = served.gzipped if wants_gzip else served.plain
    response = Response(encoded.body, content_type="text/javascript; charset=utf-8")
    if wants_gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE_S
    response.set_etag(encoded.etag)
    return response.make_conditional(request)
