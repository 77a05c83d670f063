"""Pin the host addresses an aiortc peer offers as ICE candidates.

aioice gathers host candidates from every interface
(`aioice.ice.get_host_addresses`) and never offers 127.0.0.1. That is wrong for
two uses of ours: tests in a loopback-only network namespace (the only usable
address *is* 127.0.0.1), and a kiosk or server that must use one interface.

aioice offers no setting for this, so `install` replaces the module function
``aioice.ice.get_host_addresses`` (looked up at gather time by
``Connection.gather_candidates``, its only caller) with a wrapper that reads a
context variable. The wrapper keeps aioice's behaviour unless the running
context pinned addresses with `pin`; contexts propagate to the tasks aiortc
creates while gathering, so each peer's own task decides for itself and two
peers in one process do not interfere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from contextvars import ContextVar, Token

import aioice.ice

__all__ = ["check_addresses", "install", "pin", "unpin"]

_PINNED: ContextVar[tuple[str, ...] | None] = ContextVar("psc119_ice_host_addresses", default=None)
_ORIGINAL = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    pinned = _PINNED.get()
    if pinned is None:
        return _ORIGINAL(use_ipv4, use_ipv6)
    wanted = []
    for address in pinned:
        version = ipaddress.ip_address(address).version
        if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
            wanted.append(address)
    return wanted


def install() -> None:
    """Put the wrapper in place (idempotent; without `pin` nothing changes)."""
    aioice.ice.get_host_addresses = _host_addresses


def check_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """The addresses as a tuple, or ValueError naming one that is not an IP address."""
    result = []
    for address in addresses:
        try:
            result.append(str(ipaddress.ip_address(address)))
        except ValueError:
            raise ValueError(f"ICE host address {address!r} is not an IP address") from None
    if not result:
        raise ValueError("give at least one ICE host address (or none to use every interface)")
    return tuple(result)


def pin(addresses: Sequence[str] | None) -> Token[tuple[str, ...] | None]:
    """From now on in this context (and tasks it creates), gather host candidates
    on ``addresses`` only; None restores aioice's choice. Undo with `unpin`."""
    install()
    return _PINNED.set(None if addresses is None else check_addresses(addresses))


def unpin(token: Token[tuple[str, ...] | None]) -> None:
    _PINNED.reset(token)
