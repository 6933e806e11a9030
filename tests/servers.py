"""Start real mosquitto and influxd processes on free loopback ports for tests and benchmarks.

Each server gets its own temporary data directory and is stopped (and its data removed by
the caller's tmp dir) afterwards. Nothing here is a mock: these are Debian's binaries.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")
INFLUXD_CANDIDATES = ("influxd", "/usr/bin/influxd")
INSTALL_HINT = (
    "install Debian's packages: sudo apt-get install -y mosquitto influxdb "
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


def mosquitto(workdir: Path, password_file: Path | None = None, acl_file: Path | None = None) -> Mosquitto:
    """With password_file/acl_file, anonymous clients are refused and the ACL applies."""
    binary = find_binary(MOSQUITTO_CANDIDATES)
    if not binary:
        raise ServerMissing(f"mosquitto not found; {INSTALL_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    auth = (f"allow_anonymous false\npassword_file {password_file}\n" if password_file else "allow_anonymous true\n")
    auth += f"acl_file {acl_file}\n" if acl_file else ""
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
