"""The gateway process: a poller task per device, a disk outbox, and the MQTT forwarder.

Polls append to the outbox on the event loop (a local SQLite commit); the forwarder
thread publishes from it. Status (birth, Last Will, per-device health) is published
retained beside the telemetry.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from gateway.links import build_links
from gateway.outbox import Outbox
from gateway.poller import DeviceHealth, DevicePoller
from gateway.publisher import Forwarder
from gateway.settings import DeviceSettings, GatewaySettings, Protocol
from mqttlink import MqttSettings
from plant import MachineRef

log = logging.getLogger(__name__)


def outbox_path(settings: GatewaySettings, base_dir: Path) -> Path:
    path = settings.outbox.path or Path(f"{settings.id}.outbox.db")
    return path if path.is_absolute() else base_dir / path


class Gateway:
    """Everything one ``gateway run`` owns; ``run`` polls until cancelled."""

    def __init__(self, settings: GatewaySettings, mqtt: MqttSettings, base_dir: Path = Path(".")) -> None:
        self.settings = settings
        self.outbox = Outbox(outbox_path(settings, base_dir), settings.outbox.max_samples)
        self.forwarder = Forwarder(mqtt, settings, self.outbox)
        self.machines = {id(d): MachineRef(settings.tenant, settings.site, d.line, d.name) for d in settings.devices}
        self.base_dir = base_dir
        self.links: list = []
        self.pollers: list = []  # DevicePoller, or OpcUaDevice for an OPC UA device

    def _build_pollers(self) -> None:
        links = build_links(self.settings.devices)  # needs the running loop
        self.links = list(links.values())
        self.pollers = [self._runner(d, links) for d in self.settings.devices]

    def _runner(self, d: DeviceSettings, links: dict):
        if d.protocol is Protocol.opcua:
            from gateway.opcua import OpcUaDevice

            return OpcUaDevice(d, self._sink, self._health, self.base_dir)
        return DevicePoller(d, links[d.link], self._sink, self._health)

    def _sink(self, device: DeviceSettings, ts_ms: int, values: dict) -> None:
        m = self.machines[id(device)]
        self.outbox.append(f"{m.tenant}/{m.site}/{m.line}/{m.machine}", ts_ms, values)

    def _health(self, device: DeviceSettings, health: DeviceHealth) -> None:
        status = health.as_status()
        log.info(
            "device_health device=%s state=%s ok=%d failed=%d timeouts=%d exceptions=%d latency_ms=%s "
            "lateness_p50_ms=%s lateness_p99_ms=%s last_error=%r",
            device.name, status["state"], health.polls_ok, health.polls_failed, health.timeouts, health.exceptions,
            status["latency_ms"], status["lateness_p50_ms"], status["lateness_p99_ms"], health.last_error,
        )
        self.forwarder.publish_device_status(self.machines[id(device)], status)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.status_interval_s)
            self.forwarder.publish_gateway_status()
            log.info(
                "gateway_status outbox_pending=%d outbox_dropped=%d sent_samples=%d acked_samples=%d mqtt=%s",
                self.outbox.pending, self.outbox.dropped, self.forwarder.sent_samples, self.forwarder.acked_samples,
                "up" if self.forwarder.connected.is_set() else "down",
            )

    async def run(self) -> None:
        self._build_pollers()
        for p in self.pollers:
            d = p.device
            if d.protocol is Protocol.opcua:
                log.info("device_configured device=%s endpoint=%s tags=%d publishing_interval_s=%g", d.name,
                         d.endpoint, len(d.tags), d.poll_interval_s)
                continue
            log.info(
                "device_configured device=%s link=%s unit=%d tags=%d reads_per_poll=%d interval_s=%g",
                d.name, p.link.name, d.unit_id, len(d.tags), len(p.reads), d.poll_interval_s,
            )
        self.forwarder.start()
        try:
            async with asyncio.TaskGroup() as group:
                n = len(self.pollers)
                for i, p in enumerate(self.pollers):
                    # spread the devices' cycles over the interval: no burst of every request at once
                    phase = p.device.poll_interval_s * i / n
                    group.create_task(p.run(phase), name=f"poll:{p.device.name}")
                group.create_task(self._status_loop(), name="status")
        finally:
            for link in self.links:
                link.close()
            await asyncio.to_thread(self.forwarder.stop)
            self.outbox.close()


async def run_gateway(settings: GatewaySettings, mqtt: MqttSettings, base_dir: Path = Path(".")) -> None:
    await Gateway(settings, mqtt, base_dir).run()
