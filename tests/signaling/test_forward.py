"""A relayed message is forwarded as the sender's own frame plus the room's envelope, and says exactly what the
message re-encoded would say: same JSON value, the room's ``from`` whatever the sender wrote."""

from __future__ import annotations

import json

import pytest

from signaling.forward import forwarded
from signaling.ids import ConsultId, UserId
from signaling.messages import encode, parse, parse_client, stamped

SENDER, RECIPIENT, CONSULT = UserId("7"), UserId("9"), ConsultId("c0ffee")
CANDIDATE = "candidate:842163049 1 udp 2122260223 127.0.0.1 54321 typ host generation 0"
SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def relayed(frame: str | bytes) -> tuple[str, str]:
    """(the forwarded text, the stamped message encoded anew) of ``frame`` sent by SENDER to RECIPIENT."""
    data = json.loads(frame)
    message = stamped(parse_client(data), sender=SENDER, consult=CONSULT, to=RECIPIENT)  # type: ignore[type-var]
    return forwarded(message, frame, data), encode(message)


FRAMES = [
    f'{{"type": "candidate", "candidate": "{CANDIDATE}", "sdpMid": "0", "sdpMLineIndex": 0}}',
    f'{{"sdpMLineIndex":0,"type":"candidate","candidate":"{CANDIDATE}","sdpMid":null}}',
    f'{{"type":"offer","sdp":{json.dumps(SDP)}}}\r\n ',
    f'{{"type":"answer","sdp":{json.dumps(SDP)},"to":"9","consult":"c0ffee"}}',
    '{"type":"chat","id":"m1","text":"EKG terlampir \\u00e9 \\ud83d\\ude00 \\"kutip\\""}',
    '{"type":"ice_restart"}',
    '{"type":"quality","mode":"audio_only","fps":12.5}',
    '{"type":"bye","reason":"selesai"}',
]


@pytest.mark.parametrize("frame", FRAMES)
def test_a_forwarded_frame_reads_as_the_message_encoded_anew(frame: str) -> None:
    text, anew = relayed(frame)
    assert json.loads(text) == json.loads(anew)
    assert parse(text) == parse(anew)
    assert json.loads(text)["from"] == SENDER


def test_the_frame_is_forwarded_as_sent_with_only_the_envelope_appended() -> None:
    frame = f'{{"type": "candidate", "candidate": "{CANDIDATE}", "sdpMid": "0", "sdpMLineIndex": 0}}'
    text, _ = relayed(frame + "\n")
    assert text == frame[:-1] + ',"to":"9","from":"7","consult":"c0ffee"}'


def test_an_envelope_the_sender_wrote_as_the_room_would_is_not_written_twice() -> None:
    text, _ = relayed('{"type":"chat","id":"m1","text":"halo","consult":"c0ffee","to":"9"}')
    assert text == '{"type":"chat","id":"m1","text":"halo","consult":"c0ffee","to":"9","from":"7"}'


@pytest.mark.parametrize("forged", ['"7"', '"9"', '"someone-else"'])
def test_a_from_written_by_the_sender_never_reaches_the_recipient(forged: str) -> None:
    text, anew = relayed(f'{{"type":"chat","id":"m1","text":"saya dokter lain","from":{forged}}}')
    assert text == anew  # encoded anew: the room's "from" alone
    assert text.count('"from"') == 1
    assert json.loads(text)["from"] == SENDER


@pytest.mark.parametrize("frame", [
    '{"type":"candidate","candidate":null,"sdpMid":"0"}',  # read as "" (end of candidates)
    f'{{"type":"candidate","candidate":"{CANDIDATE}","sdpMid":"0","usernameFragment":null}}',  # left out
    '{"type":"chat","id":"m1","text":"halo","to":null}',  # the room names the recipient
    b'{"type":"chat","id":"m1","text":"halo"}',  # a binary frame: the recipient gets text
])
def test_what_encoding_would_change_is_encoded_anew(frame: str | bytes) -> None:
    text, anew = relayed(frame)
    assert text == anew
