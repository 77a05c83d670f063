"""The ``quality`` message: what a sender sends over its link (video, audio only, writing only) and the frames a second
it decodes; relayed to the named member, never kept for an absent one (a link's state is stale when they are back)."""

from __future__ import annotations

import pytest

from signaling.errors import InvalidMessage
from signaling.messages import Quality, encode, parse
from tests.signaling.test_room import ANI, BUDI, C1, SEC, T0, World, world  # noqa: F401 - the fixture


def test_a_quality_message_round_trips() -> None:
    message = parse('{"type": "quality", "mode": "audio_only", "fps": 3.5, "to": "dr-budi-sp"}')
    assert message == Quality("audio_only", 3.5, to=BUDI)
    assert parse(encode(message)) == message
    assert parse('{"type": "quality", "mode": "text_only"}') == Quality("text_only")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"type": "quality", "mode": "hd"}', "mode"),
        ('{"type": "quality"}', "mode"),
        ('{"type": "quality", "mode": "video", "fps": -1}', "fps"),
        ('{"type": "quality", "mode": "video", "fps": "30"}', "fps"),
        ('{"type": "quality", "mode": "video", "fps": true}', "fps"),
        ('{"type": "quality", "mode": "video", "bitrate": 1}', "bitrate"),
    ],
)
def test_a_bad_quality_message_names_its_field(raw: str, field: str) -> None:
    with pytest.raises(InvalidMessage) as error:
        parse(raw)
    assert error.value.field == field


def test_quality_is_relayed_to_the_other_doctor_and_not_kept_while_away(world: World) -> None:  # noqa: F811
    world.join(ANI)
    world.join(BUDI)
    [delivery] = world.room.route(ANI, 1, Quality("audio_only", 12.0, to=BUDI), T0 + SEC)
    assert delivery.recipient == BUDI and delivery.message == Quality("audio_only", 12.0, to=BUDI, sender=ANI, consult=C1)
    world.room.leave(BUDI, 1, T0 + 2 * SEC)
    assert world.room.route(ANI, 1, Quality("text_only", to=BUDI), T0 + 3 * SEC) == []
    assert world.room.queued(BUDI) == 0
