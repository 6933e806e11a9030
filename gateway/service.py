"""The gateway process: one poller task per device feeding one MQTT publisher."""

from __future__ import annotations

import asyncio
import logging

from gateway.poller import DevicePoller
from gateway.publisher import TelemetryPublisher
from gateway.settings import DeviceSettings, GatewaySettings
from mqttlink import MqttSettings
from plant import MachineRef

log = logging.getLogger("gateway")


async def run_gateway(settings: GatewaySettings, mqtt: MqttSettings) -> None:
    publisher = TelemetryPublisher(mqtt, client_id=settings.id)
    machines = {
        d.name + "\x00" + d.line: MachineRef(settings.tenant, settings.site, d.line, d.name) for d in settings.devices
    }

    def sink(device: DeviceSettings, ts_ms: int, values: dict) -> None:
        publisher.publish(machines[device.name + "\x00" + device.line], ts_ms, values)

    pollers = [DevicePoller(d, sink) for d in settings.devices]
    publisher.start()
    for p in pollers:
        log.info(
            "device_configured device=%s host=%s:%d unit=%d tags=%d reads_per_poll=%d interval_s=%g",
            p.device.name, p.device.host, p.device.port, p.device.unit_id, len(p.device.tags), len(p.reads),
            p.device.poll_interval_s,
        )
    try:
        async with asyncio.TaskGroup() as group:
            for p in pollers:
                group.create_task(p.run(), name=f"poll:{p.device.name}")
    finally:
        for p in pollers:
            p.close()
        publisher.stop()
