"""Settings: read once from TOML and the environment into frozen dataclasses.

Every setting lives in ``config.toml`` with its default and a comment; the
dataclasses below carry the same defaults (a test keeps the two equal). An
environment variable ``PSC119_<SECTION>_<KEY>`` overrides a file value. An
unknown key, a wrong type or an impossible value raises :class:`ConfigError`
naming the key, and the command line exits non-zero.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from signaling.errors import InvalidValue
from signaling.turn import IceConfig

ENV_PREFIX = "PSC119_"


class ConfigError(Exception):
    """A setting is unknown, of the wrong type or out of range."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config: {key}: {message}")
        self.key = key


def _check(predicate: Callable[[Any], bool], message: str) -> dict[str, Any]:
    return {"check": (predicate, message)}


def _positive() -> dict[str, Any]:
    return _check(lambda v: v > 0, "must be greater than 0")


def _networks(value: tuple[str, ...]) -> bool:
    import ipaddress

    try:
        return all(ipaddress.ip_network(v, strict=False) is not None for v in value)
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = dataclasses.field(default=8119, metadata=_check(lambda v: 0 <= v <= 65535, "must be 0..65535"))
    var_dir: str = "var"
    shutdown_timeout_s: float = dataclasses.field(default=8.0, metadata=_check(lambda v: 0 < v <= 60, "must be in (0, 60]"))
    max_body_bytes: int = dataclasses.field(default=1_048_576, metadata=_positive())
    log_format: str = dataclasses.field(default="text", metadata=_check(lambda v: v in ("text", "json"), "must be 'text' or 'json'"))
    log_level: str = dataclasses.field(
        default="INFO", metadata=_check(lambda v: v in ("DEBUG", "INFO", "WARNING", "ERROR"), "must be DEBUG, INFO, WARNING or ERROR")
    )
    advertise_url: str = dataclasses.field(
        default="", metadata=_check(lambda v: v == "" or v.startswith(("http://", "https://")), "must be empty or an http(s) URL")
    )
    node_ttl_s: float = dataclasses.field(default=10.0, metadata=_check(lambda v: 1 <= v <= 300, "must be in [1, 300]"))
    hsts_max_age_s: int = dataclasses.field(default=0, metadata=_check(lambda v: v >= 0, "must be 0 (off) or more"))
    log_repeat_window_s: float = dataclasses.field(default=60.0, metadata=_check(lambda v: 0 <= v <= 3600, "must be in [0, 3600]"))
    trusted_proxies: tuple[str, ...] = dataclasses.field(default=(), metadata=_check(_networks, "must be a list of CIDRs"))
    memory_trim_s: float = dataclasses.field(default=10.0, metadata=_check(lambda v: 0 <= v <= 3600, "must be in [0, 3600]"))


@dataclasses.dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = ""
    embedded_dbname: str = dataclasses.field(default="psc119", metadata=_check(lambda v: v.isidentifier(), "must be a plain identifier"))
    pool_min: int = dataclasses.field(default=2, metadata=_check(lambda v: v >= 1, "must be at least 1"))
    pool_max: int = dataclasses.field(default=20, metadata=_check(lambda v: v >= 1, "must be at least 1"))
    command_timeout_s: float = dataclasses.field(default=10.0, metadata=_positive())
    retry_after_s: int = dataclasses.field(default=5, metadata=_positive())


@dataclasses.dataclass(frozen=True, slots=True)
class AuthSettings:
    session_ttl_h: float = dataclasses.field(default=12.0, metadata=_positive())
    password_min_length: int = dataclasses.field(default=8, metadata=_check(lambda v: v >= 6, "must be at least 6"))
    login_max_failures: int = dataclasses.field(default=5, metadata=_positive())
    login_window_s: int = dataclasses.field(default=900, metadata=_positive())
    login_address_max_failures: int = dataclasses.field(default=100, metadata=_positive())
    login_delay_base_s: float = dataclasses.field(default=1.0, metadata=_check(lambda v: v >= 0, "must be 0 or more"))
    login_delay_max_s: float = dataclasses.field(default=10.0, metadata=_check(lambda v: 0 <= v <= 60, "must be in [0, 60]"))
    argon2_time_cost: int = dataclasses.field(default=3, metadata=_positive())
    argon2_memory_kib: int = dataclasses.field(default=65536, metadata=_check(lambda v: v >= 8192, "must be at least 8192"))
    argon2_threads: int = dataclasses.field(default=1, metadata=_check(lambda v: 1 <= v <= 64, "must be 1..64"))
    argon2_nice: int = dataclasses.field(default=10, metadata=_check(lambda v: 0 <= v <= 19, "must be 0..19"))
    argon2_queue: int = dataclasses.field(default=16, metadata=_check(lambda v: 0 <= v <= 10_000, "must be 0..10000"))


@dataclasses.dataclass(frozen=True, slots=True)
class DispatchSettings:
    recommend_k: int = dataclasses.field(default=5, metadata=_check(lambda v: 1 <= v <= 50, "must be 1..50"))
    ack_timeout_s: float = dataclasses.field(default=30.0, metadata=_positive())
    ack_sweep_s: float = dataclasses.field(default=0.5, metadata=_check(lambda v: 0 < v <= 10, "must be in (0, 10]"))
    stale_position_s: int = dataclasses.field(default=1800, metadata=_positive())
    detour_factor: float = dataclasses.field(default=1.4, metadata=_check(lambda v: v >= 1.0, "must be at least 1.0"))
    speed_ambulance_kmh: float = dataclasses.field(default=30.0, metadata=_positive())
    speed_motorbike_kmh: float = dataclasses.field(default=40.0, metadata=_positive())
    auto_dispatch_merah: bool = False
    duplicate_radius_m: float = dataclasses.field(default=300.0, metadata=_positive())
    duplicate_window_s: int = dataclasses.field(default=1200, metadata=_positive())
    same_caller_window_s: int = dataclasses.field(default=3600, metadata=_positive())
    prank_threshold: int = dataclasses.field(default=2, metadata=_positive())
    prank_window_days: int = dataclasses.field(default=30, metadata=_positive())
    position_flush_s: float = dataclasses.field(default=0.25, metadata=_check(lambda v: 0 < v <= 5, "must be in (0, 5]"))
    track_sample_s: int = dataclasses.field(default=15, metadata=_positive())
    position_flush_batch: int = dataclasses.field(default=2000, metadata=_positive())
    agency_id: str = "psc119.tangerangselatankota.go.id"
    road_eta_url: str = dataclasses.field(
        default="", metadata=_check(lambda v: v == "" or v.startswith(("http://", "https://")), "must be empty or an http(s) URL")
    )
    road_eta_profile: str = dataclasses.field(default="driving", metadata=_check(lambda v: v.isidentifier(), "must be a plain name"))
    road_eta_shortlist: int = dataclasses.field(default=10, metadata=_check(lambda v: 1 <= v <= 100, "must be 1..100"))
    road_eta_timeout_s: float = dataclasses.field(default=1.5, metadata=_check(lambda v: 0 < v <= 10, "must be in (0, 10]"))
    unit_replay_h: float = dataclasses.field(default=12.0, metadata=_check(lambda v: 0 < v <= 720, "must be in (0, 720] hours"))
    phone_ping_s: float = dataclasses.field(default=3.0, metadata=_check(lambda v: 0.5 <= v <= 60, "must be in [0.5, 60]"))
    phone_offline_s: float = dataclasses.field(default=15.0, metadata=_check(lambda v: 1 <= v <= 600, "must be in [1, 600]"))
    notice_eta_refresh_s: float = dataclasses.field(default=20.0, metadata=_check(lambda v: 5 <= v <= 300, "must be in [5, 300]"))

    def __post_init__(self) -> None:
        if self.phone_offline_s < 2 * self.phone_ping_s:
            # A phone on a live link must be heard from at least twice within the expiry.
            raise ConfigError("dispatch.phone_offline_s", "must be at least twice dispatch.phone_ping_s")


def _content_types(value: tuple[str, ...]) -> bool:
    return bool(value) and all("/" in v and v == v.strip().lower() for v in value)


@dataclasses.dataclass(frozen=True, slots=True)
class ConsultSettings:
    emergency_respond_s: float = dataclasses.field(default=600.0, metadata=_positive())
    emergency_expire_s: float = dataclasses.field(default=3600.0, metadata=_positive())
    urgent_respond_s: float = dataclasses.field(default=3600.0, metadata=_positive())
    urgent_expire_s: float = dataclasses.field(default=21600.0, metadata=_positive())
    routine_respond_s: float = dataclasses.field(default=86400.0, metadata=_positive())
    routine_expire_s: float = dataclasses.field(default=259200.0, metadata=_positive())
    join_token_ttl_s: int = dataclasses.field(default=1800, metadata=_positive())
    join_timeout_s: float = dataclasses.field(default=10.0, metadata=_positive())
    heartbeat_s: float = dataclasses.field(default=4.0, metadata=_check(lambda v: 0.5 <= v <= 60, "must be in [0.5, 60]"))
    rejoin_grace_s: float = dataclasses.field(default=20.0, metadata=_positive())
    attachment_max_bytes: int = dataclasses.field(default=10_485_760, metadata=_positive())
    attachment_types: tuple[str, ...] = dataclasses.field(
        default=("image/jpeg", "image/png", "application/pdf", "application/dicom"),
        metadata=_check(_content_types, "must be a non-empty list of lowercase type/subtype"),
    )
    sweep_s: float = dataclasses.field(default=5.0, metadata=_check(lambda v: 0 < v <= 300, "must be in (0, 300]"))

    def __post_init__(self) -> None:
        for urgency in ("emergency", "urgent", "routine"):
            if getattr(self, f"{urgency}_expire_s") < getattr(self, f"{urgency}_respond_s"):
                raise ConfigError(f"consult.{urgency}_expire_s", f"must not be shorter than consult.{urgency}_respond_s")


@dataclasses.dataclass(frozen=True, slots=True)
class IceSettings:
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    turn_ttl_s: int = dataclasses.field(default=21600, metadata=_positive())
    relay_only: bool = False

    def __post_init__(self) -> None:
        try:
            IceConfig(self.stun_urls, self.turn_urls, self.turn_secret or None)
        except InvalidValue as exc:
            raise ConfigError(f"ice.{(exc.field or 'turn_urls').split('[')[0]}", exc.reason) from None
        if self.relay_only and not self.turn_urls:
            raise ConfigError("ice.relay_only", "needs ice.turn_urls (relay-only peers connect through TURN only)")


@dataclasses.dataclass(frozen=True, slots=True)
class MediaSettings:
    max_bitrate: int = dataclasses.field(default=1_500_000, metadata=_check(lambda v: 100_000 <= v <= 10_000_000, "must be 100000..10000000"))
    min_fps: float = dataclasses.field(default=10.0, metadata=_check(lambda v: 1 <= v <= 30, "must be 1..30"))


def _ip_addresses(value: tuple[str, ...]) -> bool:
    import ipaddress

    try:
        return all(ipaddress.ip_address(v) is not None for v in value)
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True, slots=True)
class RecordingSettings:
    enabled: bool = True
    ice_host_addresses: tuple[str, ...] = dataclasses.field(
        default=(), metadata=_check(_ip_addresses, "must be a list of IP addresses")
    )
    video_fps: int = dataclasses.field(default=15, metadata=_check(lambda v: 1 <= v <= 30, "must be 1..30"))


@dataclasses.dataclass(frozen=True, slots=True)
class LimitSettings:
    header_timeout_s: float = dataclasses.field(default=15.0, metadata=_check(lambda v: 0 < v <= 300, "must be in (0, 300]"))
    body_timeout_s: float = dataclasses.field(default=30.0, metadata=_check(lambda v: 0 < v <= 600, "must be in (0, 600]"))
    idle_timeout_s: float = dataclasses.field(default=75.0, metadata=_check(lambda v: 0 < v <= 3600, "must be in (0, 3600]"))
    max_connections_per_address: int = dataclasses.field(default=256, metadata=_positive())
    ws_position_per_s: float = dataclasses.field(default=5.0, metadata=_positive())
    ws_position_burst: int = dataclasses.field(default=10, metadata=_positive())
    ws_status_per_s: float = dataclasses.field(default=1.0, metadata=_positive())
    ws_status_burst: int = dataclasses.field(default=20, metadata=_positive())
    ws_ping_per_s: float = dataclasses.field(default=1.0, metadata=_positive())
    ws_ping_burst: int = dataclasses.field(default=10, metadata=_positive())
    ws_signaling_per_s: float = dataclasses.field(default=20.0, metadata=_positive())
    ws_signaling_burst: int = dataclasses.field(default=200, metadata=_positive())
    ws_chat_per_s: float = dataclasses.field(default=1.0, metadata=_positive())
    ws_chat_burst: int = dataclasses.field(default=10, metadata=_positive())
    chat_max_bytes: int = dataclasses.field(default=4000, metadata=_positive())
    chat_max_stored: int = dataclasses.field(default=2000, metadata=_positive())


def _days() -> dict[str, Any]:
    return _check(lambda v: 0 <= v <= 36500, "must be 0 (keep for ever) to 36500 days")


@dataclasses.dataclass(frozen=True, slots=True)
class RetentionSettings:
    tracks_days: int = dataclasses.field(default=90, metadata=_days())
    audit_days: int = dataclasses.field(default=730, metadata=_days())
    chat_days: int = dataclasses.field(default=365, metadata=_days())
    recordings_days: int = dataclasses.field(default=365, metadata=_days())
    attachments_days: int = dataclasses.field(default=730, metadata=_days())
    incident_personal_days: int = dataclasses.field(default=1825, metadata=_days())
    consult_personal_days: int = dataclasses.field(default=1825, metadata=_days())
    sweep_hour_utc: int = dataclasses.field(default=19, metadata=_check(lambda v: 0 <= v <= 23, "must be 0..23"))
    check_s: float = dataclasses.field(default=600.0, metadata=_check(lambda v: 0 < v <= 3600, "must be in (0, 3600]"))
    batch: int = dataclasses.field(default=500, metadata=_check(lambda v: 1 <= v <= 100_000, "must be 1..100000"))


def _tile_url(value: str) -> bool:
    return value == "" or (value.startswith(("https://", "http://", "/")) and "{z}" in value and "{x}" in value and "{y}" in value)


@dataclasses.dataclass(frozen=True, slots=True)
class WebSettings:
    tile_url: str = dataclasses.field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        metadata=_check(_tile_url, "must be empty or an http(s) or /path URL template with {z}, {x} and {y}"),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class MetricsSettings:
    allow_from: tuple[str, ...] = dataclasses.field(default=("127.0.0.1/32", "::1/128"), metadata=_check(_networks, "must be a list of CIDRs"))
    token: str = dataclasses.field(default="", metadata=_check(lambda v: v == "" or len(v) >= 16, "must be empty or at least 16 characters"))


@dataclasses.dataclass(frozen=True, slots=True)
class BackupSettings:
    dir: str = dataclasses.field(default="backups", metadata=_check(lambda v: v.strip() != "", "must name a directory"))
    interval_h: float = dataclasses.field(default=24.0, metadata=_check(lambda v: 0 <= v <= 8760, "must be 0 (off) to 8760 hours"))
    keep: int = dataclasses.field(default=7, metadata=_check(lambda v: 1 <= v <= 10_000, "must be 1..10000"))
    pg_bin_dir: str = ""


def _http_url() -> dict[str, Any]:
    return _check(lambda v: v == "" or v.startswith(("https://", "http://")), "must be empty or an http(s) URL")


def _pairs(value: tuple[str, ...]) -> bool:
    return all(len(p.split("=")) == 2 and all(part.strip() for part in p.split("=")) for p in value)


@dataclasses.dataclass(frozen=True, slots=True)
class SatusehatSettings:
    auth_url: str = dataclasses.field(default="", metadata=_http_url())
    base_url: str = dataclasses.field(default="", metadata=_http_url())
    client_id: str = ""
    client_secret: str = ""
    organization_id: str = ""
    organization_ids: tuple[str, ...] = dataclasses.field(default=(), metadata=_check(_pairs, 'must be a list of "facility-code=id"'))
    location_ids: tuple[str, ...] = dataclasses.field(default=(), metadata=_check(_pairs, 'must be a list of "facility-code=id"'))
    timeout_s: float = dataclasses.field(default=30.0, metadata=_check(lambda v: 0 < v <= 300, "must be in (0, 300]"))

    def __post_init__(self) -> None:
        if self.auth_url and not (self.base_url and self.client_id and self.client_secret and self.organization_id):
            raise ConfigError("satusehat.auth_url", "needs satusehat.base_url, client_id, client_secret and organization_id")

    @property
    def enabled(self) -> bool:
        return bool(self.auth_url)


@dataclasses.dataclass(frozen=True, slots=True)
class HospitalSettings:
    availability_stale_s: int = dataclasses.field(default=21600, metadata=_check(lambda v: 60 <= v <= 7 * 86400, "must be 60..604800 seconds"))


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    dispatch: DispatchSettings = DispatchSettings()
    consult: ConsultSettings = ConsultSettings()
    ice: IceSettings = IceSettings()
    media: MediaSettings = MediaSettings()
    recording: RecordingSettings = RecordingSettings()
    web: WebSettings = WebSettings()
    limits: LimitSettings = LimitSettings()
    retention: RetentionSettings = RetentionSettings()
    metrics: MetricsSettings = MetricsSettings()
    backup: BackupSettings = BackupSettings()
    hospitals: HospitalSettings = HospitalSettings()
    satusehat: SatusehatSettings = SatusehatSettings()

    def __post_init__(self) -> None:
        if self.database.pool_min > self.database.pool_max:
            raise ConfigError("database.pool_min", "must not exceed database.pool_max")
        personal = self.retention.incident_personal_days
        if 0 < personal < self.dispatch.prank_window_days:
            # Repeat-prank counting reads the caller numbers of the last prank_window_days.
            raise ConfigError("retention.incident_personal_days", "must not be shorter than dispatch.prank_window_days")


def load_config(path: Path | None, environ: Mapping[str, str]) -> Config:
    """Read ``path`` (or only defaults when None) and apply ``PSC119_*`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(str(path), "file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    sections = _section_types()
    for name, value in raw.items():
        if name not in sections:
            raise ConfigError(name, "unknown section")
        if not isinstance(value, dict):
            raise ConfigError(name, "must be a table")
    values: dict[str, dict[str, Any]] = {name: dict(raw.get(name, {})) for name in sections}
    _apply_environment(values, sections, environ)
    built = {name: _build_section(name, cls, values[name]) for name, cls in sections.items()}
    return Config(**built)


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _apply_environment(values: dict[str, dict[str, Any]], sections: dict[str, type], environ: Mapping[str, str]) -> None:
    # Longest section name first so "a_b_key" never splits as "a" + "b_key" wrongly.
    for var, text in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX):].lower()
        for section in sorted(sections, key=len, reverse=True):
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1:]
                hints = typing.get_type_hints(sections[section])
                if key not in hints:
                    raise ConfigError(var, f"unknown key {section}.{key}")
                values[section][key] = _from_text(f"{section}.{key}", hints[key], text)
                break
        else:
            raise ConfigError(var, "names no config section")


def _from_text(key: str, kind: Any, text: str) -> Any:
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if _is_str_list(kind):
            return [part.strip() for part in text.split(",") if part.strip()]
        return text
    except ValueError:
        raise ConfigError(key, f"cannot read {text!r} as {_type_name(kind)}") from None


def _build_section(section: str, cls: type, values: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        full = f"{section}.{key}"
        if key not in fields:
            raise ConfigError(full, "unknown key")
        if not _type_matches(hints[key], value):
            raise ConfigError(full, f"must be {_type_name(hints[key])}, got {type(value).__name__}")
        if hints[key] is float:
            values[key] = float(value)
        if _is_str_list(hints[key]):
            values[key] = tuple(value)
        check = fields[key].metadata.get("check")
        if check is not None and not check[0](values[key]):
            raise ConfigError(full, check[1])
    return cls(**values)


def _is_str_list(kind: Any) -> bool:
    return typing.get_origin(kind) is tuple and typing.get_args(kind) == (str, ...)


def _type_matches(kind: Any, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if _is_str_list(kind):
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    if isinstance(kind, types.UnionType):
        return any(_type_matches(k, value) for k in typing.get_args(kind))
    return isinstance(value, kind)


def _type_name(kind: Any) -> str:
    if _is_str_list(kind):
        return "a list of strings"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(kind, str(kind))
