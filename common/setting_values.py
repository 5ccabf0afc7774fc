"""How each setting's text is read and checked: the parsers that common/config.py's SETTINGS name.

Each parser takes the raw text of one variable and returns the typed value, or raises
ValueError saying what was expected; config.py adds the setting's name to the message.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Callable
from urllib.parse import urlsplit, urlunsplit


def int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        raw = raw.strip()
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"expected a {'/'.join(schemes)}:// URL with a host, got {mask_url(raw)!r}")
        try:
            parts.port  # noqa: B018 - urlsplit validates the port lazily
        except ValueError:
            raise ValueError(f"bad port in {mask_url(raw)!r}") from None
        return raw

    return parse


def split_urls(raw: str) -> tuple[str, ...]:
    """The URLs of a comma-separated list (AMQP_URL may name every node of a cluster)."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def url_list(*schemes: str) -> Callable[[str], str]:
    """One URL or several, comma-separated: each must parse; the list is kept as text, normalised."""
    one = url(*schemes)

    def parse(raw: str) -> str:
        urls = split_urls(raw)
        if not urls:
            raise ValueError(f"expected one or more {'/'.join(schemes)}:// URLs, comma-separated")
        for position, url in enumerate(urls, 1):
            try:
                one(url)
            except ValueError as exc:
                raise ValueError(f"URL {position} of {len(urls)}: {exc}" if len(urls) > 1 else str(exc)) from None
        if len(set(urls)) != len(urls):
            raise ValueError("the same URL is listed twice")
        return ",".join(urls)

    return parse


def optional(parse_value: Callable[[str], str]) -> Callable[[str], str]:
    """Empty means "not set" (the feature is off); anything else must parse."""

    def parse(raw: str) -> str:
        return parse_value(raw) if raw.strip() else ""

    return parse


def queue_prefix(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", raw):
        raise ValueError("must be 1-100 characters of letters, digits, '.', '_' or '-'")
    return raw


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


# RFC 6750 b64token characters, so a token travels in an Authorization header as it is.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
MIN_TOKEN_LENGTH = 16


def tokens(raw: str) -> tuple[str, ...]:
    tokens = tuple(token.strip() for token in raw.split(",") if token.strip())
    for number, token in enumerate(tokens, 1):
        # Never echo a token, not even a bad one: say which one and why.
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"token {number} has characters other than letters, digits and -._~+/=")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"token {number} is shorter than {MIN_TOKEN_LENGTH} characters")
    return tokens


_RATE = re.compile(r"\s*[1-9][0-9]{0,8}\s*(/|per)\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)


def rate_limit(raw: str) -> str:
    """Empty (off) or the limits library's notation for one limit, such as 60/minute."""
    if raw.strip() and not _RATE.fullmatch(raw):
        raise ValueError(f"expected empty or a rate such as 60/minute (per second, minute, hour or day), got {raw!r}")
    return raw.strip()


def optional_port(raw: str) -> int | None:
    """Empty means "the process's own default" (workers 9101, the cleaner 9100); 0 means off."""
    if not raw.strip():
        return None
    return int_between(0, 65535)(raw)


def boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def origins(raw: str) -> tuple[str, ...]:
    """`*`, or comma-separated origins, each spelled as browsers send them in the Origin header."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if names == ["*"]:
        return ("*",)
    if not names:
        raise ValueError("expected * or a comma-separated list of origins such as https://example.com")
    return tuple(origin(name) for name in names)


def origin(raw: str) -> str:
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in origin {raw!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"expected an origin such as https://example.com (scheme, host, optional port; no path), got {raw!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default_port else "")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(raw: str) -> tuple[Network, ...]:
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"expected comma-separated IP addresses or CIDRs such as 10.0.0.0/8, got {item!r}") from None
    return tuple(networks)


def joined(values: tuple) -> str:
    return ",".join(str(value) for value in values)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0] + ":***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc[1]}"))
