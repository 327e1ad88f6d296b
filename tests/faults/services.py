"""Private Redis, PostgreSQL, web server and Celery worker processes for the fault tests.

Each fault test starts its own instances on free loopback ports and stops, kills or restarts those, never the shared
services on 5432/6379. Every process is started in a session of its own and ended by its process group id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("FAULT_PG_BIN", "/usr/lib/postgresql/15/bin"))
VENV_BIN = Path(sys.executable).parent


def missing_tools() -> list[str]:
    """What the fault tests need and this machine lacks (empty: all there)."""
    missing = []
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    for tool in ("initdb", "pg_ctl", "pg_dump", "psql"):
        if not (PG_BIN / tool).exists():
            missing.append(str(PG_BIN / tool))
    if os.geteuid() == 0 and not shutil.which("runuser"):
        missing.append("runuser (PostgreSQL refuses to run as root)")
    for tool in ("gunicorn", "celery"):
        if not (VENV_BIN / tool).exists():
            missing.append(str(VENV_BIN / tool))
    return missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Process:
    """A child process in its own process group, its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict | None = None, cwd: Path = ROOT):
        self.args, self.log, self.env, self.cwd = args, log, env, cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 - fixed argument lists built by the tests
            self.args, cwd=self.cwd, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        """Signals this process's group (its own session: only what it started), then reaps it."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=15)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class RedisServer:
    """redis-server on a free port, in memory only; kill() is a crash, start() brings it back on the same port."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.process: Process | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> RedisServer:
        args = [
            shutil.which("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        self.process = Process(args, self.workdir / "redis.log").start()
        wait_until(self.ping, 15, what=f"redis-server on port {self.port}")
        return self

    def kill(self) -> None:
        self.process.kill()
        wait_until(lambda: not self.ping(), 5, what="redis-server to stop")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temporary directory (run as the `postgres` OS user when we are root)."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bhxh-faults-pg-"))
        self.data = self.dir / "data"
        self.logfile = self.dir / "server.log"

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(  # noqa: S603 - fixed argument lists
            command, check=check, capture_output=True, text=True, timeout=timeout, cwd=self.dir
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/bhxh"

    def init(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        self.start()
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "bhxh")
        return self

    def start(self) -> float:
        """Starts the server and waits until it accepts connections; returns the seconds that took."""
        started = time.monotonic()
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip
        return time.monotonic() - started

    def stop(self, mode: str = "immediate") -> float:
        """`immediate` is a crash (no shutdown checkpoint; recovery on start); returns the seconds it took."""
        started = time.monotonic()
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)
        return time.monotonic() - started

    def psql(self, sql: str) -> str:
        return self._run(str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
                         "bhxh", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql).stdout  # fmt: skip

    def load_from(self, source: dict) -> None:
        """Copies a database (schema and rows) of the shared server into this cluster's `bhxh`."""
        env = {**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""}
        dump = subprocess.run(  # noqa: S603
            [
                str(PG_BIN / "pg_dump"),
                "-h",
                source["HOST"] or "127.0.0.1",
                "-p",
                str(source["PORT"] or 5432),
                "-U",
                source["USER"] or "postgres",
                "--no-owner",
                "--no-privileges",
                source["NAME"],
            ],  # fmt: skip
            check=True,
            capture_output=True,
            env=env,
            timeout=120,
        ).stdout
        subprocess.run(  # noqa: S603
            [
                str(PG_BIN / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "bhxh",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
            ],  # fmt: skip
            input=dump,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database this test process uses (pytest-django's test database)."""
    user = settings_dict.get("USER") or "postgres"
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def app_environment(*, database_url: str, redis_url: str, secret_key: str, **extra) -> dict:
    """Environment of a web server or worker subprocess: production-like settings on plain HTTP."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST", "REQUIRE_", "CELERY_", "LOAD_"))
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=secret_key,
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


class WebServer:
    """gunicorn serving the app (threaded workers), as in production."""

    def __init__(self, env: dict, log: Path, workers: int = 2, threads: int = 8):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [str(VENV_BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(workers), "--threads", str(threads), "--timeout", "60",
                "--graceful-timeout", "5"]  # fmt: skip
        self.process = Process(args, log, env=env)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:  # noqa: S310 - loopback
                return response.status == 200
        except OSError:
            return False

    def start(self, timeout: float = 60) -> WebServer:
        self.process.start()
        try:
            wait_until(lambda: self.healthy() or not self.process.alive(), timeout, 0.2, "the web server")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{tail(self.process.log)}") from exc
        if not self.process.alive():
            raise AssertionError(f"the web server exited:\n{tail(self.process.log)}")
        return self

    def stop(self) -> None:
        self.process.stop()


class Worker:
    """`celery worker` as a subprocess (its pool and concurrency chosen by the test)."""

    def __init__(self, env: dict, log: Path, pool: str = "solo", concurrency: int = 1):
        args = [str(VENV_BIN / "celery"), "-A", "config", "worker", "--pool", pool, "--concurrency",
                str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "-n", f"faults-{os.getpid()}-{free_port()}@%h"]  # fmt: skip
        self.process = Process(args, log, env=env)
        self.log = log

    def start(self, timeout: float = 60) -> Worker:
        self.process.start()
        try:
            wait_until(lambda: " ready." in tail(self.log, 200) or not self.process.alive(), timeout, 0.2, "worker")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{tail(self.log)}") from exc
        if not self.process.alive():
            raise AssertionError(f"the worker exited:\n{tail(self.log)}")
        return self

    def pool_children(self) -> list[int]:
        """Process ids of the prefork pool's children."""
        pid = self.process.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        self.process.stop()
