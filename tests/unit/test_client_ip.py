"""The client address behind the visitor id: the TCP peer, or X-Forwarded-For through trusted proxies only."""
from __future__ import annotations

import ipaddress

import pytest

from api.client_ip import client_ip

NONE: tuple = ()
PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert client_ip("203.0.113.7", ["198.51.100.1"], NONE) == "203.0.113.7"


def test_an_untrusted_peer_cannot_choose_its_address() -> None:
    assert client_ip("203.0.113.7", ["198.51.100.1"], PROXIES) == "203.0.113.7"


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        (["198.51.100.1"], "198.51.100.1"),
        (["198.51.100.1, 10.0.0.2"], "198.51.100.1"),  # through two proxies of ours
        (["6.6.6.6, 198.51.100.1, 10.0.0.2"], "198.51.100.1"),  # 6.6.6.6 is what the client claimed
        (["6.6.6.6", "198.51.100.1, 10.0.0.2"], "198.51.100.1"),  # several headers are one list, in order
        (["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # only proxies of ours: the furthest one
        ([], "10.0.0.1"),  # no header: the proxy itself
        ([""], "10.0.0.1"),
        (["198.51.100.1:5123"], "198.51.100.1"),  # proxies that append the port
        (["[2001:db8::7]:443"], "2001:db8::7"),
        (["2001:DB8::7"], "2001:db8::7"),
        (["::ffff:198.51.100.1"], "198.51.100.1"),  # one client, one spelling
        (["198.51.100.1, garbage"], "10.0.0.1"),  # a trusted proxy wrote garbage: stop at the last address we trust
        (["garbage, 198.51.100.1"], "198.51.100.1"),  # garbage the client wrote is never reached
        (["unknown, 10.0.0.2"], "10.0.0.2"),
        (["198.51.100.1,,10.0.0.2"], "10.0.0.2"),
    ],
)
def test_behind_trusted_proxies_the_right_most_untrusted_address(headers: list[str], client: str) -> None:
    assert client_ip("10.0.0.1", headers, PROXIES) == client


def test_ipv6_trusted_proxy() -> None:
    assert client_ip("fd00::1", ["198.51.100.1"], PROXIES) == "198.51.100.1"


def test_ipv4_mapped_peer_is_spelled_as_ipv4() -> None:
    assert client_ip("::ffff:203.0.113.7", [], NONE) == "203.0.113.7"


def test_a_peer_that_is_not_an_ip_is_used_as_it_is() -> None:
    assert client_ip("unix:/run/api.sock", ["198.51.100.1"], PROXIES) == "unix:/run/api.sock"
