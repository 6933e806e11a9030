"""Start real mosquitto, influxd and PostgreSQL processes on free loopback ports for tests and benchmarks.

Each server gets its own temporary data directory and is stopped (and its data removed by
the caller's tmp dir) afterwards. Nothing here is a mock: these are Debian's binaries.
"""

from __future__ import annotations

import getpass
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")
INFLUXD_CANDIDATES = ("influxd", "/usr/bin/influxd")
INSTALL_HINT = (
    "install Debian's packages: sudo apt-get install -y mosquitto influxdb postgresql "
    "(./sf test does this itself when run as root)"
)


class ServerMissing(RuntimeError):
    pass


def find_binary(candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        path = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
        if path:
            return path
    return None


def require_psycopg() -> None:
    """Skip the calling test module when the PostgreSQL driver is missing; under CI=true that is a failure."""
    import pytest

    try:
        import psycopg  # noqa: F401  (the driver behind postgresql+psycopg:// URLs)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("the psycopg driver is missing: pip install -e '.[test]'", allow_module_level=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_tcp(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout}s: {log.read_text()[-2000:]}")


@dataclass
class ServerProcess:
    name: str
    argv: list[str]
    port: int
    workdir: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.wait_ready()

    def wait_ready(self) -> None:
        assert self.proc is not None
        _wait_tcp(self.port, self.proc, self.log_path)

    def stop(self) -> None:
        """Stop the server cleanly (SIGTERM), so a restart finds its data intact."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Mosquitto(ServerProcess):
    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@dataclass
class Influxd(ServerProcess):
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        super().wait_ready()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"influxd did not answer /ping: {self.log_path.read_text()[-2000:]}")


def mosquitto(workdir: Path, password_file: Path | None = None, acl_file: Path | None = None,
              auth_conf: Path | None = None) -> Mosquitto:
    """With password_file/acl_file, anonymous clients are refused and the ACL applies; with auth_conf
    (the file ``smartfactory broker-acl --conf-file`` writes) its settings are used as they are."""
    binary = find_binary(MOSQUITTO_CANDIDATES)
    if not binary:
        raise ServerMissing(f"mosquitto not found; {INSTALL_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    auth = (f"allow_anonymous false\npassword_file {password_file}\n" if password_file else "allow_anonymous true\n")
    auth += f"acl_file {acl_file}\n" if acl_file else ""
    if auth_conf is not None:
        auth = auth_conf.read_text()
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        + auth +
        "persistence true\n"
        f"persistence_location {workdir}/\n"
        "autosave_interval 1\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 1000\n"
        f"user {getpass.getuser()}\n"
        "log_type error\nlog_type warning\n"
    )
    server = Mosquitto("mosquitto", [binary, "-c", str(conf)], port, workdir)
    server.start()
    return server


def influxd(workdir: Path) -> Influxd:
    binary = find_binary(INFLUXD_CANDIDATES)
    if not binary:
        raise ServerMissing(f"influxd not found; {INSTALL_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    port, rpc_port = free_port(), free_port()
    conf = workdir / "influxdb.conf"
    conf.write_text(
        f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
"""
    )
    server = Influxd("influxd", [binary, "-config", str(conf)], port, workdir)
    server.start()
    return server


# -- PostgreSQL ------------------------------------------------------------------------------------

#: initdb and postgres refuse to run as root; as root the server runs as the first of these users.
POSTGRES_USERS = ("postgres", "nobody")


def postgres_bindir() -> str | None:
    """Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<major>/bin: the newest wins."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("/")[4])] or [0])
    if found:
        return os.path.dirname(found[-1])
    on_path = shutil.which("initdb")
    return os.path.dirname(on_path) if on_path else None


def _unprivileged_user() -> pwd.struct_passwd:
    for name in POSTGRES_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(f"running as root, and none of the users {POSTGRES_USERS} exists to run PostgreSQL as "
                       "(initdb and postgres refuse root): create one (useradd --system postgres) or run as a user")


def _private_base(owner: pwd.struct_passwd | None, workdir: Path) -> Path:
    """The directory holding the cluster: in workdir, or, when the server runs as another user, a fresh
    directory that user owns under the system temp dir (pytest's tmp tree is private to root)."""
    if owner is None:
        return workdir
    parent = Path(tempfile.gettempdir())
    if any(not p.stat().st_mode & 0o001 for p in (parent, *parent.parents)):
        parent = Path("/tmp")  # e.g. TMPDIR=/root/tmp: the server's user could not reach it
    base = Path(tempfile.mkdtemp(prefix="sf-postgres-", dir=parent))
    os.chown(base, owner.pw_uid, owner.pw_gid)
    return base


@dataclass
class Postgres(ServerProcess):
    """A throw-away cluster: TCP on 127.0.0.1 only (no unix socket), password auth, UTF-8, C collation,
    durability off (fsync) for speed. ``stop``/``restart`` keep the data; ``close`` removes it."""

    bindir: str = ""
    base: Path = Path()
    owner: pwd.struct_passwd | None = None
    superuser: str = "smartfactory"
    password: str = ""
    version: str = ""

    def url(self, database: str = "smartfactory") -> str:
        """The SQLAlchemy URL smartfactory's api.database_url takes (psycopg 3 driver)."""
        from urllib.parse import quote

        return f"postgresql+psycopg://{self.superuser}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def _child(self) -> dict:
        """Popen arguments that run a server binary as the unprivileged owner when we are root."""
        if self.owner is None:
            return {}
        return {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": [], "cwd": self.base,
                "env": {**os.environ, "HOME": str(self.base), "USER": self.owner.pw_name, "LOGNAME": self.owner.pw_name}}

    def _client(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"}
        return subprocess.run([os.path.join(self.bindir, tool), "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", self.superuser, *args], env=env, capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     **self._child())
        log.close()
        self.wait_ready()

    def wait_ready(self) -> None:
        """The port opens before recovery ends; pg_isready says when connections are accepted."""
        assert self.proc is not None
        _wait_tcp(self.port, self.proc, self.log_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            if self._client("pg_isready", "-q", "-d", "postgres").returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"postgres did not accept connections: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): SIGTERM would wait for every pooled client connection to close."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        """Stop and remove the cluster (it may live outside workdir, see _private_base)."""
        self.stop()
        shutil.rmtree(self.base / "data", ignore_errors=True)
        if self.base != self.workdir:
            shutil.rmtree(self.base, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        result = self._client("createdb", "-E", "UTF8", name)
        if result.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {result.stderr.strip()}")
        return self.url(name)

    def psql(self, database: str, sql: str) -> str:
        """Run SQL with psql (unaligned, tuples only): for checks that must not go through SQLAlchemy."""
        result = self._client("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()


def postgres(workdir: Path) -> Postgres:
    """initdb a fresh cluster and start it; as root, both run as an unprivileged user (they refuse root)."""
    bindir = postgres_bindir()
    if not bindir or not all(os.access(os.path.join(bindir, b), os.X_OK) for b in ("initdb", "postgres", "createdb")):
        raise ServerMissing(f"PostgreSQL server binaries (initdb, postgres) not found; {INSTALL_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    owner = _unprivileged_user() if os.geteuid() == 0 else None
    base = _private_base(owner, workdir)
    password = "pw-" + secrets.token_urlsafe(12) + "%@/:"  # characters a URL must escape
    port = free_port()
    server = Postgres("postgres", [os.path.join(bindir, "postgres"), "-D", str(base / "data"), "-p", str(port),
                                   "-h", "127.0.0.1", "-k", "",
                                   "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                                   # far from UTC and Seoul: anything that wrongly goes through the server's zone shows
                                   "-c", "TimeZone=Pacific/Kiritimati"],
                      port, workdir, bindir=bindir, base=base, owner=owner, password=password)
    server.version = subprocess.run([server.argv[0], "--version"], capture_output=True, text=True).stdout.strip()
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if owner is not None:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    try:
        with open(server.log_path, "ab") as log:
            result = subprocess.run(
                [os.path.join(bindir, "initdb"), "-D", str(base / "data"), "-U", server.superuser,
                 f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--no-locale",
                 "--no-sync"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120, **server._child())
        if result.returncode != 0:
            server.close()
            raise RuntimeError(f"initdb failed ({result.returncode}): {server.log_path.read_text()[-2000:]}")
    finally:
        pwfile.unlink(missing_ok=True)
    try:
        server.start()
        server.create_database("smartfactory")
    except BaseException:
        server.close()
        raise
    return server
