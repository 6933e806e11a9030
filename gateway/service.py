"""The gateway process: a poller task per device, a disk outbox, and the MQTT forwarder.

Polls append to the outbox on the event loop (a local SQLite commit); the forwarder
thread publishes from it. Status (birth, Last Will, per-device health) is published
retained beside the telemetry.

On ``request_reload`` (SIGHUP) the gateway re-reads its config and swaps the devices whose
settings changed, keeping the outbox, the forwarder and its MQTT session, and the pollers
of unchanged devices. A config that does not load, or that changes what only a restart can
(id, tenant, site, outbox, mqtt), is refused and the running one keeps going.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.links import build_links
from gateway.outbox import Outbox
from gateway.poller import DeviceHealth, DevicePoller
from gateway.publisher import Forwarder
from gateway.settings import DeviceSettings, GatewaySettings, Protocol
from mqttlink import MqttSettings
from plant import MachineRef

if TYPE_CHECKING:
    from gateway.opcua import OpcUaDevice

    Runner = DevicePoller | OpcUaDevice  # an OPC UA device runs a session with subscriptions, not a poller

log = logging.getLogger(__name__)

#: Re-reads the config file: the new gateway and mqtt sections, or raises with an operator-readable message.
ConfigReader = Callable[[], tuple[GatewaySettings, MqttSettings]]


def outbox_path(settings: GatewaySettings, base_dir: Path) -> Path:
    path = settings.outbox.path or Path(f"{settings.id}.outbox.db")
    return path if path.is_absolute() else base_dir / path


class Gateway:
    """Everything one ``gateway run`` owns; ``run`` polls until cancelled."""

    def __init__(self, settings: GatewaySettings, mqtt: MqttSettings, base_dir: Path = Path("."),
                 reader: ConfigReader | None = None) -> None:
        self.settings = settings
        self.mqtt = mqtt
        self.base_dir = base_dir
        self.reader = reader
        self.outbox = Outbox(outbox_path(settings, base_dir), settings.outbox.max_samples)
        self.forwarder = Forwarder(mqtt, settings, self.outbox)
        self.machines: dict[int, MachineRef] = {}
        self.links: dict[tuple, object] = {}
        self.pollers: list[Runner] = []
        self._tasks: dict[int, asyncio.Task] = {}  # id(poller) -> its task
        self._group: asyncio.TaskGroup | None = None
        self._reload_wanted = asyncio.Event()
        self.reloads = 0

    def _build_pollers(self, devices: list[DeviceSettings]) -> list[Runner]:
        """Links and pollers for ``devices``, which must have links of their own (needs the running loop)."""
        links = build_links(devices)
        self.links.update(links)
        for d in devices:
            self.machines[id(d)] = MachineRef(self.settings.tenant, self.settings.site, d.line, d.name)
        pollers = [self._runner(d, links) for d in devices]
        for p in pollers:
            d = p.device
            if not isinstance(p, DevicePoller):
                log.info("device_configured device=%s endpoint=%s tags=%d publishing_interval_s=%g", d.name,
                         d.endpoint, len(d.tags), d.poll_interval_s)
                continue
            log.info(
                "device_configured device=%s link=%s tags=%d reads_per_poll=%d interval_s=%g",
                d.name, p.link_label, len(d.tags), len(p.reads), d.poll_interval_s,
            )
        return pollers

    def _runner(self, d: DeviceSettings, links: dict) -> Runner:
        if d.protocol is Protocol.opcua:
            from gateway.opcua import OpcUaDevice

            return OpcUaDevice(d, self._sink, self._health, self.base_dir)
        return DevicePoller(d, links[d.link], self._sink, self._health)

    def _start(self, pollers: list[Runner], spread: bool) -> None:
        assert self._group is not None
        n = len(pollers)
        for i, p in enumerate(pollers):
            # spread the devices' cycles over the interval: no burst of every request at once
            phase = p.device.poll_interval_s * i / n if spread else 0.0
            self._tasks[id(p)] = self._group.create_task(p.run(phase), name=f"poll:{p.device.name}")
        self.pollers.extend(pollers)

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

    # ------------------------------------------------------------------ reload (SIGHUP)

    def request_reload(self) -> None:
        """Ask for a config reload; called from the loop (a signal handler). Reloads run one at a time."""
        self._reload_wanted.set()

    async def _reload_loop(self) -> None:
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            try:
                await self.reload()
            except Exception:  # noqa: BLE001 - a failed reload must never stop a running gateway
                log.exception("reload_failed; the running config is kept")

    def _restart_only(self, new: GatewaySettings, mqtt: MqttSettings) -> list[str]:
        """The changed settings a reload cannot apply: the forwarder's session and the outbox depend on them."""
        old = self.settings
        keys = [k for k in ("id", "tenant", "site", "outbox") if getattr(old, k) != getattr(new, k)]
        if outbox_path(old, self.base_dir) == outbox_path(new, self.base_dir) and "outbox" in keys:
            keys.remove("outbox")
            keys += [f"outbox.{k}" for k in type(old.outbox).model_fields
                     if k != "path" and getattr(old.outbox, k) != getattr(new.outbox, k)]
        if mqtt != self.mqtt:
            keys.append("mqtt")
        return [f"gateway.{k}" if k != "mqtt" else k for k in keys]

    async def reload(self) -> bool:
        """Re-read the config and apply its devices; False (and the old config kept) when it is refused."""
        if self.reader is None:
            log.warning("reload_refused reason=%r", "this gateway was started without a config file to re-read")
            return False
        log.info("reload_requested")
        try:
            new, mqtt = await asyncio.to_thread(self.reader)
        except Exception as exc:  # noqa: BLE001 - the reader's message names the file and key path
            # one journal line: the reader's message may list several problems, one a line
            log.error("reload_refused the running config is kept: %s", "; ".join(x.strip() for x in str(exc).splitlines()))
            return False
        blocked = self._restart_only(new, mqtt)
        if blocked:
            log.error("reload_refused the running config is kept: changed %s; these need a restart "
                      "(systemctl restart smartfactory-gateway)", ", ".join(blocked))
            return False
        old_by_key = {(d.line, d.name): d for d in self.settings.devices}
        new_by_key = {(d.line, d.name): d for d in new.devices}
        changed = {k for k in old_by_key.keys() | new_by_key.keys() if old_by_key.get(k) != new_by_key.get(k)}
        # a changed device restarts every device on its connection (a shared bus is one link)
        touched = {old_by_key[k].link for k in changed if k in old_by_key} | \
                  {new_by_key[k].link for k in changed if k in new_by_key}
        stopping = [p for p in self.pollers if p.device.link in touched]
        tasks = [self._tasks.pop(id(p)) for p in stopping]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # stopped before their links close
        for p in stopping:
            self.pollers.remove(p)
        for key in touched:
            link = self.links.pop(key, None)
            if link is not None:
                link.close()  # type: ignore[attr-defined]
        kept = [old_by_key[k] for k in old_by_key if k not in changed]
        starting = [d for d in new.devices if d.link in touched]
        # unchanged devices keep their settings objects (and their machines map entries)
        self.settings = new.model_copy(update={"devices": kept + starting})
        self.forwarder.gateway = self.settings
        live = {id(d) for d in self.settings.devices}
        self.machines = {k: m for k, m in self.machines.items() if k in live}
        self._start(self._build_pollers(starting), spread=False)
        self.reloads += 1
        log.info("reload_done devices=%d added=%s removed=%s changed=%s restarted=%s outbox_pending=%d",
                 len(self.settings.devices),
                 ",".join(sorted(n for (_, n) in new_by_key.keys() - old_by_key.keys())) or "-",
                 ",".join(sorted(n for (_, n) in old_by_key.keys() - new_by_key.keys())) or "-",
                 ",".join(sorted(n for (_, n) in changed & old_by_key.keys() & new_by_key.keys())) or "-",
                 ",".join(sorted(d.name for d in starting)) or "-", self.outbox.pending)
        return True

    async def run(self) -> None:
        pollers = self._build_pollers(self.settings.devices)  # needs the running loop
        self.forwarder.start()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._start(pollers, spread=True)
                group.create_task(self._status_loop(), name="status")
                group.create_task(self._reload_loop(), name="reload")
        finally:
            for link in self.links.values():
                link.close()  # type: ignore[attr-defined]
            await asyncio.to_thread(self.forwarder.stop)
            self.outbox.close()


async def run_gateway(settings: GatewaySettings, mqtt: MqttSettings, base_dir: Path = Path("."),
                      reader: ConfigReader | None = None, started: Callable[[Gateway], None] | None = None) -> None:
    """``started`` gets the gateway once it exists (the CLI hooks SIGHUP to its ``request_reload``)."""
    gw = Gateway(settings, mqtt, base_dir, reader)
    if started is not None:
        started(gw)
    await gw.run()
