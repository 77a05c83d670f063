"""The signaling message schema: one frozen dataclass per kind, parsed and
serialised here and nowhere else.

Every message is a JSON object with a ``"type"``. Client to server: ``join``,
``consent``, ``ping``, and the relayed kinds ``offer``, ``answer``, ``candidate``,
``ice_restart``, ``bye``, ``chat``, ``quality``. Server to client: ``welcome``, ``presence``,
``recording``, ``error``, ``pong``, ``chat_stored``, and the relayed kinds stamped with ``"from"``.

Relayed kinds share an envelope: ``"to"`` (optional recipient), ``"from"``
(set by the server; whatever a client puts there is overwritten) and
``"consult"`` (optional on the way in, must then be the room's; set on the way
out). Candidate fields use the W3C ``RTCIceCandidateInit`` names (``sdpMid``,
``sdpMLineIndex``, ``usernameFragment``) so a browser can pass the message to
``addIceCandidate`` as it is; an end-of-candidates is ``"candidate": ""``
(``null`` is accepted and read as ``""``).

Limits: a raw message at most 96 KB, an SDP at most 64 KB (and it must look like
SDP), a candidate must follow the ICE grammar, chat text at most 2000
characters and a chat ``id`` of 1-64 URL-safe characters; unknown types and unknown fields are refused, and so are values of
the wrong JSON type (``true`` is not ``1``). Every failure is `InvalidMessage`
naming the field by its wire name (``"sdpMLineIndex"``, ``"peers[0].user"``),
or ``field=None`` when the message as a whole is at fault.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias, TypeGuard, TypeVar

from . import _check
from .errors import InvalidMessage, InvalidValue, SignalingError
from .ids import ConsultId, UserId
from .members import MemberRole, PeerKind
from .sdp import check_candidate, check_sdp
from .turn import IceServer

__all__ = [
    "CLIENT_TYPES",
    "MAX_MESSAGE_BYTES",
    "RELAY_TYPES",
    "Answer",
    "Bye",
    "Candidate",
    "Chat",
    "ChatStored",
    "ClientMessage",
    "Consent",
    "Error",
    "IceRestart",
    "Join",
    "Message",
    "Offer",
    "PeerInfo",
    "Ping",
    "Pong",
    "Presence",
    "Quality",
    "Recording",
    "RelayMessage",
    "ServerMessage",
    "Welcome",
    "chat_id_of",
    "chat_stored_text",
    "encode",
    "error_reply",
    "parse",
    "parse_client",
    "serialise",
    "stamped",
]

MAX_MESSAGE_BYTES: Final = 96 * 1024
CHAT_MAX: Final = 2000
BYE_REASON_MAX: Final = 200
ERROR_MESSAGE_MAX: Final = 500
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")
# A chat's id, chosen by its sender (a UUID fits, with or without dashes).
_CHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MID = re.compile(r"[\x21-\x7e]{1,64}")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_E = InvalidMessage


def _wire(name: str, **kwargs: Any) -> Any:
    """A field whose JSON key differs from its attribute name."""
    return field(metadata={"wire": name}, **kwargs)


def _envelope(msg: Any) -> None:
    if msg.to is not None:
        _check.identifier(msg.to, "to", error=_E)
    if msg.sender is not None:
        _check.identifier(msg.sender, "from", error=_E)
    if msg.consult is not None:
        _check.identifier(msg.consult, "consult", error=_E)


def _generation(value: object, name: str = "generation") -> None:
    _check.integer(value, name, 1, 2**53, error=_E)


def _enum(value: object, enum: type[Enum], name: str) -> None:
    if not isinstance(value, enum):
        allowed = ", ".join(str(member.value) for member in enum)
        raise _E(name, f"must be one of: {allowed}")


# --- client to server -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    """``{"type": "join", "token": str, "kind": "browser"|"aiortc",
    "consent_recording"?: bool, "consult"?: str, "keep"?: [user...]}``

    ``keep``: the members towards whom this client still holds a connected
    RTCPeerConnection from before its socket dropped (a rejoin that keeps the media).
    """

    token: str = field(repr=False)
    kind: PeerKind
    consent_recording: bool | None = None
    consult: ConsultId | None = None
    keep: tuple[UserId, ...] = ()
    type: Literal["join"] = field(default="join", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not _TOKEN.fullmatch(self.token):
            raise _E("token", "must be 16-256 URL-safe characters")
        _enum(self.kind, PeerKind, "kind")
        if self.consent_recording is not None:
            _check.boolean(self.consent_recording, "consent_recording", error=_E)
        if self.consult is not None:
            _check.identifier(self.consult, "consult", error=_E)
        if not isinstance(self.keep, tuple) or len(self.keep) > 2:
            raise _E("keep", "must be a list of at most 2 members")
        for index, user in enumerate(self.keep):
            _check.identifier(user, f"keep[{index}]", error=_E)


@dataclass(frozen=True, slots=True)
class Ping:
    """``{"type": "ping"}`` — a browser's heartbeat (it cannot send websocket pings); answered with ``pong``."""

    type: Literal["ping"] = field(default="ping", init=False)


@dataclass(frozen=True, slots=True)
class Pong:
    """``{"type": "pong"}`` — the answer to a ``ping``."""

    type: Literal["pong"] = field(default="pong", init=False)


@dataclass(frozen=True, slots=True)
class Consent:
    """``{"type": "consent", "recording": bool}`` — give or withdraw consent."""

    recording: bool
    type: Literal["consent"] = field(default="consent", init=False)

    def __post_init__(self) -> None:
        _check.boolean(self.recording, "recording", error=_E)


@dataclass(frozen=True, slots=True)
class Offer:
    """``{"type": "offer", "sdp": str, "to"?, "from"?, "consult"?}``"""

    sdp: str
    to: UserId | None = field(default=None, kw_only=True)
    sender: UserId | None = _wire("from", default=None, kw_only=True)
    consult: ConsultId | None = field(default=None, kw_only=True)
    type: Literal["offer"] = field(default="offer", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.sdp, str):
            raise _E("sdp", "must be a string")
        check_sdp(self.sdp)
        _envelope(self)


@dataclass(frozen=True, slots=True)
class Answer:
    """``{"type": "answer", "sdp": str, "to"?, "from"?, "consult"?}``"""

    sdp: str
    to: UserId | None = field(default=None, kw_only=True)
    sender: UserId | None = _wire("from", default=None, kw_only=True)
    consult: ConsultId | None = field(default=None, kw_only=True)
    type: Literal["answer"] = field(default="answer", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.sdp, str):
            raise _E("sdp", "must be a string")
        check_sdp(self.sdp)
        _envelope(self)


@dataclass(frozen=True, slots=True)
class Candidate:
    """``{"type": "candidate", "candidate": str, "sdpMid": str|null,
    "sdpMLineIndex": int|null, "usernameFragment"?: str, "to"?, "from"?, "consult"?}``

    ``candidate == ""`` is an end-of-candidates (for ``sdpMid`` if given, else all).
    """

    candidate: str
    sdp_mid: str | None = _wire("sdpMid", default=None)
    sdp_mline_index: int | None = _wire("sdpMLineIndex", default=None)
    username_fragment: str | None = _wire("usernameFragment", default=None)
    to: UserId | None = field(default=None, kw_only=True)
    sender: UserId | None = _wire("from", default=None, kw_only=True)
    consult: ConsultId | None = field(default=None, kw_only=True)
    type: Literal["candidate"] = field(default="candidate", init=False)

    @property
    def end_of_candidates(self) -> bool:
        return self.candidate == ""

    def __post_init__(self) -> None:
        if not isinstance(self.candidate, str):
            raise _E("candidate", "must be a string")
        if self.candidate:
            check_candidate(self.candidate)
        if self.sdp_mid is not None and (
            not isinstance(self.sdp_mid, str) or not _MID.fullmatch(self.sdp_mid)
        ):
            raise _E("sdpMid", "must be 1-64 printable ASCII characters")
        if self.sdp_mline_index is not None:
            _check.integer(self.sdp_mline_index, "sdpMLineIndex", 0, 65535, error=_E)
        if self.candidate and self.sdp_mid is None and self.sdp_mline_index is None:
            raise _E("sdpMid", "a candidate needs sdpMid or sdpMLineIndex")
        ufrag = self.username_fragment
        if ufrag is not None and (not isinstance(ufrag, str) or not _MID.fullmatch(ufrag)):
            raise _E("usernameFragment", "must be 1-64 printable ASCII characters")
        _envelope(self)


@dataclass(frozen=True, slots=True)
class IceRestart:
    """``{"type": "ice_restart", "to"?, "from"?, "consult"?}`` — asks the pair's
    offerer to restart ICE (an aiortc offerer renegotiates on a new connection)."""

    to: UserId | None = field(default=None, kw_only=True)
    sender: UserId | None = _wire("from", default=None, kw_only=True)
    consult: ConsultId | None = field(default=None, kw_only=True)
    type: Literal["ice_restart"] = field(default="ice_restart", init=False)

    def __post_init__(self) -> None:
        _envelope(self)


@dataclass(frozen=True, slots=True)
class Bye:
    """``{"type": "bye", "reason"?: str, "to"?, "from"?, "consult"?}`` — hanging up."""

    reason: str | None = None
    to: UserId | None = field(default=None, kw_only=True)
    sender: UserId | None = _wire("from", default=None, kw_only=True)
    consult: ConsultId | None = field(default=None, kw_only=True)
    type: Literal["bye"] = field(default="bye", init=False)

    def __post_init__(self) -> None:
        _check.optional_text(self.reason, "reason", max_len=BYE_REASON_MAX, error=_E)
        _envelope(self)


def _is_chat_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _CHAT_ID.fullmatch(value) is not None


def _chat_id(value: object, name: str = "id") -> None:
    if not _is_chat_id(value):
        raise _E(name, "must be 1-64 characters of A-Z, a-z, 0-9, _ and - (the sender's id for this message)")


def chat_id_of(data: object) -> str | None:
    """The id of the chat ``data`` (a decoded message, well formed or not) names, when it names a well-formed one:
    a refusal of that chat carries it, so its sender knows which one was refused."""
    if isinstance(data, Mapping) and data.get("type") == "chat":
        value = data.get("id")
        if _is_chat_id(value):
            return value
    return None


@dataclass(frozen=True, slots=True)
class Chat:
    """``{"type": "chat", "id": str, "text": str (1..2000 chars), "to"?, "from"?, "consult"?}``

    ``id`` is chosen by the sender when the message is written (a UUID) and kept when it is sent again: the
    server stores one message per sender and id, answers a repeat as stored (``chat_stored``) and may relay it
    again, so a recipient shows one message per sender and id.
    """

    text: str
    id: str = field(kw_only=True)
    to: UserId | None = field(default=None, kw_only=True)
    sender: UserId | None = _wire("from", default=None, kw_only=True)
    consult: ConsultId | None = field(default=None, kw_only=True)
    type: Literal["chat"] = field(default="chat", init=False)

    def __post_init__(self) -> None:
        _chat_id(self.id)
        _check.text(self.text, "text", max_len=CHAT_MAX, multiline=True, error=_E)
        _envelope(self)


QUALITY_MODES: Final = ("video", "audio_only", "text_only")


@dataclass(frozen=True, slots=True)
class Quality:
    """``{"type": "quality", "mode": "video"|"audio_only"|"text_only", "fps"?: number,
    "to"?, "from"?, "consult"?}`` — what the sender sends over its weak link now (see
    `signaling.bandwidth`), and the video frames a second it decodes from the recipient."""

    mode: str
    fps: float | None = None
    to: UserId | None = field(default=None, kw_only=True)
    sender: UserId | None = _wire("from", default=None, kw_only=True)
    consult: ConsultId | None = field(default=None, kw_only=True)
    type: Literal["quality"] = field(default="quality", init=False)

    def __post_init__(self) -> None:
        if self.mode not in QUALITY_MODES:
            raise _E("mode", f"must be one of: {', '.join(QUALITY_MODES)}")
        if self.fps is not None:
            _check.number(self.fps, "fps", 0, 240, error=_E)
        _envelope(self)


# --- server to client -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A present member as seen by the recipient; ``polite`` and ``offerer`` are the
    *recipient's own* roles towards this peer (see `signaling.negotiation`);
    ``resumed``: that member's connection kept its media towards the recipient
    (its join named the recipient in ``keep``)."""

    user: UserId
    role: MemberRole
    kind: PeerKind
    generation: int
    polite: bool
    offerer: bool
    resumed: bool = False

    def __post_init__(self) -> None:
        _check.identifier(self.user, "user", error=_E)
        _enum(self.role, MemberRole, "role")
        _enum(self.kind, PeerKind, "kind")
        _generation(self.generation)
        _check.boolean(self.polite, "polite", error=_E)
        _check.boolean(self.offerer, "offerer", error=_E)
        _check.boolean(self.resumed, "resumed", error=_E)


@dataclass(frozen=True, slots=True)
class Welcome:
    """The reply to a join: who you are, who is here, and the ICE servers to use.

    ``{"type": "welcome", "consult", "user", "role", "kind", "generation",
    "peers": [PeerInfo...], "ice_servers": [RTCIceServer...], "recording_allowed"}``
    """

    consult: ConsultId
    user: UserId
    role: MemberRole
    kind: PeerKind
    generation: int
    peers: tuple[PeerInfo, ...]
    ice_servers: tuple[IceServer, ...]
    recording_allowed: bool
    type: Literal["welcome"] = field(default="welcome", init=False)

    def __post_init__(self) -> None:
        _check.identifier(self.consult, "consult", error=_E)
        _check.identifier(self.user, "user", error=_E)
        _enum(self.role, MemberRole, "role")
        _enum(self.kind, PeerKind, "kind")
        _generation(self.generation)
        if not isinstance(self.peers, tuple) or not all(
            isinstance(p, PeerInfo) for p in self.peers
        ):
            raise _E("peers", "must be a list of peers")
        if not isinstance(self.ice_servers, tuple) or not all(
            isinstance(s, IceServer) for s in self.ice_servers
        ):
            raise _E("ice_servers", "must be a list of ICE servers")
        _check.boolean(self.recording_allowed, "recording_allowed", error=_E)


@dataclass(frozen=True, slots=True)
class Presence:
    """A member joined, is reconnecting (its socket dropped; its media may still
    flow) or left. ``kind``, ``polite`` and ``offerer`` (the recipient's roles
    towards that member) come with ``joined`` only, and ``resumed`` (as in `PeerInfo`) with a
    ``joined`` that kept its media.

    ``{"type": "presence", "consult", "user", "role", "state": "joined"|"reconnecting"|"left",
    "generation", "kind"?, "polite"?, "offerer"?, "resumed"?}``
    """

    consult: ConsultId
    user: UserId
    role: MemberRole
    state: Literal["joined", "reconnecting", "left"]
    generation: int
    kind: PeerKind | None = None
    polite: bool | None = None
    offerer: bool | None = None
    resumed: bool | None = None
    type: Literal["presence"] = field(default="presence", init=False)

    def __post_init__(self) -> None:
        _check.identifier(self.consult, "consult", error=_E)
        _check.identifier(self.user, "user", error=_E)
        _enum(self.role, MemberRole, "role")
        if self.state not in ("joined", "reconnecting", "left"):
            raise _E("state", "must be one of: joined, reconnecting, left")
        _generation(self.generation)
        joined = self.state == "joined"
        for name in ("kind", "polite", "offerer"):
            if (getattr(self, name) is not None) != joined:
                raise _E(name, "is given exactly when the member joined")
        if self.resumed is not None and not joined:
            raise _E("resumed", "is given only when the member joined")
        if joined:
            _enum(self.kind, PeerKind, "kind")
            _check.boolean(self.polite, "polite", error=_E)
            _check.boolean(self.offerer, "offerer", error=_E)
            if self.resumed is not None:
                _check.boolean(self.resumed, "resumed", error=_E)


@dataclass(frozen=True, slots=True)
class Recording:
    """``{"type": "recording", "consult", "allowed": bool}`` — whether every member
    has consented (the recorder runs only while this is true)."""

    consult: ConsultId
    allowed: bool
    type: Literal["recording"] = field(default="recording", init=False)

    def __post_init__(self) -> None:
        _check.identifier(self.consult, "consult", error=_E)
        _check.boolean(self.allowed, "allowed", error=_E)


@dataclass(frozen=True, slots=True)
class ChatStored:
    """``{"type": "chat_stored", "id": str}`` — the sender's chat of this id is stored (its first sending or a
    repeat of it); a chat without this answer may be sent again with the same id."""

    id: str
    type: Literal["chat_stored"] = field(default="chat_stored", init=False)

    def __post_init__(self) -> None:
        _chat_id(self.id)


@dataclass(frozen=True, slots=True)
class Error:
    """``{"type": "error", "code": str, "message": str, "field": str|null, "chat"?: str}``;
    ``code`` is a `SignalingError.code` (``"invalid_message"``, ``"not_a_member"``...); ``chat``, the id of the
    sender's chat it answers, when it answers one."""

    code: str
    message: str
    field: str | None = None
    chat: str | None = None
    type: Literal["error"] = dataclasses.field(default="error", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code):
            raise _E("code", "must be a snake_case code")
        _check.text(self.message, "message", max_len=ERROR_MESSAGE_MAX, error=_E)
        _check.optional_text(self.field, "field", max_len=200, error=_E)
        if self.chat is not None:
            _chat_id(self.chat, "chat")


RelayMessage: TypeAlias = Offer | Answer | Candidate | IceRestart | Bye | Chat | Quality
ClientMessage: TypeAlias = Join | Consent | Ping | RelayMessage
ServerMessage: TypeAlias = Welcome | Presence | Recording | Error | Pong | ChatStored
Message: TypeAlias = ClientMessage | ServerMessage

_KINDS: Final[Mapping[str, type[Message]]] = {
    "join": Join,
    "consent": Consent,
    "offer": Offer,
    "answer": Answer,
    "candidate": Candidate,
    "ice_restart": IceRestart,
    "bye": Bye,
    "chat": Chat,
    "quality": Quality,
    "welcome": Welcome,
    "presence": Presence,
    "recording": Recording,
    "error": Error,
    "ping": Ping,
    "pong": Pong,
    "chat_stored": ChatStored,
}
RELAY_TYPES: Final = frozenset({"offer", "answer", "candidate", "ice_restart", "bye", "chat", "quality"})
CLIENT_TYPES: Final = RELAY_TYPES | {"join", "consent", "ping"}


# --- parse ------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidMessage(key, "appears twice")
        result[key] = value
    return result


def _no_constants(name: str) -> object:
    raise InvalidMessage(None, f"{name} is not valid JSON")


def _load(raw: str | bytes | bytearray) -> object:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(None, f"message must be at most {MAX_MESSAGE_BYTES} bytes")
    if isinstance(raw, str):
        if len(raw.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
            raise InvalidMessage(None, f"message must be at most {MAX_MESSAGE_BYTES} bytes")
        text = raw
    else:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidMessage(None, "message must be UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise InvalidMessage(None, "message must be valid JSON") from None


def _peer(value: object, path: str) -> PeerInfo:
    peer: PeerInfo = _build(PeerInfo, value, path)
    return peer


def _ice_server(value: object, path: str) -> IceServer:
    if not isinstance(value, Mapping):
        raise InvalidMessage(path, "must be an object")
    for key in value:
        if key not in ("urls", "username", "credential"):
            raise InvalidMessage(f"{path}.{key}", "unknown field")
    urls = value.get("urls")
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list):
        raise InvalidMessage(f"{path}.urls", "must be a string or a list of strings")
    try:
        return IceServer(tuple(urls), value.get("username"), value.get("credential"))
    except InvalidMessage:
        raise
    except InvalidValue as exc:
        raise InvalidMessage(f"{path}.{exc.field}", exc.reason) from None


def _list(value: object, path: str, item: Callable[[object, str], Any]) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise InvalidMessage(path, "must be a list")
    return tuple(item(element, f"{path}[{index}]") for index, element in enumerate(value))


_DECODE: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "kind": lambda v, p: _check.choice(PeerKind, v, p, error=_E),
    "role": lambda v, p: _check.choice(MemberRole, v, p, error=_E),
    "peers": lambda v, p: _list(v, p, _peer),
    "ice_servers": lambda v, p: _list(v, p, _ice_server),
    "keep": lambda v, p: _list(v, p, lambda u, _: u),
}


_INIT_FIELDS: dict[type[Any], Mapping[str, dataclasses.Field[Any]]] = {}


def _init_fields(cls: type[Any]) -> Mapping[str, dataclasses.Field[Any]]:
    """The fields a message of ``cls`` is built from, by wire name (read once per kind)."""
    known = _INIT_FIELDS.get(cls)
    if known is None:
        known = _INIT_FIELDS[cls] = MappingProxyType({f.metadata.get("wire", f.name): f for f in dataclasses.fields(cls) if f.init})
    return known


def _build(cls: type[Any], data: object, path: str = "") -> Any:
    """Construct ``cls`` from a JSON object; ``__post_init__`` checks every value."""
    if not isinstance(data, Mapping):
        raise InvalidMessage(path or None, "must be a JSON object")
    prefix = f"{path}." if path else ""
    by_wire = _init_fields(cls)
    for key in data:
        if key != "type" or path:
            if key not in by_wire:
                raise InvalidMessage(f"{prefix}{key}", "unknown field")
    kwargs: dict[str, Any] = {}
    for wire, f in by_wire.items():
        if wire not in data:
            if f.default is dataclasses.MISSING:
                raise InvalidMessage(f"{prefix}{wire}", "is required")
            continue
        value = data[wire]
        decode = _DECODE.get(f.name)
        if decode is not None and value is not None:
            value = decode(value, f"{prefix}{wire}")
        kwargs[f.name] = value
    if cls is Candidate and kwargs.get("candidate", "") is None:
        kwargs["candidate"] = ""  # null is an end-of-candidates too
    try:
        return cls(**kwargs)
    except InvalidValue as exc:
        if not path:
            raise
        name = path if exc.field is None else f"{path}.{exc.field}"
        raise InvalidMessage(name, exc.reason) from None


def parse(raw: str | bytes | bytearray | Mapping[str, object]) -> Message:
    """Parse any message kind from raw JSON text/bytes (size-checked) or a decoded
    object. Pass the raw frame when there is one, so the 96 KB cap applies."""
    data = raw if isinstance(raw, Mapping) else _load(raw)
    if not isinstance(data, Mapping):
        raise InvalidMessage(None, "message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise InvalidMessage("type", "is required and must be a string")
    cls = _KINDS.get(kind)
    if cls is None:
        raise InvalidMessage("type", f"unknown message type {kind[:40]!r}")
    message: Message = _build(cls, data)
    return message


def parse_client(raw: str | bytes | bytearray | Mapping[str, object]) -> ClientMessage:
    """Like `parse`, but only the kinds a client may send."""
    message = parse(raw)
    if isinstance(message, (Welcome, Presence, Recording, Error, Pong, ChatStored)):
        raise InvalidMessage("type", f"{message.type!r} is sent by the server only")
    return message


# --- serialise --------------------------------------------------------------------

_KEEP_NULL: Final = frozenset({"sdpMid", "sdpMLineIndex", "field"})
# Left out while empty, so a join that keeps nothing reads as before.
_OMIT_EMPTY: Final = frozenset({"keep"})


def _encode_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, IceServer):
        return value.to_dict()
    if isinstance(value, PeerInfo):
        return serialise(value)
    if isinstance(value, tuple):
        return [_encode_value(v) for v in value]
    return value


_WIRE_FIELDS: dict[type[Any], tuple[tuple[str, str, bool, bool], ...]] = {}


def _wire_fields(cls: type[Any]) -> tuple[tuple[str, str, bool, bool], ...]:
    """(attribute, wire name, kept when null, left out when empty) of each field of ``cls`` but ``type``, in order."""
    known = _WIRE_FIELDS.get(cls)
    if known is None:
        known = _WIRE_FIELDS[cls] = tuple(
            (f.name, wire, wire in _KEEP_NULL, wire in _OMIT_EMPTY)
            for f in dataclasses.fields(cls)
            if f.name != "type"
            for wire in (f.metadata.get("wire", f.name),)
        )
    return known


def serialise(message: Message | PeerInfo) -> dict[str, object]:
    """The JSON object for ``message`` (``type`` first, absent optionals left out)."""
    result: dict[str, object] = {}
    if not isinstance(message, PeerInfo):
        result["type"] = message.type
    for name, wire, keep_null, omit_empty in _wire_fields(type(message)):
        value = getattr(message, name)
        if value is None and not keep_null:
            continue
        if omit_empty and value == ():
            continue
        result[wire] = _encode_value(value)
    return result


_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # made once, not per message


def encode(message: Message) -> str:
    """Compact JSON text of ``message``."""
    return _ENCODER.encode(serialise(message))


R = TypeVar("R", bound=RelayMessage)


def stamped(message: R, *, sender: UserId, consult: ConsultId, to: UserId) -> R:
    """``message`` with its envelope set by the room, without checking it again: the rest was checked when it
    was parsed, and the room's own member and consult ids were checked when the room was made."""
    copy = object.__new__(type(message))
    for name in _SLOTS[type(message)]:
        object.__setattr__(copy, name, getattr(message, name))
    object.__setattr__(copy, "sender", sender)
    object.__setattr__(copy, "consult", consult)
    object.__setattr__(copy, "to", to)
    return copy


_SLOTS: Final[Mapping[type[Any], tuple[str, ...]]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("sender", "consult", "to"))
    for cls in (Offer, Answer, Candidate, IceRestart, Bye, Chat, Quality)
}


def chat_stored_text(chat_id: str) -> str:
    """`encode` of ``ChatStored(chat_id)`` for an id taken from a parsed `Chat` (checked, so it needs no JSON
    escaping): every stored chat is answered, and this costs a fifth of building and encoding the message."""
    return f'{{"type":"chat_stored","id":"{chat_id}"}}'


def error_reply(exc: SignalingError, chat: str | None = None) -> Error:
    """The ``error`` message telling a client what was wrong with its input (its chat of id ``chat``)."""
    return Error(code=exc.code, message=exc.reason[:ERROR_MESSAGE_MAX], field=exc.field, chat=chat)
