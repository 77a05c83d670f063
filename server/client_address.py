"""Who is on the other end of a request: the one place the whole app decides a client's address.

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only
when the immediate peer is one of ``server.trusted_proxies``. Then the header is read
right to left (each proxy appends the address it saw), skipping trusted proxies; the
first address that is not a trusted proxy is the client. Anything a client put in the
header itself sits further left and is never reached.
"""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

from server.keys import CONFIG

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def resolve(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str | None:
    """The client's address given the TCP peer and the ``X-Forwarded-For`` header values, in order."""
    if peer is None or not is_trusted(peer, trusted):
        return peer
    client = peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:
            break  # a trusted proxy never writes this: stop at the last address we can vouch for
        if not is_trusted(client, trusted):
            break
    return client


def client_address(request: web.Request) -> str | None:
    trusted = networks(request.app[CONFIG].server.trusted_proxies)
    return resolve(request.remote, request.headers.getall("X-Forwarded-For", []), trusted)
