"""A join carried in the websocket handshake's subprotocols: what a client offers, and what a server reads back."""

from __future__ import annotations

import json

import pytest

from signaling.errors import InvalidMessage
from signaling.handshake_join import MAX_VALUE_CHARS, PROTOCOL, join_text, offered

JOIN = json.dumps({"type": "join", "token": "A" * 43, "kind": "browser", "keep": ["7"]})


@pytest.mark.parametrize("text", [JOIN, json.dumps({"type": "join", "token": "é" * 20, "kind": "aiortc"}, ensure_ascii=False)])
def test_an_offered_join_reads_back_unchanged(text: str) -> None:
    protocols = offered(text)
    assert protocols[0] == PROTOCOL
    assert all(c.isalnum() or c in "-_." for c in protocols[1])  # an HTTP token: no JSON punctuation, no padding
    assert join_text(protocols) == text
    assert join_text([", ".join(protocols)]) == text  # one header listing both, as browsers send it


@pytest.mark.parametrize("headers", [[], ["chat, superchat"], [offered(JOIN)[1]], [PROTOCOL]])
def test_without_the_protocol_and_a_join_there_is_none(headers: list[str]) -> None:
    assert join_text(headers) is None


@pytest.mark.parametrize("headers", [
    [PROTOCOL, "join.not!base64"],
    [PROTOCOL, "join.//8"],  # base64url of bytes that are not UTF-8
    [PROTOCOL, offered(JOIN)[1], offered("{}")[1]],  # two joins
    [PROTOCOL, "join." + "A" * (MAX_VALUE_CHARS + 4)],
])
def test_a_malformed_join_is_refused_naming_the_field(headers: list[str]) -> None:
    with pytest.raises(InvalidMessage) as refused:
        join_text(headers)
    assert refused.value.field == "join"
