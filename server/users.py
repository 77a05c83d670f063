"""User accounts: the repository behind the CLI and the auth routes."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import asyncpg

from server import audit
from server.errors import Conflict, InvalidField, NotFound
from server.passwords import Passwords
from server.roles import Role
from signaling.specialty import Specialty

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
# The roles bound to one facility, and the kind of facility each works at.
FACILITY_KIND = {Role.PUSKESMAS: "puskesmas", Role.HOSPITAL: "hospital"}


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    unit_id: str | None
    facility_code: str | None
    specialties: tuple[str, ...]
    disabled: bool

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> User:
        return cls(
            id=row["id"],
            username=row["username"],
            display_name=row["display_name"],
            role=Role(row["role"]),
            unit_id=row["unit_id"],
            facility_code=row["facility_code"],
            specialties=tuple(row["specialties"]),
            disabled=row["disabled_at"] is not None,
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role.value,
            "unit_id": self.unit_id,
            "facility_code": self.facility_code,
            "specialties": list(self.specialties),
            "disabled": self.disabled,
        }


COLUMNS = "id, username, display_name, role, unit_id, facility_code, specialties, disabled_at"


async def add_user(
    con: asyncpg.Connection,
    passwords: Passwords,
    *,
    actor: audit.Actor,
    username: str,
    role: str,
    password: str,
    min_password_length: int,
    unit: str | None = None,
    facility: str | None = None,
    specialties: tuple[str, ...] = (),
    display_name: str = "",
) -> User:
    if not USERNAME.match(username):
        raise InvalidField("2-63 characters: lowercase letters, digits, '.', '_' or '-'", field="username")
    try:
        role_value = Role(role)
    except ValueError:
        raise InvalidField(f"unknown role; one of {', '.join(r.value for r in Role)}", field="role") from None
    if len(password) < min_password_length:
        raise InvalidField(f"must be at least {min_password_length} characters", field="password")
    if (role_value is Role.FIELD_TEAM) != (unit is not None):
        raise InvalidField("a field_team account needs --unit, and only it", field="unit")
    facility_kind = FACILITY_KIND.get(role_value)
    if (facility_kind is not None) != (facility is not None):
        raise InvalidField("a puskesmas or hospital account needs --facility, and only it", field="facility")
    if role_value is Role.SPECIALIST and not specialties:
        raise InvalidField("a specialist needs at least one --specialty", field="specialty")
    if specialties and role_value is not Role.SPECIALIST:
        raise InvalidField("only a specialist account takes --specialty", field="specialty")
    known = {s.value for s in Specialty}
    for s in specialties:
        if s not in known:
            raise InvalidField(f"unknown specialty {s[:40]!r}; one of {', '.join(sorted(known))}", field="specialty")
    unit_id = None
    if unit is not None:
        unit_id = await con.fetchval("SELECT id FROM units WHERE id = $1 OR callsign = $1", unit)
        if unit_id is None:
            raise InvalidField(f"no unit with id or callsign {unit!r}", field="unit")
    if facility is not None:
        kind = await con.fetchval("SELECT kind FROM facilities WHERE code = $1", facility)
        if kind != facility_kind:
            raise InvalidField(f"no {facility_kind} with code {facility!r}", field="facility")
    hashed = await passwords.hash(password)
    async with con.transaction():
        try:
            row = await con.fetchrow(
                f"""INSERT INTO users (username, display_name, role, unit_id, facility_code, specialties, password_hash)
                    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}""",
                username, display_name, role_value.value, unit_id, facility, list(specialties), hashed,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"user {username!r} already exists", field="username") from None
        user = User.from_row(row)
        await audit.record(con, actor, "user.add", f"user:{user.id}", {"username": username, "role": role_value.value})
    return user


async def list_users(con: asyncpg.Connection | asyncpg.Pool) -> list[User]:
    rows = await con.fetch(f"SELECT {COLUMNS} FROM users ORDER BY username")
    return [User.from_row(r) for r in rows]


async def disable_user(con: asyncpg.Connection, *, actor: audit.Actor, username: str) -> User:
    """Disable a user; a trigger (migration 0006) revokes their sessions, which closes their sockets.
    So does any change of a user's role, unit, facility or specialties."""
    async with con.transaction():
        row = await con.fetchrow(
            f"""UPDATE users SET disabled_at = coalesce(disabled_at, now())
                WHERE username = $1 RETURNING {COLUMNS}""",
            username,
        )
        if row is None:
            raise NotFound(f"no user {username!r}", field="username")
        user = User.from_row(row)
        await audit.record(con, actor, "user.disable", f"user:{user.id}", {"username": username})
    return user
