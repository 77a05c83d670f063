"""Roles, and what each route declares about who may use it."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    OPERATOR = "operator"
    FIELD_TEAM = "field_team"
    PUSKESMAS = "puskesmas"
    SPECIALIST = "specialist"
    HOSPITAL = "hospital"
    ADMIN = "admin"


ALL_ROLES = frozenset(Role)
# Marks a route that needs no session at all (login, health, static files).
PUBLIC: frozenset[Role] = frozenset()
