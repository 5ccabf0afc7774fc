"""The page a browser view counts for, derived from the URL the browser was showing.

page = host, lowercased, with ``:port`` only when it is not the scheme's default, then
the path (``/`` when empty). Query, fragment and any user:password are dropped.

Two spellings of one page must give one page, so the URL is put in the canonical form
browsers themselves give in ``location.href`` (WHATWG URL serialisation), which is what
the tracker sends. Decisions:

- IDN hosts are kept in their ASCII (punycode) form: ``bücher.example`` counts as
  ``xn--bcher-kva.example``. Browsers send that form, DNS and TLS use it, and it has one
  spelling, whereas Unicode forms differ by normalisation. A Unicode host sent by hand is
  converted with UTS #46 (non-transitional, as browsers do). ASCII hosts are kept as sent,
  lowercased, ``xn--`` labels included: browsers accept labels that strict IDNA 2008 refuses
  (emoji domains), so re-checking them would only refuse real sites.
- The path stays percent-encoded, as the browser sent it: decoding would merge pages that
  differ (``/a%2Fb`` and ``/a/b``) and could produce text that is not UTF-8. It is only
  normalised the way RFC 3986 (6.2.2) calls equivalent: hex digits upper case, encoded
  unreserved characters (letters, digits, ``-._~``) decoded, and characters a browser
  would encode (non-ASCII, spaces, controls, quotes, ``<>`{}``) encoded as UTF-8.
  Dot segments are left alone: browsers resolve them before the page sees its URL.

Pure: no I/O.
"""
from __future__ import annotations

import string
from urllib.parse import SplitResult, urlsplit

import idna

from api.validation import page_problem

DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_HEX = frozenset(string.hexdigits)
# WHATWG URL "path percent-encode set" on top of C0 controls, minus ? and # (already split off).
_ENCODE_IN_PATH = frozenset(' "<>`{}\x7f') | frozenset(chr(code) for code in range(0x20))


class BadUrl(ValueError):
    """The URL cannot be counted; the text says why."""


def page_from_url(url: str) -> str:
    parts = _split(url)
    page = _host(parts) + _port(parts) + _path(parts.path)
    why = page_problem(page)
    if why is not None:
        raise BadUrl(why)
    return page


def site_of(page: str) -> str:
    """The site a page belongs to (DESIGN.md): the text before its first `/`, '' for none."""
    if page.startswith("/") or "/" not in page:
        return ""
    return page.split("/", 1)[0]


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [ in the host
        raise BadUrl(f"url is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise BadUrl("url must be an absolute http:// or https:// URL")
    if not parts.hostname:
        raise BadUrl("url has no host")
    return parts


def _host(parts: SplitResult) -> str:
    host = parts.hostname or ""  # urlsplit lowercases hostname and removes the [] of IPv6
    if ":" in host:
        return f"[{host}]"
    if host.isascii():
        if not all(ch in _UNRESERVED or ch in "!$&'()*+,;=" for ch in host):
            raise BadUrl(f"url host {host[:100]!r} contains characters not allowed in a host")
        return host
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise BadUrl(f"url host {host[:100]!r} is not a valid internationalized domain name: {exc}") from None


def _port(parts: SplitResult) -> str:
    try:
        port = parts.port
    except ValueError:
        raise BadUrl("url has an invalid port") from None
    if port is None or port == DEFAULT_PORTS[parts.scheme.lower()]:
        return ""
    return f":{port}"


def _path(path: str) -> str:
    if not path:
        return "/"
    out: list[str] = []
    index = 0
    while index < len(path):
        ch = path[index]
        if ch == "%" and path[index + 1 : index + 2] in _HEX and path[index + 2 : index + 3] in _HEX:
            decoded = chr(int(path[index + 1 : index + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else path[index : index + 3].upper())
            index += 3
            continue
        out.append(_encoded(ch) if ch in _ENCODE_IN_PATH or not ch.isascii() else ch)
        index += 1
    return "".join(out)


def _encoded(ch: str) -> str:
    try:
        raw = ch.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be in a URL a browser sends
        raise BadUrl("url contains an unpaired UTF-16 surrogate, which is not a character") from None
    return "".join(f"%{byte:02X}" for byte in raw)
