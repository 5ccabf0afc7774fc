"""Which web pages may send beacons: CORS answers as a pure function of ALLOWED_ORIGINS and Origin.

A request without an Origin header does not come from a cross-origin page (curl, a server,
a same-origin form in an old browser); it is accepted and gets no CORS headers. The check is
about which sites' pages are counted, not a security boundary: anyone can send any Origin
outside a browser.

`sendBeacon` with a text/plain body is a "simple" request: browsers send it without a
preflight, with credentials. Its answer is never read, so `*` is enough; with a list of
origins the origin is echoed, with `Vary: Origin` for caches.
"""
from __future__ import annotations

PREFLIGHT_MAX_AGE_S = 86_400  # browsers cap it lower (Chromium: 2 hours); one preflight per page load at most

PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
}


class ForbiddenOrigin(Exception):
    def __init__(self, origin: str) -> None:
        super().__init__(f"pages of {origin[:200]!r} may not send views here; ALLOWED_ORIGINS lists the sites counted")
        self.origin = origin


def cors_headers(allowed: tuple[str, ...], origin: str | None) -> dict[str, str]:
    """The headers of an answer to this Origin; raises ForbiddenOrigin if it is not allowed."""
    if allowed == ("*",):
        return {"Access-Control-Allow-Origin": "*"}
    if origin is None:
        return {"Vary": "Origin"}
    if origin.lower() not in allowed:
        raise ForbiddenOrigin(origin)
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
