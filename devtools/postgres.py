"""Run a real PostgreSQL server for the tests and the demo: Debian's ``postgresql`` binaries,
``initdb`` and ``pg_ctl`` in a temporary folder, on a free port on 127.0.0.1, with password
(SCRAM) authentication. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user that the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "lifecycled"


def pg_bin(program: str) -> str:
    """Path of a PostgreSQL server program (Debian keeps them out of PATH), or FileNotFoundError
    saying how to get them."""
    found = shutil.which(program)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))
    if not candidates:
        raise FileNotFoundError(f"no {program}: install Debian's postgresql (apt-get install "
                                f"postgresql) or run `make system`")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser", path="/usr/sbin:/usr/bin:/sbin:/bin") or "runuser"
    return [runuser, "-u", "postgres", "--", *argv]


@dataclass
class Postgres:
    """A running server: ``url(db)`` has no password; ``password`` is the role's."""

    folder: Path
    port: int
    password: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.url(database), password=self.password, autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str, template: str | None = None) -> str:
        clause = f" TEMPLATE {template}" if template else ""
        self.sql(f"CREATE DATABASE {name}{clause}")
        return self.url(name)

    def stop(self) -> None:
        """Stop at once (as a crash would: no checkpoint); ``start`` brings it back."""
        subprocess.run(_as_server_user([pg_bin("pg_ctl"), "stop", "-D", str(self.folder / "data"),
                                        "-m", "immediate", "-w"]),
                       capture_output=True, check=False)

    def start(self, timeout: float = 60.0) -> None:
        """Start the stopped server again, on the same port, and wait until it answers."""
        _pg_ctl_start(self.folder, self.port, timeout)
        _wait_until_up(self, timeout)


@contextmanager
def temporary_postgres(prefix: str = "lifecycled-pg-") -> Iterator[Postgres]:
    """A server in a new temporary folder (not under pytest's, which is private to the user
    running the tests), stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        server = start_postgres(folder)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def start_postgres(folder: Path, *, timeout: float = 60.0) -> Postgres:
    """initdb + pg_ctl start in ``folder`` (created); returns once it accepts connections. As
    root, the ``postgres`` user must be able to reach ``folder`` (a fresh ``tempfile.mkdtemp()``
    folder, which is then handed to it, does)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    password = secrets.token_urlsafe(16)
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (folder, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    pwfile.chmod(0o600)
    port = _free_port()
    done = subprocess.run(_as_server_user([
        pg_bin("initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
        f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]),
        capture_output=True, text=True)
    if done.returncode != 0:  # e.g. a folder the postgres user cannot reach
        raise RuntimeError(f"initdb failed in {folder}: {done.stderr.strip()}")
    _pg_ctl_start(folder, port, timeout)
    server = Postgres(folder, port, password)
    _wait_until_up(server, timeout)
    return server


def _pg_ctl_start(folder: Path, port: int, timeout: float) -> None:
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
               "-c max_connections=300 -c shared_buffers=64MB")
    subprocess.run(_as_server_user([pg_bin("pg_ctl"), "start", "-D", str(folder / "data"), "-w",
                                    "-t", str(int(timeout)), "-l", str(folder / "server.log"),
                                    "-o", options]), check=True, capture_output=True)


def _wait_until_up(server: Postgres, timeout: float) -> None:
    folder = server.folder
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.sql("SELECT 1")
            return
        except Exception:
            if time.monotonic() > deadline:
                log = (folder / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL did not start: {log}") from None
            time.sleep(0.1)


@dataclass
class PgBouncer:
    """A PgBouncer in transaction pooling mode in front of ``server``: ``url(db)`` reaches the
    server's database ``db`` through it, with the server's password."""

    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def pgbouncer_bin() -> str:
    found = shutil.which("pgbouncer", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise FileNotFoundError("no pgbouncer: install Debian's pgbouncer (apt-get install "
                                "pgbouncer) or run `make system`")
    return found


def start_pgbouncer(server: Postgres, database: str, *, pool_size: int = 2,
                    timeout: float = 30.0) -> PgBouncer:
    """Debian's pgbouncer, transaction pooling (``pool_size`` server connections shared by every
    client, a new one at each transaction), on a free port on 127.0.0.1; returns once it lets a
    query through. As root it runs as the ``postgres`` user, as the server does."""
    port = _free_port()
    folder = server.folder / f"pgbouncer-{port}"
    folder.mkdir()
    (folder / "users.txt").write_text(f'"{USER}" "{server.password}"\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n{database} = host=127.0.0.1 port={server.port} dbname={database}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {folder / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 200\n"
        f"logfile = {folder / 'pgbouncer.log'}\n")
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (folder, folder / "users.txt", folder / "pgbouncer.ini"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    (folder / "users.txt").chmod(0o600)
    process = subprocess.Popen(_as_server_user([pgbouncer_bin(), str(folder / "pgbouncer.ini")]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bouncer = PgBouncer(process, port, folder)
    deadline = time.monotonic() + timeout
    while True:
        try:
            import psycopg

            with psycopg.connect(bouncer.url(database), password=server.password,
                                 autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return bouncer
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                bouncer.stop()
                log = folder / "pgbouncer.log"
                text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"pgbouncer did not start: {text}") from None
            time.sleep(0.1)
