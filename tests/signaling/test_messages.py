from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.errors import InvalidMessage, NotAMember
from signaling.ids import UserId
from signaling.members import MemberRole, PeerKind
from signaling.messages import (
    Answer,
    Bye,
    Candidate,
    Chat,
    ChatStored,
    Consent,
    Error,
    IceRestart,
    Join,
    Offer,
    PeerInfo,
    Presence,
    Recording,
    Welcome,
    chat_stored_text,
    encode,
    error_reply,
    parse,
    parse_client,
    serialise,
)
from signaling.turn import IceServer

TOKEN = "q3Vx0Jd9kQ2xvPz7yB8mR1tLs5nWc4eHa6uGf0iKoMp"
CANDIDATE = "candidate:842163049 1 udp 2122260223 192.168.1.20 54321 typ host generation 0"


def wire(sdp: str) -> list[dict[str, Any]]:
    """One valid example of every kind, as a client or the server would send it."""
    return [
        {"type": "join", "token": TOKEN, "kind": "browser", "consent_recording": True},
        {"type": "join", "token": TOKEN, "kind": "aiortc", "consult": "c-1"},
        {"type": "consent", "recording": False},
        {"type": "offer", "sdp": sdp},
        {"type": "answer", "sdp": sdp, "to": "dr-ani", "from": "dr-budi", "consult": "c-1"},
        {
            "type": "candidate",
            "candidate": CANDIDATE,
            "sdpMid": "0",
            "sdpMLineIndex": 0,
            "usernameFragment": "Abcd",
        },
        {"type": "candidate", "candidate": "", "sdpMid": "0", "sdpMLineIndex": None},
        {"type": "ice_restart", "to": "dr-ani"},
        {"type": "bye", "reason": "selesai"},
        {"type": "bye"},
        {"type": "chat", "id": str(uuid.uuid4()), "text": "Mohon kirim foto EKG\nlead II panjang"},
        {
            "type": "welcome",
            "consult": "c-1",
            "user": "dr-budi",
            "role": "specialist",
            "kind": "browser",
            "generation": 2,
            "peers": [
                {
                    "user": "dr-ani",
                    "role": "requester",
                    "kind": "aiortc",
                    "generation": 1,
                    "polite": True,
                    "offerer": True,
                    "resumed": False,
                }
            ],
            "ice_servers": [
                {"urls": ["stun:127.0.0.1:3478"]},
                {"urls": ["turn:127.0.0.1:3478"], "username": "1700000000:x", "credential": "Y3JlZA=="},
            ],
            "recording_allowed": False,
        },
        {
            "type": "presence",
            "consult": "c-1",
            "user": "dr-ani",
            "role": "requester",
            "state": "joined",
            "generation": 3,
            "kind": "browser",
            "polite": False,
            "offerer": False,
        },
        {
            "type": "presence",
            "consult": "c-1",
            "user": "dr-ani",
            "role": "requester",
            "state": "left",
            "generation": 3,
        },
        {"type": "recording", "consult": "c-1", "allowed": True},
        {"type": "error", "code": "invalid_message", "message": "must be a string", "field": "sdp"},
        {"type": "error", "code": "room_closed", "message": "closed", "field": None},
        {"type": "join", "token": TOKEN, "kind": "aiortc", "keep": ["dr-budi"]},
        {"type": "presence", "consult": "c-1", "user": "dr-ani", "role": "requester", "state": "reconnecting", "generation": 3},
        {
            "type": "presence", "consult": "c-1", "user": "dr-ani", "role": "requester", "state": "joined",
            "generation": 4, "kind": "aiortc", "polite": False, "offerer": True, "resumed": True,
        },
        {"type": "ping"},
        {"type": "pong"},
        {"type": "chat_stored", "id": "0f8c2a47-2c1e-4b7a-9d3e-5b0c6a1f2e3d"},
        {"type": "error", "code": "chat_outcome_unknown", "message": "send it again", "field": "id", "chat": "m-1"},
    ]


def test_every_kind_parses_and_round_trips(sdp_offer: str) -> None:
    for example in wire(sdp_offer):
        message = parse(json.dumps(example))
        assert message.type == example["type"]
        assert serialise(message) == example
        assert parse(example) == message
        assert parse(encode(message).encode()) == message


def test_parsed_values_are_typed(sdp_offer: str) -> None:
    join = parse({"type": "join", "token": TOKEN, "kind": "aiortc"})
    assert join == Join(TOKEN, PeerKind.AIORTC)
    assert TOKEN not in repr(join)
    answer = parse({"type": "answer", "sdp": sdp_offer, "from": "dr-budi"})
    assert answer == Answer(sdp_offer, sender=UserId("dr-budi"))
    candidate = parse({"type": "candidate", "candidate": CANDIDATE, "sdpMLineIndex": 1})
    assert candidate == Candidate(CANDIDATE, sdp_mline_index=1)
    assert not candidate.end_of_candidates
    assert parse({"type": "ice_restart"}) == IceRestart()
    assert parse({"type": "consent", "recording": True}) == Consent(True)
    assert parse({"type": "bye"}) == Bye()
    welcome = parse(wire(sdp_offer)[11])
    assert isinstance(welcome, Welcome)
    assert welcome.peers == (
        PeerInfo("dr-ani", MemberRole.REQUESTER, PeerKind.AIORTC, 1, True, True),  # type: ignore[arg-type]
    )
    assert welcome.ice_servers[1] == IceServer(("turn:127.0.0.1:3478",), "1700000000:x", "Y3JlZA==")
    assert parse(wire(sdp_offer)[13]) == Presence("c-1", "dr-ani", MemberRole.REQUESTER, "left", 3)  # type: ignore[arg-type]
    assert parse(wire(sdp_offer)[14]) == Recording("c-1", True)  # type: ignore[arg-type]


def test_end_of_candidates_as_null_or_empty() -> None:
    for value in (None, ""):
        message = parse({"type": "candidate", "candidate": value, "sdpMid": "0"})
        assert isinstance(message, Candidate)
        assert message.end_of_candidates
        assert serialise(message)["candidate"] == ""  # browsers read "" as end-of-candidates
    everything = parse({"type": "candidate", "candidate": None})
    assert isinstance(everything, Candidate) and everything.end_of_candidates


def test_ice_server_urls_may_be_a_single_string(sdp_offer: str) -> None:
    example = wire(sdp_offer)[11]
    example["ice_servers"] = [{"urls": "stun:127.0.0.1:3478"}]
    welcome = parse(example)
    assert isinstance(welcome, Welcome)
    assert welcome.ice_servers == (IceServer(("stun:127.0.0.1:3478",)),)


def refused(raw: Any) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as info:
        parse(raw)
    assert info.value.code == "invalid_message"
    return info.value


def test_whole_message_size_limit(sdp_offer: str) -> None:
    chat = json.dumps({"type": "chat", "id": uuid.uuid4().hex, "text": "x"})
    big = chat[:-1] + " " * (96 * 1024 - len(chat)) + "}"
    assert len(big) == 96 * 1024
    assert isinstance(parse(big), Chat)  # exactly at the limit is fine
    for raw in (big + " ", (big + " ").encode()):
        error = refused(raw)
        assert error.field is None and "98304 bytes" in error.reason
    # counted in UTF-8 bytes: fewer characters than the limit, more bytes
    multibyte = '{"type":"chat","id":"m1","text":"ééé"}' + " " * (96 * 1024 - 40)
    assert len(multibyte) < 96 * 1024 < len(multibyte.encode())
    error = refused(multibyte)
    assert error.field is None and "98304 bytes" in error.reason


def test_oversized_sdp_names_the_field(sdp_offer: str) -> None:
    sdp = sdp_offer + ("a=x-pad:" + "p" * 100 + "\r\n") * 600  # ~65 KB
    assert 64 * 1024 < len(sdp) < 90 * 1024
    error = refused(json.dumps({"type": "offer", "sdp": sdp}))
    assert (error.field, error.reason) == ("sdp", "must be at most 65536 bytes")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "offer", "sdp": "hello"}, "sdp"),
        ({"type": "offer", "sdp": 42}, "sdp"),
        ({"type": "offer"}, "sdp"),
        ({"type": "candidate", "candidate": "candidate:1 1 udp 1 10.0.0.1 70000 typ host", "sdpMid": "0"}, "candidate"),
        ({"type": "candidate", "candidate": "1 1 udp 1 10.0.0.1 7000 typ host", "sdpMid": "0"}, "candidate"),
        ({"type": "candidate", "candidate": 5, "sdpMid": "0"}, "candidate"),
        ({"type": "candidate", "candidate": CANDIDATE}, "sdpMid"),
        ({"type": "candidate", "candidate": CANDIDATE, "sdpMLineIndex": "0"}, "sdpMLineIndex"),
        ({"type": "candidate", "candidate": CANDIDATE, "sdpMLineIndex": True}, "sdpMLineIndex"),
        ({"type": "candidate", "candidate": CANDIDATE, "sdpMLineIndex": -1}, "sdpMLineIndex"),
        ({"type": "candidate", "candidate": CANDIDATE, "sdpMid": 0}, "sdpMid"),
        ({"type": "candidate", "candidate": CANDIDATE, "sdpMid": "0", "foo": 1}, "foo"),
        ({"type": "chat", "id": uuid.uuid4().hex, "text": ""}, "text"),
        ({"type": "chat", "id": uuid.uuid4().hex, "text": "x" * 2001}, "text"),
        ({"type": "chat", "id": uuid.uuid4().hex, "text": ["hi"]}, "text"),
        ({"type": "chat", "id": uuid.uuid4().hex, "text": "hi", "to": 7}, "to"),
        ({"type": "chat", "id": uuid.uuid4().hex, "text": "hi", "from": ""}, "from"),
        ({"type": "chat", "id": uuid.uuid4().hex, "text": "hi", "consult": "c 1"}, "consult"),
        ({"type": "chat", "text": "hi"}, "id"),  # every chat names itself, so a resend of it is stored once
        ({"type": "chat", "id": "", "text": "hi"}, "id"),
        ({"type": "chat", "id": "x" * 65, "text": "hi"}, "id"),
        ({"type": "chat", "id": "a b", "text": "hi"}, "id"),
        ({"type": "chat", "id": 7, "text": "hi"}, "id"),
        ({"type": "chat", "id": None, "text": "hi"}, "id"),
        ({"type": "chat_stored", "id": "ü"}, "id"),
        ({"type": "error", "code": "chat_full", "message": "m", "chat": "a/b"}, "chat"),
        ({"type": "bye", "reason": "x" * 201}, "reason"),
        ({"type": "join", "token": TOKEN, "kind": "firefox"}, "kind"),
        ({"type": "join", "token": TOKEN}, "kind"),
        ({"type": "join", "token": "short", "kind": "browser"}, "token"),
        ({"type": "join", "token": TOKEN + "!", "kind": "browser"}, "token"),
        ({"type": "join", "token": TOKEN, "kind": "browser", "consent_recording": "yes"}, "consent_recording"),
        ({"type": "consent", "recording": 1}, "recording"),
        ({"type": "consent"}, "recording"),
        ({"type": "teleport"}, "type"),
        ({"type": 7}, "type"),
        ({"kind": "browser"}, "type"),
        ({"type": "presence", "consult": "c", "user": "u", "role": "requester", "state": "joined", "generation": 1}, "kind"),
        ({"type": "presence", "consult": "c", "user": "u", "role": "requester", "state": "left", "generation": 0}, "generation"),
        ({"type": "presence", "consult": "c", "user": "u", "role": "nurse", "state": "left", "generation": 1}, "role"),
        ({"type": "error", "code": "Bad Code", "message": "m"}, "code"),
    ],
)  # fmt: skip
def test_bad_fields_are_named(raw: dict[str, Any], field: str) -> None:
    assert refused(raw).field == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"peers": [{"user": "dr-ani"}]}, "peers[0].role"),
        ({"peers": [{"user": "dr-ani", "role": "requester", "kind": "safari", "generation": 1,
                     "polite": True, "offerer": True}]}, "peers[0].kind"),
        ({"peers": [{"user": "dr-ani", "role": "requester", "kind": "browser", "generation": 1,
                     "polite": "yes", "offerer": True}]}, "peers[0].polite"),
        ({"peers": [{"user": "dr-ani", "role": "requester", "kind": "browser", "generation": 1,
                     "polite": True, "offerer": True, "type": "x"}]}, "peers[0].type"),
        ({"peers": {}}, "peers"),
        ({"ice_servers": [{"urls": ["http://example.org"]}]}, "ice_servers[0].urls[0]"),
        ({"ice_servers": [{"urls": ["turn:t.example"]}]}, "ice_servers[0].credential"),
        ({"ice_servers": [{"urls": 5}]}, "ice_servers[0].urls"),
        ({"ice_servers": ["stun:x"]}, "ice_servers[0]"),
        ({"ice_servers": [{"urls": ["stun:x"], "credentialType": "password"}]},
         "ice_servers[0].credentialType"),
        ({"generation": 1.5}, "generation"),
    ],
)  # fmt: skip
def test_nested_errors_carry_the_path(sdp_offer: str, change: dict[str, Any], field: str) -> None:
    example = {**wire(sdp_offer)[11], **change}
    assert refused(example).field == field


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '"offer"',
        '{"type": "chat", "id": "m1", "text": NaN}',
        b'{"type": "chat", "id": "m1", "text": "\xff"}',
        "[" * 100_000,
    ],
)
def test_not_a_json_object(raw: str | bytes) -> None:
    assert refused(raw).field is None


def test_duplicate_keys_are_refused() -> None:
    error = refused('{"type": "chat", "id": "m1", "text": "hi", "from": "dr-ani", "from": "dr-budi"}')
    assert (error.field, error.reason) == ("from", "appears twice")


def test_parse_client_refuses_server_kinds(sdp_offer: str) -> None:
    for example in wire(sdp_offer):
        if example["type"] in ("welcome", "presence", "recording", "error", "pong", "chat_stored"):
            with pytest.raises(InvalidMessage) as info:
                parse_client(example)
            assert info.value.field == "type"
        else:
            assert parse_client(example).type == example["type"]


def test_error_reply_from_a_domain_error() -> None:
    reply = error_reply(NotAMember("dr-x", field="to"))
    assert reply == Error("not_a_member", "'dr-x' is not a member of this room", "to")
    assert serialise(reply) == {
        "type": "error",
        "code": "not_a_member",
        "message": "'dr-x' is not a member of this room",
        "field": "to",
    }


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(InvalidMessage) as info:
        Chat("x" * 2001, id="m1")
    assert info.value.field == "text"
    with pytest.raises(InvalidMessage) as info:
        Offer("v=0\r\n")
    assert info.value.field == "sdp"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
KEYS = st.sampled_from(
    ["type", "sdp", "candidate", "sdpMid", "sdpMLineIndex", "text", "to", "from", "consult",
     "token", "kind", "recording", "peers", "ice_servers", "generation", "state", "role", "id", "chat"]
)  # fmt: skip
TYPES = st.sampled_from(
    ["join", "consent", "offer", "answer", "candidate", "ice_restart", "bye", "chat",
     "welcome", "presence", "recording", "error", "chat_stored", "other"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(kind=TYPES, fields=st.dictionaries(KEYS, JSON, max_size=6))
def test_parse_fails_only_with_invalid_message(kind: str, fields: dict[str, Any]) -> None:
    raw = {**fields, "type": kind}
    try:
        message = parse(json.dumps(raw))
    except InvalidMessage:
        return
    assert parse(serialise(message)) == message


@given(chat_id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
def test_the_chat_stored_answer_built_directly_is_the_encoded_message(chat_id: str) -> None:
    assert chat_stored_text(chat_id) == encode(ChatStored(chat_id))
    assert parse(chat_stored_text(chat_id)) == ChatStored(chat_id)
