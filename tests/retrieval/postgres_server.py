"""A real PostgreSQL with pgvector for the tests, from the ``pgserver`` wheel (PostgreSQL 16 + pgvector bundled).

Started once per test session in a fresh data directory under the session's temporary directory, listening on
a free loopback TCP port (and its Unix socket), and stopped (its data directory deleted) at the end. ``pgserver`` itself starts PostgreSQL on
a Unix socket only; the server is restarted with its bundled ``pg_ctl`` to listen on 127.0.0.1 as well.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    socket_dir: str
    dbname: str = "postgres"
    user: str = "postgres"

    @property
    def dsn(self) -> str:
        """libpq keywords, for psycopg.connect / psycopg2.connect."""
        return f"host={self.host} port={self.port} dbname={self.dbname} user={self.user}"

    def url(self, driver: str) -> str:
        """A SQLAlchemy URL over ``driver`` (``psycopg`` or ``psycopg2``)."""
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{self.dbname}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data_dir: Path):
    """(Postgres, stop) for a new server in ``data_dir``; raises if it cannot start."""
    import pgserver
    from pgserver import _commands

    server = pgserver.get_server(data_dir, cleanup_mode=None)  # initdb (as a non-root user when run as root), start
    socket_dir = server.get_postmaster_info().socket_dir
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    user = server.system_user
    _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=30)
    port = _free_port()
    log = data_dir / "log"
    _commands.pg_ctl(
        ["-w", "-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", f"-k {socket_dir}", "-l", str(log), "start"],
        pgdata=data_dir, user=user, timeout=30,
    )

    def stop() -> None:
        try:
            _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=30)
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(data_dir, ignore_errors=True)  # ~40 MB per session

    return Postgres(host="127.0.0.1", port=port, socket_dir=str(socket_dir)), stop
