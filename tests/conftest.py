"""Fixtures that start real servers (Debian's mosquitto and influxd) on free loopback ports.

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
