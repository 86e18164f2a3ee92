"""A real PostgreSQL with pgvector for the tests, from the ``pgserver`` wheel (PostgreSQL 16 + pgvector bundled).

Started once per test session in a fresh data directory under the session's temporary directory, listening on
a free loopback TCP port (and a Unix socket), and stopped (its data directory deleted) at the end.

``pgserver`` initialises the data directory (as its own non-root user when run as root) and starts PostgreSQL on a
Unix socket only, waiting 10 s at most; the server is then (re)started with the bundled ``pg_ctl`` to listen on
127.0.0.1 too, with a generous wait: a loaded 2-core CI machine can take longer than pgserver allows.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: How long pg_ctl waits for the server to start or stop (s).
WAIT_S = 120


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


def _socket_dir(data_dir: Path) -> Path:
    """Where the Unix socket goes: a socket path is limited to ~100 bytes."""
    if len(str(data_dir / ".s.PGSQL.65535")) < 100:
        return data_dir
    short = Path(tempfile.mkdtemp(prefix="pg-"))
    short.chmod(0o777)  # PostgreSQL runs as pgserver's own user when we are root
    return short


def _start_once(data_dir: Path):
    import pgserver
    from pgserver import _commands

    user = "pgserver" if os.geteuid() == 0 else None  # pgserver's user for PostgreSQL when we are root
    try:
        server = pgserver.get_server(data_dir, cleanup_mode=None)  # initdb, then a first start on a Unix socket
        user = server.system_user
    except subprocess.TimeoutExpired:
        if not (data_dir / "PG_VERSION").exists():
            raise  # initdb itself did not finish
        # The data directory is ready; the first start was only slower than pgserver waits.

    def pg_ctl(*args: str) -> None:
        _commands.pg_ctl(["-w", "-t", str(WAIT_S), *args], pgdata=data_dir, user=user, timeout=WAIT_S + 10)

    try:
        pg_ctl("-m", "fast", "stop")
    except subprocess.CalledProcessError:
        pass  # not running
    socket_dir = _socket_dir(data_dir)
    port = _free_port()
    try:
        pg_ctl("-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", f"-k {socket_dir}", "-l", str(data_dir / "log"), "start")
    except BaseException:
        try:  # a server that came up after all must not outlive the attempt
            pg_ctl("-m", "immediate", "stop")
        except (subprocess.SubprocessError, OSError):
            pass
        raise

    def stop() -> None:
        try:
            pg_ctl("-m", "fast", "stop")
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(data_dir, ignore_errors=True)  # ~40 MB per session
        if socket_dir != data_dir:
            shutil.rmtree(socket_dir, ignore_errors=True)

    return Postgres(host="127.0.0.1", port=port, socket_dir=str(socket_dir)), stop


def start(base_dir: Path, attempts: int = 2):
    """(Postgres, stop) for a new server in a fresh directory under ``base_dir``; raises if it cannot start."""
    error: BaseException | None = None
    for attempt in range(attempts):
        data_dir = base_dir / f"data{attempt}"
        try:
            return _start_once(data_dir)
        except (subprocess.SubprocessError, OSError) as exc:  # a port taken meanwhile, a slow machine: once more
            error = exc
            log = data_dir / "log"
            if log.exists():
                exc.add_note(log.read_text(errors="replace")[-2000:])
    assert error is not None
    raise error
