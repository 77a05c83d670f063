"""The consult pages learn from /api/web-config whether to connect relay-only and how far their video may go; a
relay-only setting without a TURN server to relay through is refused at start."""

from __future__ import annotations

import dataclasses

import pytest

from server.config import ConfigError, IceSettings, MediaSettings, load_config
from tests.conftest import Api, app_config, start_api
from tests.server.test_consults import close_api


async def test_web_config_tells_the_pages_the_ice_policy_and_media_limits(api: Api, demo_dsn: str) -> None:
    status, body = await api.call("GET", "/api/web-config")
    assert status == 200 and body["media"] == {"ice_transport_policy": "all", "max_bitrate": 1_500_000, "min_fps": 10.0}
    ice = IceSettings(turn_urls=("turn:127.0.0.1:3478?transport=udp",), turn_secret="s3cret", relay_only=True)
    config = dataclasses.replace(app_config(demo_dsn), ice=ice, media=MediaSettings(max_bitrate=400_000, min_fps=5.0))
    relay = await start_api(demo_dsn, config)
    try:
        status, body = await relay.call("GET", "/api/web-config")
        assert status == 200 and body["media"] == {"ice_transport_policy": "relay", "max_bitrate": 400_000, "min_fps": 5.0}
    finally:
        await close_api(relay)


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"PSC119_ICE_RELAY_ONLY": "true"}, "ice.relay_only"),
        ({"PSC119_MEDIA_MIN_FPS": "0.5"}, "media.min_fps"),
        ({"PSC119_MEDIA_MAX_BITRATE": "1000"}, "media.max_bitrate"),
    ],
)
def test_weak_link_settings_out_of_range_are_refused_by_name(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ)
    assert info.value.key == key
