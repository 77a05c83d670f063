"""A live socket's event audience: the tags its user receives, held as small as thousands of sockets need."""

from __future__ import annotations

from server.live import audience_of
from server.roles import Role
from server.users import User


def crew(user_id: int, unit: str) -> User:
    return User(user_id, f"crew-{unit}", "", Role.FIELD_TEAM, unit, None, (), False)


def test_each_socket_holds_its_tags_once_in_a_tuple_sharing_the_strings_of_its_role_and_user() -> None:
    first, second = audience_of(crew(7, "amb-1")), audience_of(crew(8, "amb-2"))
    assert first == ("role:field_team", "unit:amb-1", "user:7")
    assert second == ("role:field_team", "unit:amb-2", "user:8")
    assert first[0] is second[0]  # one string for every phone of the role
    again = audience_of(crew(7, "amb-1"))  # the same crew's second socket
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert audience_of(crew(7, "amb-1"), "role:operator", "user:7") == ("role:field_team", "role:operator", "unit:amb-1", "user:7")
