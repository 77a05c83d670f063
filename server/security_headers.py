"""Security headers on every response: what a browser may load, frame and send along.

The Content-Security-Policy admits only this origin's own files, plus images from
the map tile host named by ``web.tile_url``; the pages have no inline script or
style and no ``eval``, so nothing else is needed. ``'self'`` also covers the
pages' ``ws:``/``wss:`` sockets to this origin. Camera and microphone (video
consults) and geolocation (the field phone) are allowed to this origin only.
HSTS is sent only when ``server.hsts_max_age_s`` says the server is reached
over TLS: sent over plain HTTP it would do nothing, and once a browser has it,
plain HTTP is refused for that long.

The headers are built once from the config at start-up; a response that set one
of them itself (a stricter one) keeps its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web

from server.config import Config, ConfigError


def tile_source(tile_url: str) -> str | None:
    """The CSP source for ``tile_url``'s host; None for tiles served by this origin or no tiles.

    Labels up to a placeholder in the host (``https://{s}.tile.example.org/...``) become ``*``.
    """
    if not tile_url or tile_url.startswith("/"):
        return None
    parts = urlsplit(tile_url)
    labels = parts.netloc.split(".")
    templated = [i for i, label in enumerate(labels) if "{" in label or "}" in label]
    if templated:
        labels = ["*", *labels[templated[-1] + 1:]]
        if len(labels) < 3:
            raise ConfigError("web.tile_url", "a {placeholder} may not stand in the host's domain name")
    return f"{parts.scheme}://{'.'.join(labels)}"


def content_security_policy(config: Config) -> str:
    images = ["'self'"]
    tiles = tile_source(config.web.tile_url)
    if tiles is not None:
        # Leaflet cancels the download of a tile it drops by pointing it at a one-pixel data: GIF.
        images += [tiles, "data:"]
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": images,
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def headers_for(config: Config) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(config),
        "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(self), payment=(), usb=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if config.server.hsts_max_age_s > 0:
        headers["Strict-Transport-Security"] = f"max-age={config.server.hsts_max_age_s}"
    return headers


def setup(app: web.Application, config: Config) -> None:
    headers: Mapping[str, str] = headers_for(config)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)

    app.on_response_prepare.append(add_headers)
