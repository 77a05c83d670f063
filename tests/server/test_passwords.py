"""Password checks run on their own lower-priority threads, never the event loop's or the default executor's."""

from __future__ import annotations

import dataclasses
import os
import threading

from server.passwords import Passwords
from tests.conftest import TEST_AUTH


class Recording(Passwords):
    def verify_sync(self, stored: str | None, password: str) -> bool:
        self.seen = (threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return super().verify_sync(stored, password)


async def test_checks_run_on_the_argon2_threads_at_the_configured_priority() -> None:
    passwords = Recording(dataclasses.replace(TEST_AUTH, argon2_nice=7))
    try:
        assert await passwords.verify(await passwords.hash("right password"), "right password")
        name, nice = passwords.seen
        assert name.startswith("argon2_") and nice == 7
    finally:
        passwords.close()
