"""A real PgBouncer in transaction mode in front of the test server, for the runs that set
``ICEHOOK_TEST_POOLER=pgbouncer`` (``.ci/run`` does, for the end-to-end flow suite).

Debian's ``pgbouncer`` package is enough (``apt-get install -y pgbouncer``). Every database
of the test server is reachable through it under its own name, so each test's private
database is too; icehook is then configured with ``ICEHOOK_DATABASE_POOLER=transaction``
(``DATABASE_POOLER``). PgBouncer refuses to run as root, so as root it runs as ``nobody``,
from a directory of its own that ``nobody`` may read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

from tests.helpers.servers import free_port

POOLED = os.environ.get("ICEHOOK_TEST_POOLER", "") == "pgbouncer"
DATABASE_POOLER: Literal["none", "transaction"] = "transaction" if POOLED else "none"
START_SECONDS = 20.0


@contextlib.contextmanager
def pgbouncer(server_url: str) -> Iterator[str]:
    """PgBouncer in transaction mode in front of ``server_url``'s server; yields the URL of
    ``server_url``'s database through it."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        raise RuntimeError(
            "ICEHOOK_TEST_POOLER=pgbouncer needs pgbouncer (apt-get install pgbouncer)"
        )
    server = make_url(server_url)
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="icehook-pgbouncer-"))
    directory.chmod(0o777)
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"""[databases]
* = host={server.host or "127.0.0.1"} port={server.port or 5432} user={server.username}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
"""
    )
    config.chmod(0o644)
    as_root = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([binary, *as_root, str(config)], stdout=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (directory / "pgbouncer.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"pgbouncer did not start:\n{log}")
            time.sleep(0.05)
        yield server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(directory, ignore_errors=True)
