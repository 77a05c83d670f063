"""``GET /metrics``: scraped with Prometheus's own parser; a call, a dispatch and an ack move exactly their series."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from server.config import Config, IceSettings
from server.metrics import Metrics
from server.outages import OutageLog
from tests.conftest import Api, app_config, start_api
from tests.server.database_support import own_database
from tests.server.dispatch_support import CREW_PASSWORD, Socket, call_body, crew_for
from tests.server.process_support import two_processes
from tests.server.test_consult_room import join, token_for
from tests.server.test_consults import accepted_consult, close_api, consult_config

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


async def scrape(api: Api) -> Samples:
    status, text = await api.call("GET", "/metrics")
    assert status == 200, text
    return parse(text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples) -> dict[str, float]:
    """Every psc119 dispatch series that changed, by name and labels (the timing sums aside)."""
    changed = {}
    for key, new in after.items():
        name, labels = key
        if not name.startswith(("psc119_calls", "psc119_dispatch", "psc119_ack", "psc119_reoffer", "psc119_call_to")):
            continue
        if name.endswith(("_created", "_sum")) or new == before.get(key, 0.0):
            continue
        changed[name + str(sorted(labels))] = new - before.get(key, 0.0)
    return changed


def with_metrics(config: Config, **settings: object) -> Config:
    return dataclasses.replace(config, metrics=dataclasses.replace(config.metrics, **settings))


async def test_a_call_a_dispatch_and_an_ack_move_exactly_their_series(api: Api, con: asyncpg.Connection) -> None:
    operator = await api.login("operator")
    console = await Socket.open(api, "/ws/operator", operator)
    start = await scrape(api)
    assert value(start, "psc119_websockets_open", kind="operator") == 1

    body = call_body()
    status, taken = await api.call("POST", "/api/calls", operator, json=body)
    assert status == 201
    incident_id, priority = taken["incident"]["id"], taken["incident"]["priority"]
    status, _ = await api.call("POST", "/api/calls", operator, json=body)  # a retry records no second call
    assert status == 200
    unit_id = taken["recommendations"][0]["unit_id"]
    status, sent = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 201
    status, _ = await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
    assert status == 409  # refused: rolled back, counted nowhere but in the HTTP series
    dispatched = await scrape(api)
    assert moved(start, dispatched) == {
        f"psc119_calls_received_total[('priority', '{priority}')]": 1,
        "psc119_dispatches_total[('how', 'operator')]": 1,
        **{f"psc119_call_to_dispatch_seconds{k}": v for k, v in _histogram_moved(start, dispatched, "call_to_dispatch").items()},
    }
    received, assigned = await con.fetchrow(
        "SELECT i.received_at, a.assigned_at FROM incidents i JOIN assignments a ON a.incident_id = i.id WHERE i.id = $1",
        uuid.UUID(incident_id),
    )
    took = value(dispatched, "psc119_call_to_dispatch_seconds_sum") - value(start, "psc119_call_to_dispatch_seconds_sum")
    assert abs(took - (assigned - received).total_seconds()) < 1e-6
    dispatch_route = ("/api/incidents/{id}/dispatch", "POST")
    for code in ("201", "409"):
        labels = dict(route=dispatch_route[0], method=dispatch_route[1], status=code)
        assert value(dispatched, "psc119_http_request_duration_seconds_count", **labels) == 1, code

    crew = await api.login(await crew_for(con, unit_id), CREW_PASSWORD)
    phone = await Socket.open(api, "/ws/unit", crew)
    assert value(await scrape(api), "psc119_websockets_open", kind="unit") == 1
    press = {"type": "ack", "assignment_id": sent["assignment"]["id"], "report_id": "press-0001"}
    assert (await phone.request(press))["status"] == "en_route"
    assert (await phone.request(press))["duplicate"] is True  # the same press arriving twice counts once
    acked = await scrape(api)
    assert moved(dispatched, acked) == {
        "psc119_acknowledgements_total[('by', 'crew')]": 1,
        **{f"psc119_dispatch_to_ack_seconds{k}": v for k, v in _histogram_moved(dispatched, acked, "dispatch_to_ack").items()},
    }
    acknowledged = await con.fetchval("SELECT acknowledged_at FROM assignments WHERE id = $1", sent["assignment"]["id"])
    took = value(acked, "psc119_dispatch_to_ack_seconds_sum") - value(dispatched, "psc119_dispatch_to_ack_seconds_sum")
    assert abs(took - (acknowledged - assigned).total_seconds()) < 1e-6

    # The console got the events live: each send timed from the event's commit.
    await console.event("unit.status", unit_id=unit_id)
    lag = await scrape(api)
    assert value(lag, "psc119_event_delivery_lag_seconds_count") - value(start, "psc119_event_delivery_lag_seconds_count") >= 3
    assert value(lag, "psc119_event_bus_lag_seconds_count") - value(start, "psc119_event_bus_lag_seconds_count") >= 3
    assert 0 < value(lag, "psc119_event_delivery_lag_seconds_sum") < 60
    assert time.time() - value(lag, "psc119_sweep_last_success_timestamp_seconds", sweep="acknowledgement_sweep") < 5
    assert time.time() - value(lag, "psc119_sweep_last_success_timestamp_seconds", sweep="event_bus") < 5
    assert value(lag, "psc119_database_up") == 1
    assert value(lag, "psc119_db_pool_connections", state="in_use") >= 0
    assert value(lag, "psc119_db_pool_max") == 10
    await phone.close()
    await console.close()
    for _ in range(100):
        closed = await scrape(api)
        if value(closed, "psc119_websockets_open", kind="unit") == value(closed, "psc119_websockets_open", kind="operator") == 0:
            break
        await asyncio.sleep(0.05)
    assert value(closed, "psc119_websockets_open", kind="unit") == 0
    assert value(closed, "psc119_websockets_open", kind="operator") == 0


def _buckets_at_or_above(after: Samples, before: Samples, histogram: str) -> list[str]:
    """The ``le`` bounds whose bucket counts the one new observation (those at or above it)."""
    name = f"psc119_{histogram}_seconds_bucket"
    return [
        dict(labels)["le"] for (n, labels), v in after.items()
        if n == name and v != before.get((n, labels), 0.0)
    ]


async def test_the_http_series_stay_bounded_whatever_the_paths_and_methods(api: Api) -> None:
    for n, method in enumerate(("PROPFIND", "MKCOL", "COPY", "MOVE", "LOCK")):  # methods the HTTP parser knows, the API does not
        await api.call("GET", f"/api/no-such-route-{n}")
        await api.call(method, "/api/calls")
        await api.call("GET", f"/api/incidents/{uuid.uuid4()}")
    samples = await scrape(api)
    counts = {dict(labels)["route"] + " " + dict(labels)["method"] + " " + dict(labels)["status"]: v
              for (name, labels), v in samples.items() if name == "psc119_http_request_duration_seconds_count"}
    assert counts["unmatched other 405"] == 5  # no route answers these methods
    assert counts["/api/incidents/{id} GET 401"] == 5
    assert not [key for key in counts if "no-such-route" in key or "PROPFIND" in key]


async def test_an_ack_timeout_counts_the_withdrawal_the_reoffer_and_no_second_call_to_dispatch(
    demo_dsn: str, con: asyncpg.Connection
) -> None:
    config = app_config(demo_dsn)
    config = dataclasses.replace(config, dispatch=dataclasses.replace(config.dispatch, ack_timeout_s=0.5, ack_sweep_s=0.1))
    api = await start_api(demo_dsn, config)
    try:
        operator = await api.login("operator")
        console = await Socket.open(api, "/ws/operator", operator)
        start = await scrape(api)
        status, taken = await api.call("POST", "/api/calls", operator, json=call_body())
        incident_id, unit_id = taken["incident"]["id"], taken["recommendations"][0]["unit_id"]
        await api.call("POST", f"/api/incidents/{incident_id}/dispatch", operator, json={"unit_id": unit_id})
        await console.event("dispatch.withdrawn", unit_id=unit_id)
        await console.wait_for(lambda m: m.get("event") == "unit.dispatched" and m["data"]["reoffer_of"] is not None)
        after = await scrape(api)
        assert value(after, "psc119_ack_timeouts_total") - value(start, "psc119_ack_timeouts_total") == 1
        assert value(after, "psc119_reoffers_total", outcome="offered") - value(start, "psc119_reoffers_total", outcome="offered") == 1
        assert value(after, "psc119_dispatches_total", how="reoffer") - value(start, "psc119_dispatches_total", how="reoffer") == 1
        assert value(after, "psc119_dispatches_total", how="operator") - value(start, "psc119_dispatches_total", how="operator") == 1
        # Call to dispatch is the incident's first dispatch only.
        assert value(after, "psc119_call_to_dispatch_seconds_count") - value(start, "psc119_call_to_dispatch_seconds_count") == 1
        await console.close()
    finally:
        await api.session.close()
        await api.server.close()


async def _get_from(api: Api, address: str, headers: dict[str, str] | None = None) -> int:
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(api.url("/metrics"), headers=headers or {}) as response:
            await response.read()
            return response.status


async def test_only_allowed_addresses_or_the_metrics_token_may_scrape(demo_dsn: str) -> None:
    token = "scrape-" + "x" * 24
    config = with_metrics(app_config(demo_dsn), allow_from=("127.0.0.1/32",), token=token)
    api = await start_api(demo_dsn, config)
    try:
        assert await _get_from(api, "127.0.0.1") == 200
        assert await _get_from(api, "127.0.0.2") == 401
        assert await _get_from(api, "127.0.0.2", {"Authorization": "Bearer wrong-token-of-some-length"}) == 401
        assert await _get_from(api, "127.0.0.2", {"Authorization": f"Bearer {token}"}) == 200
        # A user's session opens nothing here, and a forged X-Forwarded-For from an untrusted peer is not believed.
        session = await api.login("admin")
        assert await _get_from(api, "127.0.0.2", {"Authorization": f"Bearer {session}"}) == 401
        assert await _get_from(api, "127.0.0.2", {"X-Forwarded-For": "127.0.0.1"}) == 401
    finally:
        await api.session.close()
        await api.server.close()

    # Without a token only the addresses: 403. Behind a trusted proxy the forwarded client address decides.
    proxied = dataclasses.replace(
        with_metrics(app_config(demo_dsn), allow_from=("127.0.0.1/32",)),
        server=dataclasses.replace(config.server, trusted_proxies=("127.0.0.2/32",)),
    )
    api = await start_api(demo_dsn, proxied)
    try:
        assert await _get_from(api, "127.0.0.3") == 403
        assert await _get_from(api, "127.0.0.3", {"Authorization": f"Bearer {token}"}) == 403
        assert await _get_from(api, "127.0.0.2", {"X-Forwarded-For": "127.0.0.1"}) == 200
        assert await _get_from(api, "127.0.0.2", {"X-Forwarded-For": "127.0.0.9"}) == 403
    finally:
        await api.session.close()
        await api.server.close()


async def test_failed_and_refused_logins_are_counted(demo_dsn: str) -> None:
    api = await start_api(demo_dsn, app_config(demo_dsn, login_max_failures=2, login_delay_base_s=0.0))
    try:
        start = await scrape(api)
        for _ in range(2):
            status, _ = await api.call("POST", "/api/auth/login", json={"username": "operator", "password": "not-the-password"})
            assert status == 401
        status, _ = await api.call("POST", "/api/auth/login", json={"username": "operator", "password": "not-the-password"})
        assert status == 429
        after = await scrape(api)
        assert value(after, "psc119_login_failures_total") - value(start, "psc119_login_failures_total") == 2
        refused = value(after, "psc119_logins_refused_total", limit="account_address")
        assert refused - value(start, "psc119_logins_refused_total", limit="account_address") == 1
    finally:
        await api.session.close()
        await api.server.close()


async def test_turn_credentials_handed_out_are_counted(demo_dsn: str) -> None:
    ice = IceSettings(turn_urls=("turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"), turn_secret="s" * 32)
    api = await start_api(demo_dsn, dataclasses.replace(app_config(demo_dsn), ice=ice))
    try:
        doctor = await api.login("specialist")
        start = await scrape(api)
        status, body = await api.call("GET", "/api/ice-servers", doctor)
        assert status == 200
        handed = [s for s in body["ice_servers"] if s.get("credential")]
        after = await scrape(api)
        assert value(after, "psc119_turn_credentials_issued_total") - value(start, "psc119_turn_credentials_issued_total") == len(handed) >= 1
        assert value(after, "psc119_rooms_open") == 0
    finally:
        await api.session.close()
        await api.server.close()


def test_a_loop_failure_counts_as_a_failure_and_a_database_error_only_when_it_is_one() -> None:
    metrics = Metrics()
    outage = OutageLog(logging.getLogger("test"), "acknowledgement sweep", metrics)
    outage.failed(ConnectionRefusedError(111, "refused"))
    outage.failed(asyncpg.exceptions.UndefinedTableError("no table"))
    outage.failed(ValueError("a bug"))
    samples = parse(_text(metrics))
    assert value(samples, "psc119_sweep_failures_total", sweep="acknowledgement_sweep") == 3
    assert value(samples, "psc119_database_errors_total", source="acknowledgement_sweep", kind="unreachable") == 1
    assert value(samples, "psc119_database_errors_total", source="acknowledgement_sweep", kind="query") == 1
    assert ("psc119_sweep_last_success_timestamp_seconds", frozenset({("sweep", "acknowledgement_sweep")})) not in samples
    outage.succeeded()
    assert time.time() - value(parse(_text(metrics)), "psc119_sweep_last_success_timestamp_seconds", sweep="acknowledgement_sweep") < 5


def _text(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


async def test_each_process_counts_what_it_did_and_delivers_what_it_sent(demo_dsn: str, con: asyncpg.Connection, tmp_path: Path) -> None:
    async with two_processes(demo_dsn, tmp_path) as (a, b):
        operator = await a.login("operator")
        status, taken = await a.call("POST", "/api/calls", operator, json=call_body())
        unit_id = taken["recommendations"][0]["unit_id"]
        phone = await Socket.open(b, "/ws/unit", await b.login(await crew_for(con, unit_id), CREW_PASSWORD))
        start_a, start_b = await scrape(a), await scrape(b)

        # Dispatched on A, delivered and acknowledged on B: each process counts its own part, once.
        status, sent = await a.call("POST", f"/api/incidents/{taken['incident']['id']}/dispatch", operator, json={"unit_id": unit_id})
        assert status == 201
        await phone.event("unit.dispatched", unit_id=unit_id)
        assert (await phone.request({"type": "ack", "assignment_id": sent["assignment"]["id"]}))["status"] == "en_route"
        end_a, end_b = await scrape(a), await scrape(b)
        assert moved(start_a, end_a) == {
            "psc119_dispatches_total[('how', 'operator')]": 1,
            **{f"psc119_call_to_dispatch_seconds{k}": v for k, v in _histogram_moved(start_a, end_a, "call_to_dispatch").items()},
        }
        assert moved(start_b, end_b) == {
            "psc119_acknowledgements_total[('by', 'crew')]": 1,
            **{f"psc119_dispatch_to_ack_seconds{k}": v for k, v in _histogram_moved(start_b, end_b, "dispatch_to_ack").items()},
        }
        assert value(end_b, "psc119_event_delivery_lag_seconds_count") - value(start_b, "psc119_event_delivery_lag_seconds_count") >= 1
        assert value(end_b, "psc119_websockets_open", kind="unit") == 1
        assert value(end_a, "psc119_websockets_open", kind="unit") == 0
        await phone.close()


def _histogram_moved(before: Samples, after: Samples, histogram: str) -> dict[str, float]:
    """One observation: its count and the buckets at or above it, keyed as `moved` keys them."""
    return {"_count[]": 1, **{f"_bucket[('le', '{le}')]": 1 for le in _buckets_at_or_above(after, before, histogram)}}


async def test_with_postgresql_stopped_the_scrape_still_answers_and_shows_the_outage() -> None:
    async with own_database() as (embedded, dsn):
        api = await start_api(dsn)
        try:
            token = await api.login("operator")
            start = await scrape(api)
            assert value(start, "psc119_database_up") == 1
            await asyncio.to_thread(embedded.halt)
            status, _ = await api.call("GET", "/api/incidents", token)
            assert status == 503
            await asyncio.sleep(1.5)  # three rounds of the acknowledgement sweep
            down = await scrape(api)
            assert value(down, "psc119_database_up") == 0
            errors = value(down, "psc119_database_errors_total", source="request", kind="unreachable")
            assert errors - value(start, "psc119_database_errors_total", source="request", kind="unreachable") == 1
            sweep = dict(sweep="acknowledgement_sweep")
            assert value(down, "psc119_sweep_failures_total", **sweep) - value(start, "psc119_sweep_failures_total", **sweep) >= 2
            assert value(down, "psc119_database_errors_total", source="acknowledgement_sweep", kind="unreachable") >= 2
            assert time.time() - value(down, "psc119_sweep_last_success_timestamp_seconds", **sweep) >= 1.0
            await asyncio.to_thread(embedded.resume)
            for _ in range(50):
                back = await scrape(api)
                if value(back, "psc119_database_up") == 1:
                    break
                await asyncio.sleep(0.2)
            assert value(back, "psc119_database_up") == 1
        finally:
            await api.session.close()
            await api.server.close()


async def test_rooms_joins_relays_and_turn_credentials_are_counted_where_they_happen(demo_dsn: str, tmp_path: Path) -> None:
    a = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path / "a"))
    b = await start_api(demo_dsn, consult_config(demo_dsn, tmp_path / "b"))
    try:
        start_a, start_b = await scrape(a), await scrape(b)
        consult_id, pk, sp = await accepted_consult(a)
        pk_ws, _ = await join(a, consult_id, await token_for(a, consult_id, pk))  # a token and a welcome: two credentials on A
        sp_ws, _ = await join(b, consult_id, await token_for(b, consult_id, sp))  # a token on B; relayed, welcomed by A
        end_a, end_b = await scrape(a), await scrape(b)
        assert value(end_a, "psc119_rooms_open") == 1 and value(end_b, "psc119_rooms_open") == 0

        def delta(name: str, **labels: str) -> tuple[float, float]:
            return value(end_a, name, **labels) - value(start_a, name, **labels), value(end_b, name, **labels) - value(start_b, name, **labels)

        assert delta("psc119_room_joins_total") == (2, 0)
        assert delta("psc119_room_relays_total") == (0, 1)
        assert delta("psc119_turn_credentials_issued_total") == (3, 1)
        assert delta("psc119_websockets_open", kind="room") == (2, 1)  # on A: the direct member and B's relay
        await sp_ws.close()
        await pk_ws.close()
    finally:
        await close_api(b)
        await close_api(a)
