"""Which address a beacon came from, for the visitor id only (never stored, published or logged).

The TCP peer, unless the peer is a trusted proxy (TRUSTED_PROXIES): then the right-most
address of X-Forwarded-For that is not a trusted proxy. Each proxy appends the address it
received the request from, so reading from the right, the first address not ours is the
last one a proxy of ours vouched for; anything to its left was written by the client and
could be anything.

Malformed entries: reading from the right, an entry that is not an address (a proxy we
trust wrote garbage) stops the walk, and the last trusted address seen stands in for the
client. All visitors behind it then look alike for the day, which undercounts visitors
but never lets a client choose its own identity.

Pure: no I/O.
"""
from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from common.config import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_ip(peer: str, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """`forwarded_for`: every X-Forwarded-For header of the request, in the order received."""
    address = _address(peer)
    if address is None:
        return peer  # not an IP (a Unix socket): nothing better to go on
    if not _is_trusted(address, trusted):
        return str(address)
    entries = [entry for header in forwarded_for for entry in header.split(",")]
    for entry in reversed(entries):
        hop = _address(entry)
        if hop is None:
            break
        address = hop
        if not _is_trusted(hop, trusted):
            break
    return str(address)


def _is_trusted(address: Address, trusted: tuple[Network, ...]) -> bool:
    return any(address in network for network in trusted)


@functools.lru_cache(maxsize=4096)  # the same proxies and returning clients: parsing is a third of a beacon's own work
def _address(text: str) -> Address | None:
    """An IP address from the spellings proxies use: `a.b.c.d`, `a.b.c.d:port`, `v6`, `[v6]`, `[v6]:port`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # one client, one spelling, whichever socket family saw it
    return address
