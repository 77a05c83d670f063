"""Identifier types that must not be mixed up."""

from __future__ import annotations

from typing import NewType

__all__ = ["ConsultId", "UserId"]

#: A consult's id; a room is identified by its consult's id.
ConsultId = NewType("ConsultId", str)
#: A user's id (puskesmas doctor, specialist, admin, or the recorder's service user).
UserId = NewType("UserId", str)
