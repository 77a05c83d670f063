"""This process's Prometheus series: one registry per application, the facts the server records into it.

Counters count what this process did, after its transaction committed; Prometheus sums
the processes. What is a state rather than a fact (the connection pool, the open rooms,
the last backup) is read when ``/metrics`` is scraped (`server.handlers.metrics`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.keys import POOL, ROOMS
from server.routing import Handler

PRIORITIES = ("merah", "kuning", "hijau")
DISPATCH_HOW = ("operator", "auto", "reoffer")
REOFFER_OUTCOMES = ("offered", "no_unit")
SOCKET_KINDS = ("unit", "operator", "events", "room")
LOGIN_REFUSALS = ("account_address", "address", "hashing_busy")
# Response times of a dispatch centre: seconds to minutes, NFPA 1225's 60 s in the middle.
CALL_TO_DISPATCH_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
DISPATCH_TO_ACK_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 120)
# Any other method a client invents is "other": a label value per invented method would grow without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Fewer than the library's 15: this histogram has a series per route and status, and a scrape carries them all.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A young collection takes well under a millisecond; a full one over thousands of sockets, tens of them.
GC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


def sweep_label(what: str) -> str:
    """A loop's log name as a label value: "acknowledgement sweep" -> "acknowledgement_sweep"."""
    return what.replace(" ", "_")


def _seconds(start: dt.datetime, end: dt.datetime) -> float:
    return max((end - start).total_seconds(), 0.0)


class Metrics:
    """The series of one application, and a method per fact the server records."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.http_seconds = Histogram(
            "psc119_http_request_duration_seconds", "HTTP requests by route template, method and status (websockets excluded)",
            ["route", "method", "status"], buckets=HTTP_BUCKETS, registry=registry,
        )
        self.gc_pauses = Histogram(
            "psc119_gc_pause_seconds", "Garbage collections by generation (2: full); the process serves nothing meanwhile",
            ["generation"], buckets=GC_BUCKETS, registry=registry,
        )
        self.memory_trimmed = Counter(
            "psc119_memory_trimmed_bytes", "Resident memory given back to the system by malloc_trim (server.memory_trim_s), about", registry=registry,
        )
        self.calls = Counter("psc119_calls_received", "119 calls recorded, by priority", ["priority"], registry=registry)
        self.dispatches = Counter(
            "psc119_dispatches", "Units dispatched, by who sent them (operator, auto for merah, reoffer after an ack timeout)",
            ["how"], registry=registry,
        )
        self.acks = Counter("psc119_acknowledgements", "Dispatches acknowledged, by the crew or by an operator for it", ["by"], registry=registry)
        self.ack_timeouts = Counter("psc119_ack_timeouts", "Dispatches withdrawn because nobody acknowledged them in time", registry=registry)
        self.reoffers = Counter(
            "psc119_reoffers", "Incidents offered to the next unit after an ack timeout, by outcome", ["outcome"], registry=registry,
        )
        self.call_to_dispatch = Histogram(
            "psc119_call_to_dispatch_seconds", "Call received to the incident's first dispatch", buckets=CALL_TO_DISPATCH_BUCKETS, registry=registry,
        )
        self.dispatch_to_ack = Histogram(
            "psc119_dispatch_to_ack_seconds", "Dispatch to its acknowledgement", buckets=DISPATCH_TO_ACK_BUCKETS, registry=registry,
        )
        self.sockets = Gauge("psc119_websockets_open", "Open websockets, by kind", ["kind"], registry=registry)
        self.event_lag = Histogram(
            "psc119_event_delivery_lag_seconds", "Event commit to its send on a live socket", buckets=LAG_BUCKETS, registry=registry,
        )
        self.bus_lag = Histogram(
            "psc119_event_bus_lag_seconds", "Event commit to this process's event bus reading it", buckets=LAG_BUCKETS, registry=registry,
        )
        self.database_up = Gauge("psc119_database_up", "1 if the database answered SELECT 1 at the last scrape, else 0", registry=registry)
        self.database_errors = Counter(
            "psc119_database_errors", "Database errors, by where they were seen (request or a background loop) and kind (unreachable or query)",
            ["source", "kind"], registry=registry,
        )
        self.sweep_last_success = Gauge(
            "psc119_sweep_last_success_timestamp_seconds", "Unix time of each background loop's last successful round", ["sweep"], registry=registry,
        )
        self.sweep_failures = Counter("psc119_sweep_failures", "Failed rounds of each background loop", ["sweep"], registry=registry)
        self.gps_received = Counter("psc119_gps_fixes_received", "GPS fixes taken in from unit sockets", registry=registry)
        self.gps_superseded = Counter(
            "psc119_gps_fixes_superseded",
            "GPS fixes never written: a newer fix of the same unit came before the flush (or this one was older)", registry=registry,
        )
        self.gps_flush_delay = Histogram(
            "psc119_gps_flush_delay_seconds", "The oldest waiting GPS fix's arrival to its flush's commit", buckets=LAG_BUCKETS, registry=registry,
        )
        self.room_joins = Counter("psc119_room_joins", "Members admitted to a video room held by this process", registry=registry)
        self.room_relays = Counter("psc119_room_relays", "Room sockets relayed to the process holding the room", registry=registry)
        self.turn_credentials = Counter("psc119_turn_credentials_issued", "Time-limited TURN credentials handed out", registry=registry)
        self.login_failures = Counter("psc119_login_failures", "Logins refused for a wrong username or password", registry=registry)
        self.logins_refused = Counter(
            "psc119_logins_refused", "Logins refused before the password was checked, by limit", ["limit"], registry=registry,
        )
        # Every known label value from the start: a rate over a series that appears late misses its first step.
        for labels, values in ((self.calls, PRIORITIES), (self.dispatches, DISPATCH_HOW), (self.reoffers, REOFFER_OUTCOMES),
                               (self.sockets, SOCKET_KINDS), (self.logins_refused, LOGIN_REFUSALS), (self.acks, ("crew", "operator"))):
            for value in values:
                labels.labels(value)
        for kind in ("unreachable", "query"):
            self.database_errors.labels("request", kind)

    def call_received(self, priority: str) -> None:
        self.calls.labels(priority).inc()

    def dispatched(self, how: str, received_at: dt.datetime, first_dispatched_at: dt.datetime | None, assigned_at: dt.datetime) -> None:
        """A committed assignment; the incident's times as they were before it (its first dispatch is timed)."""
        self.dispatches.labels(how).inc()
        if first_dispatched_at is None:
            self.call_to_dispatch.observe(_seconds(received_at, assigned_at))

    def acknowledged(self, by_crew: bool, assigned_at: dt.datetime, acknowledged_at: dt.datetime) -> None:
        self.acks.labels("crew" if by_crew else "operator").inc()
        self.dispatch_to_ack.observe(_seconds(assigned_at, acknowledged_at))

    def ack_timed_out(self) -> None:
        self.ack_timeouts.inc()

    def reoffered(self, offered: bool) -> None:
        self.reoffers.labels("offered" if offered else "no_unit").inc()

    def socket(self, kind: str, change: int) -> None:
        self.sockets.labels(kind).inc(change)

    def event_sent(self, at: dt.datetime) -> None:
        self.event_lag.observe(max(time.time() - at.timestamp(), 0.0))

    def gps_taken(self, received: int, superseded: int) -> None:
        self.gps_received.inc(received)
        self.gps_superseded.inc(superseded)

    def event_read(self, at: dt.datetime) -> None:
        self.bus_lag.observe(max(time.time() - at.timestamp(), 0.0))

    def database_error(self, source: str, unreachable: bool) -> None:
        self.database_errors.labels(sweep_label(source), "unreachable" if unreachable else "query").inc()

    def sweep_succeeded(self, what: str) -> None:
        self.sweep_last_success.labels(sweep_label(what)).set(time.time())

    def sweep_failed(self, what: str) -> None:
        self.sweep_failures.labels(sweep_label(what)).inc()

    def login_refused(self, limit: str) -> None:
        self.logins_refused.labels(limit).inc()


class StateCollector(Collector):
    """What is read, not counted: the pool's connections, the open rooms, the last good backup and retention
    sweep (read from the database at each scrape; absent until first read, 0 for never)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self.backup_last_success: float | None = None
        self.retention_last_run: float | None = None
        self.retention_counts: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        pool = self._app.get(POOL)
        if pool is not None:
            connections = GaugeMetricFamily("psc119_db_pool_connections", "Database pool connections, by state", labels=["state"])
            size, idle = pool.get_size(), pool.get_idle_size()
            connections.add_metric(["in_use"], size - idle)
            connections.add_metric(["idle"], idle)
            yield connections
            yield GaugeMetricFamily("psc119_db_pool_max", "Most connections the pool opens", value=pool.get_max_size())
        hub = self._app.get(ROOMS)
        if hub is not None:
            yield GaugeMetricFamily("psc119_rooms_open", "Video rooms held by this process", value=hub.open_count)
        if self.backup_last_success is not None:
            yield GaugeMetricFamily(
                "psc119_backup_last_success_timestamp_seconds", "Unix time of the last successful backup (0: never)",
                value=self.backup_last_success,
            )
        if self.retention_last_run is not None:
            yield GaugeMetricFamily(
                "psc119_retention_last_run_timestamp_seconds", "Unix time the last retention sweep finished (0: never)",
                value=self.retention_last_run,
            )
            rows = GaugeMetricFamily(
                "psc119_retention_last_run_rows", "What the last retention sweep deleted or pseudonymised, by class", labels=["class"]
            )
            for name, count in sorted(self.retention_counts.items()):
                rows.add_metric([name], count)
            yield rows


def socket_kind(request: web.Request) -> str:
    """A live socket's kind, from its route: /ws/unit -> unit, /ws/operator -> operator, /ws/events -> events."""
    return route_of(request).rsplit("/", 1)[-1]


def route_of(request: web.Request) -> str:
    """The route's declared template, never the raw path: one series per route, whatever the ids."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def http_latency(metrics: Metrics) -> Middleware:
    """The middleware that times every HTTP answer (outermost, so it sees the status the client gets)."""

    def observe(request: web.Request, status: int, start: float) -> None:
        method = request.method if request.method in METHODS else "other"
        metrics.http_seconds.labels(route_of(request), method, str(status)).observe(time.perf_counter() - start)

    @web.middleware
    async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            observe(request, exc.status, start)
            raise
        if not isinstance(response, web.WebSocketResponse):  # a socket's "duration" is its lifetime, not a latency
            observe(request, response.status, start)
        return response

    return timed
