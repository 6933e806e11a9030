"""An embedded MQTT broker (amqtt) for the demo and for machines without mosquitto.

For production use mosquitto: it is faster and has ACLs; this broker exists so that
``smartfactory demo`` needs nothing installed.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def run_broker(host: str, port: int, ready: asyncio.Event | None = None) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "sys_interval": 0,
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    log.info("broker_listening address=%s:%d kind=embedded-amqtt", host, port)
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()
