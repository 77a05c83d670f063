"""Memory a burst freed in the middle of the C heap goes back to the system: on its own, glibc keeps it resident."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys

from server import memory_trim
from server.config import ServerSettings
from server.keys import METRICS
from server.memory_trim import resident_bytes
from tests.conftest import REPO, app_config, start_api
from tests.server.test_consults import close_api

MIB = 1024 * 1024
HOLES = 2000  # of 32 KB each: 64 MB freed


def burst() -> list[bytearray]:
    """What a burst leaves: 64 MB of 32 KB buffers freed between small ones that stay, so that the free memory lies
    in the middle of the heap, in whole pages (as a join's frames and reads lie between the sockets that stay)."""
    stay, freed = [], []
    for _ in range(HOLES):
        freed.append(bytearray(32_000))
        stay.append(bytearray(600))
    del freed
    return stay


def test_the_c_library_trims_here() -> None:
    assert memory_trim.MALLOC_TRIM is not None  # glibc, as on every machine the server is deployed on


# In a process of its own: a long test run's heap holds free pages that would serve the burst without growing.
FRESH_PROCESS = """
import asyncio, json
from server import memory_trim
from server.memory_trim import resident_bytes
from tests.server.test_memory_trim import burst
before = resident_bytes()
stay = burst()
left = resident_bytes()
given_back = asyncio.run(memory_trim.trim())
print(json.dumps([before, left, resident_bytes(), given_back, len(stay)]))
"""


def test_freed_memory_stays_resident_until_a_trim_gives_it_back() -> None:
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    before, left, after, given_back, stayed = json.loads(run.stdout)
    assert left - before > 40 * MIB, (before, left)  # freed, but still counted against the process
    assert left - after > 40 * MIB and given_back > 40 * MIB, (left, after, given_back)
    assert stayed == HOLES  # what stayed is still there


async def test_the_server_trims_every_memory_trim_s_and_counts_what_it_gave_back(demo_dsn: str) -> None:
    config = app_config(demo_dsn)
    api = await start_api(demo_dsn, dataclasses.replace(config, server=ServerSettings(memory_trim_s=0.2)))
    try:
        registry = api.server.app[METRICS].registry
        stay = burst()
        left = resident_bytes()
        # Half the burst at least (a never-trimming server gives back under 16 MB): in a long test run's heap the
        # loop's own allocations fill some of the holes, and the server's trims may begin before ``left`` is read.
        # Both are awaited: memory freed elsewhere in the run (a collected buffer of another test) can lower the
        # resident size before the first trim has counted anything.
        def trimmed() -> float:
            return registry.get_sample_value("psc119_memory_trimmed_bytes_total") or 0

        for _ in range(50):
            await asyncio.sleep(0.1)
            if left - resident_bytes() > 32 * MIB and trimmed() > 32 * MIB:
                break
        assert left - resident_bytes() > 32 * MIB
        assert trimmed() > 32 * MIB
        assert len(stay) == HOLES
    finally:
        await close_api(api)


async def test_a_server_set_to_never_trim_does_not(demo_dsn: str) -> None:
    config = app_config(demo_dsn)
    api = await start_api(demo_dsn, dataclasses.replace(config, server=ServerSettings(memory_trim_s=0)))
    try:
        stay = burst()
        left = resident_bytes()
        await asyncio.sleep(1.0)
        assert left - resident_bytes() < 16 * MIB
        assert api.server.app[METRICS].registry.get_sample_value("psc119_memory_trimmed_bytes_total") == 0
        assert len(stay) == HOLES
    finally:
        await close_api(api)
        await memory_trim.trim()  # what this test left
