"""Start real ``smartfactory api`` and ``smartfactory collector`` processes for integration tests.

One definition of how a test runs the product's own commands, so every test starts them the
same way (its own session, unbuffered logs in a file, loopback ports) and stops them the same
way. Servers (mosquitto, influxd, PostgreSQL) are in ``tests.servers``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import free_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).with_name("smartfactory")
#: The installed console script when there is one, else the same entry point through the interpreter.
SMARTFACTORY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from cli.main import main; main()"]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1")


class ApiProcess:
    """``smartfactory api -c CONFIG --port PORT`` in a session of its own, so a signal to its process
    group reaches uvicorn's supervisor and every worker (a SIGKILL then is a host's crash)."""

    def __init__(self, config: Path, cwd: Path = ROOT, log: Path | None = None, port: int | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.config, self.cwd = config, cwd
        self.log = log or config.parent / "api.log"
        self.port = port or free_port()
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ApiProcess:
        """Start and wait until ``/health`` answers 200 (fails at once with the log if the process exits)."""
        return self.launch().wait_up(timeout)

    def launch(self) -> ApiProcess:
        """Start without waiting (``wait_up`` later), so other work overlaps the process's start-up."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", *self.extra_args, "api", "-c",
                                          str(self.config), "--port", str(self.port)], cwd=self.cwd, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env(),
                                         start_new_session=True)
        return self

    def wait_up(self, timeout: float = 60) -> ApiProcess:
        wait_until(self.up, timeout, f"the API process ({self.config})")
        return self

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def count(self, event: str) -> int:
        """How many log lines name ``event`` (the product logs ``event key=value ...``)."""
        return len(re.findall(rf"\b{event}\b", self.text()))

    def up(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.text()[-3000:]
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, token: str | None = None, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL to the whole process group: no clean-up code runs, as when a host dies."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class CollectorProcess:
    """``smartfactory collector --config CONFIG``; ``start`` returns once it has subscribed."""

    def __init__(self, config: Path, name: str) -> None:
        self.config, self.name = config, name
        self.log = config.parent / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CollectorProcess:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([*SMARTFACTORY, "collector", "--config", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env())
        proc = self.proc
        wait_until(lambda: "mqtt_subscribed" in self.log.read_text()[offset:] or proc.poll() is not None, 30,
                   f"{self.name} subscribed")
        assert proc.poll() is None, self.log.read_text()[-3000:]
        return self

    def metrics_url(self) -> str:
        port = re.findall(r"metrics_serving url=http://127\.0\.0\.1:(\d+)/metrics", self.log.read_text())[-1]
        return f"http://127.0.0.1:{port}/metrics"

    def metric(self, name: str) -> float:
        for line in httpx.get(self.metrics_url(), timeout=5).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split(" ")[1])
        raise KeyError(name)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
