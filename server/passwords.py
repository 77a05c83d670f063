"""Password hashing with argon2id, on a few threads of its own (it is CPU-heavy by design).

The threads are dedicated, so a flood of logins never takes the default executor
from other work; :class:`~server.hash_slots.HashSlots` bounds how many checks run
and wait; and the threads (with the lane threads argon2 starts from them) run at a
lower CPU priority, so the event loop keeps answering whatever arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading

import argon2

from server.config import AuthSettings
from server.hash_slots import HashSlots


class Passwords:
    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)
        # Verified against when the user does not exist, so both paths cost the same.
        self._dummy = self._hasher.hash("psc119-no-such-user")
        self._threads = concurrent.futures.ThreadPoolExecutor(
            settings.argon2_threads, thread_name_prefix="argon2", initializer=_lower_priority, initargs=(settings.argon2_nice,)
        )
        self._slots = HashSlots(settings.argon2_threads, settings.argon2_queue)

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_sync(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        async with self._slots.slot(0):
            return await asyncio.get_running_loop().run_in_executor(self._threads, self.hash_sync, password)

    async def verify(self, stored: str | None, password: str, rank: int = 0) -> bool:
        """Check a password; ``rank`` orders waiting checks (lower first). Raises HashingBusy when full."""
        async with self._slots.slot(rank):
            return await asyncio.get_running_loop().run_in_executor(self._threads, self.verify_sync, stored, password)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


def _lower_priority(nice: int) -> None:
    # Linux keeps a nice value per thread, and threads started from this one inherit it.
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
