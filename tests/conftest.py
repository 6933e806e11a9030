"""Fixtures that start real servers (Debian's mosquitto, influxd and PostgreSQL) on free loopback ports.

Under CI=true a missing server fails the test instead of skipping it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests import servers


def _start(factory: Callable, workdir) -> servers.ServerProcess:
    try:
        return factory(workdir)
    except servers.ServerMissing as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and a required server is missing: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def mosquitto(tmp_path_factory) -> Iterator[servers.Mosquitto]:
    server = _start(servers.mosquitto, tmp_path_factory.mktemp("mosquitto"))
    yield server
    server.stop()


@pytest.fixture
def influxd(tmp_path_factory) -> Iterator[servers.Influxd]:
    server = _start(servers.influxd, tmp_path_factory.mktemp("influxd"))
    yield server
    server.stop()


@pytest.fixture
def influxd_shards(tmp_path_factory) -> Iterator[dict[str, servers.Influxd]]:
    """Two influxd, ``west`` and ``east``: the shards of a ``store.kind: sharded`` config."""
    west = _start(servers.influxd, tmp_path_factory.mktemp("influxd-west"))
    try:
        east = _start(servers.influxd, tmp_path_factory.mktemp("influxd-east"))
    except BaseException:
        west.stop()
        raise
    yield {"west": west, "east": east}
    east.stop()
    west.stop()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory) -> Iterator[servers.Postgres]:
    """A fresh PostgreSQL cluster per test module (initdb takes seconds); tests that need an empty
    database make their own with ``postgres.create_database(name)``."""
    server = _start(servers.postgres, tmp_path_factory.mktemp("postgres"))
    yield server
    server.close()


#: Debian's chromium, driven by Playwright; never downloaded (factory CI is often offline).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")  # not session: Playwright's sync API keeps an event loop running
def browser():                     # in this thread, which breaks asyncio.run() in later test modules
    """A headless Debian chromium; fails under CI=true when it or playwright is missing, skips otherwise."""
    import shutil

    path = shutil.which("chromium") or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = ("Debian's chromium (sudo apt-get install -y chromium; ./sf test does it as root)" if not path else
               "the playwright package (pip install playwright; no browser download needed)" if not sync_playwright
               else None)
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser tests need {missing}")
        pytest.skip(f"browser tests need {missing}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
