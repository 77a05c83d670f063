"""The client address rule: X-Forwarded-For only from trusted proxies, read right to left."""

from __future__ import annotations

import pytest

from server.client_address import networks, resolve

PROXIES = networks(("10.0.0.0/24", "fd00::/64"))


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # untrusted peer: the header is the client's own words
        ("10.0.0.5", [], "10.0.0.5"),  # a trusted proxy that sent no header is itself the client
        ("10.0.0.5", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.5", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # a forged left part is never reached
        ("10.0.0.5", ["198.51.100.1, 10.0.0.7"], "198.51.100.1"),  # a chain of trusted proxies is skipped
        ("10.0.0.5", ["6.6.6.6", "198.51.100.1 , 10.0.0.7"], "198.51.100.1"),  # several header lines read as one list
        ("10.0.0.5", ["10.0.0.8, 10.0.0.7"], "10.0.0.8"),  # all trusted: the farthest one
        ("10.0.0.5", ["198.51.100.1, garbage"], "10.0.0.5"),  # unreadable: stop at the last address vouched for
        ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
        (None, ["198.51.100.1"], None),
    ],
)
def test_resolve(peer: str | None, headers: list[str], client: str | None) -> None:
    assert resolve(peer, headers, PROXIES) == client


def test_no_trusted_proxies_means_the_peer_always() -> None:
    assert resolve("127.0.0.1", ["198.51.100.1"], networks(())) == "127.0.0.1"
