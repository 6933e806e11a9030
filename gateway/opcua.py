# asyncua annotates with NewTypes (Int16, UInt32, Boolean) that reject the plain ints and bools its
# own documentation passes (ua.NodeId(ua.ObjectIds.RootFolder)); those three checks are off here.
# mypy: disable-error-code="arg-type, assignment, call-overload"
"""An OPC UA device: one client session (asyncua) that subscribes to the tags' nodes.

Not a ``DevicePoller`` with an OPC UA link, because OPC UA is not request/response over an
address map: the server samples each node itself (at the tag's interval) and publishes the
changes (at the device's interval, at most ``MAX_PUBLISH_S`` apart), so there is no read plan to make, no span to bisect,
and what keeps the device "online" is a live session rather than a good read. So this is a
runner of its own with the same outside: the same ``SampleSink`` and ``HealthSink``, the
same ``DeviceHealth`` and damping (``DeviceHealthKeeping``), the same backoff; the service
runs it like a poller.

- At every connect the namespace URIs are looked up in the server's namespace array and the
  browse paths translated, since a server may renumber its namespaces when it restarts.
- A change arrives with the server's source timestamp. A ``report: every_poll`` tag whose
  value did not change is sent again every interval, stamped with the gateway's clock (the
  live subscription vouches that it held), so its samples keep coming as from a polled device
  and the store never takes a quiet tag for a stale one. A change still in the server's
  publish queue at that instant (up to one publishing interval) makes that re-sent value one
  that was just superseded; the change follows, stamped after it.
- A node with a bad (or uncertain) status is a per-tag error: listed in ``unreadable_tags``
  and logged once with the status name, while the other tags keep flowing.
- A server that refuses a subscription (or a monitored item) gets those tags polled with
  one Read request per interval instead.
- A lost connection is a failed cycle: the session is dropped and rebuilt (subscriptions
  included) after the same doubling backoff as a poller's, and the same damping decides
  when the device is reported offline.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import Subscription
from asyncua.crypto import security_policies

from gateway.poller import (DeviceHealth, DeviceHealthKeeping, HealthSink, PollError, SampleSink, Values, _stop_if_cancelled,
                            backoff_s, next_slot)
from gateway.reporting import ChangeFilter
from gateway.settings import DeviceSettings, OpcUaSecurityMode
from plcprotocol.opcua import Namespace, NodeRef, parse_node_id, parse_path_element
from registermap import OpcUaTag, OpcUaType
from wire.payload import MAX_TS_MS, MIN_TS_MS

log = logging.getLogger("gateway.opcua")

#: a monitored-item result that means "this server will not monitor it": poll the node instead
_POLL_INSTEAD = {ua.StatusCodes.BadMonitoredItemFilterUnsupported, ua.StatusCodes.BadTooManyMonitoredItems,
                 ua.StatusCodes.BadServiceUnsupported, ua.StatusCodes.BadMonitoringModeInvalid,
                 ua.StatusCodes.BadFilterNotAllowed, ua.StatusCodes.BadResourceUnavailable}
_MAX_STRING = 256  # the wire contract's longest string value
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ResolveError(Exception):
    """A tag's node cannot be found on this server (unknown namespace URI, no such browse path)."""


def status_name(code: ua.StatusCode | int | None) -> str:
    """The status code's name as the spec writes it (BadNotReadable), for logs and health."""
    value = code.value if isinstance(code, ua.StatusCode) else int(code or 0)
    try:
        return ua.StatusCode(value).name
    except Exception:  # noqa: BLE001 - an unknown code still gets a readable label
        return f"0x{value:08X}"


def _is_good(code: ua.StatusCode | None) -> bool:
    return code is None or (code.value >> 30) == 0


def _ms(ts: datetime | None) -> int | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    ms = int((ts - _EPOCH).total_seconds() * 1000)
    return ms if MIN_TS_MS <= ms < MAX_TS_MS else None


def convert(tag: OpcUaTag, raw: Any) -> bool | int | float | str:
    """The variant's value as the wire's bool/int/float/str, then the tag's type and scaling.
    Raises ValueError for what has no scalar meaning (arrays, structures, byte strings)."""
    value: Any = raw
    if isinstance(value, (list, tuple)):
        raise ValueError(f"the node holds an array of {len(value)}; name one element's node instead")
    if isinstance(value, ua.LocalizedText):
        value = value.Text or ""
    elif isinstance(value, ua.QualifiedName):
        value = value.Name or ""
    elif isinstance(value, datetime):
        value = _ms(value)
        if value is None:
            raise ValueError("the DateTime is out of range")
    elif isinstance(value, uuid.UUID):
        value = str(value)
    elif isinstance(value, ua.NodeId):
        value = value.to_string()
    elif isinstance(value, Enum):
        value = value.value
    elif isinstance(value, (bytes, bytearray)) or value is None:
        raise ValueError("the node holds a " + ("null" if value is None else "ByteString") + ", not a scalar")
    if not isinstance(value, (bool, int, float, str)):
        raise ValueError(f"the node holds a {type(raw).__name__}, not a number, bool or string")
    if tag.type is OpcUaType.bool:
        value = value.strip().lower() in ("1", "true", "on") if isinstance(value, str) else bool(value)
    elif tag.type is OpcUaType.int:
        value = int(float(value)) if isinstance(value, str) else int(value)
    elif tag.type is OpcUaType.float:
        value = float(value)
    elif tag.type is OpcUaType.string:
        value = str(value).lower() if isinstance(value, bool) else str(value)
    if tag.scaled:
        if isinstance(value, (str, bool)):
            raise ValueError(f"scale/offset on a {type(value).__name__} value")
        value = value * tag.scale + tag.offset
    if isinstance(value, str) and len(value) > _MAX_STRING:
        value = value[:_MAX_STRING]
    return value


@dataclass
class _Node:
    """A tag resolved against one session."""

    tag: OpcUaTag
    node_id: ua.NodeId
    interval_s: float


def _namespace_index(ns: Namespace, device: DeviceSettings, array: list[str], where: str) -> int:
    uri = ns.uri if ns.uri is not None else (device.namespaces.get(ns.index) if ns.index else None)
    if uri is None:
        return ns.index or 0
    try:
        return array.index(uri)
    except ValueError:
        known = ", ".join(f"{i}: {u}" for i, u in enumerate(array))
        raise ResolveError(f"{where}: namespace {uri!r} is not on the server; it has {known}") from None


def _node_id(ref: NodeRef, index: int) -> ua.NodeId:
    if ref.kind == "i":
        return ua.NodeId(ref.identifier, index, ua.NodeIdType.Numeric)
    if ref.kind == "s":
        return ua.NodeId(ref.identifier, index, ua.NodeIdType.String)
    if ref.kind == "g":
        return ua.NodeId(ref.identifier, index, ua.NodeIdType.Guid)
    return ua.NodeId(ref.identifier, index, ua.NodeIdType.ByteString)


def browse_path(elements: list[tuple[int, str]]) -> ua.RelativePath:
    path = ua.RelativePath()
    for index, name in elements:
        element = ua.RelativePathElement()
        element.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
        element.IsInverse = False
        element.IncludeSubtypes = True
        element.TargetName = ua.QualifiedName(name, index)
        path.Elements.append(element)
    return path


async def resolve(client: Client, device: DeviceSettings) -> tuple[list[_Node], dict[str, str]]:
    """Each tag's node id on this server, and the tags that cannot be found (name -> why)."""
    array = await client.get_namespace_array()
    nodes: list[_Node] = []
    problems: dict[str, str] = {}
    paths: list[tuple[int, OpcUaTag, ua.RelativePath]] = []
    for i, tag in enumerate(device.tags):
        assert isinstance(tag, OpcUaTag)
        try:
            if tag.node_id is not None:
                ref = parse_node_id(tag.node_id, tag.namespace_uri)
                index = _namespace_index(ref.namespace, device, array, f"tags[{i}].node_id ({tag.name})")
                nodes.append(_Node(tag, _node_id(ref, index), device.interval_of(tag)))
            else:
                elements = []
                for text in tag.browse_path or ():
                    element = parse_path_element(text)
                    elements.append((_namespace_index(element.namespace, device, array, f"tags[{i}].browse_path ({tag.name})"),
                                     element.name))
                paths.append((i, tag, browse_path(elements)))
        except ResolveError as exc:
            problems[tag.name] = str(exc)
    if paths:
        results = await client.translate_browsepaths(ua.NodeId(ua.ObjectIds.RootFolder), [p for _, _, p in paths])
        for (i, ptag, _), result in zip(paths, results):
            if not _is_good(result.StatusCode) or not result.Targets:
                problems[ptag.name] = (f"tags[{i}].browse_path ({ptag.name}): {'/'.join(ptag.browse_path or ())} "
                                       f"not found on the server ({status_name(result.StatusCode)})")
                continue
            target = result.Targets[0].TargetId  # an ExpandedNodeId: keep the plain node id
            nodes.append(_Node(ptag, ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType),
                               device.interval_of(ptag)))
    return nodes, problems


async def make_client(device: DeviceSettings, base_dir: Path) -> Client:
    """A client for the device's endpoint, with its security and user set (not yet connected)."""
    assert device.endpoint is not None
    client = Client(device.endpoint, timeout=device.timeout_s, watchdog_intervall=max(1.0, device.poll_interval_s))
    client.name = client.description = f"smartfactory gateway ({device.name})"
    sec = device.security
    if sec is not None and sec.mode is not OpcUaSecurityMode.none:
        sec = sec.resolved(base_dir)
        from asyncua.crypto import uacrypto
        from cryptography import x509

        assert sec.certificate and sec.private_key and sec.server_certificate
        for what, path in (("certificate", sec.certificate), ("private_key", sec.private_key),
                           ("server_certificate", sec.server_certificate)):
            if not path.is_file():
                raise PollError(f"security.{what}: no file {path}")
        cert = await uacrypto.load_certificate(str(sec.certificate))
        try:
            uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            client.application_uri = uris.get_values_for_type(x509.UniformResourceIdentifier)[0]
        except (x509.ExtensionNotFound, IndexError):
            pass  # the server may refuse it (BadCertificateUriInvalid); the error says so
        mode = ua.MessageSecurityMode.SignAndEncrypt if sec.mode is OpcUaSecurityMode.sign_and_encrypt \
            else ua.MessageSecurityMode.Sign
        await client.set_security(getattr(security_policies, f"SecurityPolicy{sec.policy}"), str(sec.certificate),
                                  str(sec.private_key), sec.private_key_password, str(sec.server_certificate), mode)
    if device.username is not None:
        client.set_user(device.username)
        if device.password is not None:
            client.set_password(device.password)
    return client


#: what a server answers when it will not take the gateway's certificate
_CERTIFICATE_REFUSED = {ua.StatusCodes.BadCertificateUntrusted, ua.StatusCodes.BadCertificateInvalid,
                        ua.StatusCodes.BadCertificateUriInvalid, ua.StatusCodes.BadCertificateTimeInvalid,
                        ua.StatusCodes.BadCertificateRevoked, ua.StatusCodes.BadCertificateUseNotAllowed,
                        ua.StatusCodes.BadCertificateIssuerRevocationUnknown,
                        ua.StatusCodes.BadCertificateRevocationUnknown, ua.StatusCodes.BadSecurityChecksFailed}
_MODE_NAME = {ua.MessageSecurityMode.None_: "none", ua.MessageSecurityMode.Sign: "sign",
              ua.MessageSecurityMode.SignAndEncrypt: "sign_and_encrypt"}


def certificate_refused(device: DeviceSettings, exc: ua.UaStatusCodeError) -> str | None:
    """The error for a server that refused the gateway's certificate, naming the config key."""
    if device.security is None or device.security.mode is OpcUaSecurityMode.none or exc.code not in _CERTIFICATE_REFUSED:
        return None
    return (f"security.certificate ({device.security.certificate}): the server refused the gateway's certificate "
            f"({status_name(exc.code)}); trust it on the server (copy it into the server's trusted certificates, "
            "e.g. its PKI trusted/certs folder), or set security.certificate and security.private_key to a pair "
            "the server trusts")


async def security_mismatch(device: DeviceSettings, base_dir: Path) -> str | None:
    """Why a secured session could not be opened, when the server's endpoints say so: the
    policy and mode are not offered, or the pinned server certificate is not the one the server
    presents (the server then cannot decrypt what the gateway sends and stays silent). Asked over
    an unsecured channel (GetEndpoints needs none); None when the endpoints show no mismatch."""
    sec = device.security
    if sec is None or sec.mode is OpcUaSecurityMode.none or device.endpoint is None:
        return None
    from asyncua.crypto import uacrypto

    probe = Client(device.endpoint, timeout=device.timeout_s)
    try:
        endpoints = await asyncio.wait_for(probe.connect_and_get_server_endpoints(), device.timeout_s * 4)
    except Exception:  # noqa: BLE001 - no answer to the probe either: the original error stands
        return None
    policy = getattr(security_policies, f"SecurityPolicy{sec.policy}").URI
    mode = ua.MessageSecurityMode.SignAndEncrypt if sec.mode is OpcUaSecurityMode.sign_and_encrypt \
        else ua.MessageSecurityMode.Sign
    offered = sorted({f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]} {_MODE_NAME.get(e.SecurityMode, str(e.SecurityMode))}"
                      for e in endpoints})
    matching = [e for e in endpoints if e.SecurityPolicyUri == policy and e.SecurityMode == mode]
    if not matching:
        return (f"security.mode / security.policy: the server offers no {sec.policy} {sec.mode.value} endpoint; "
                f"it offers {', '.join(offered)}: set security.mode and security.policy to one of them")
    path = sec.resolved(base_dir).server_certificate
    assert path is not None
    try:
        pinned = uacrypto.der_from_x509(await uacrypto.load_certificate(str(path)))
    except Exception as exc:  # noqa: BLE001 - an unreadable file is named with why
        return f"security.server_certificate ({sec.server_certificate}): not a certificate ({type(exc).__name__}: {exc})"
    if all(pinned not in bytes(e.ServerCertificate or b"") for e in matching):
        return (f"security.server_certificate ({sec.server_certificate}): not the certificate this server presents "
                "on its endpoint; copy the server's own certificate (its PKI own/certs folder) into that file")
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ua.UaStatusCodeError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "Timeout: no answer"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


#: The longest the server may hold a change before publishing it: with the publishing interval at the
#: poll interval (1 s), a change waited up to 1 s in the server's queue, and a dashboard showed it up to
#: 1.6 s after it happened (bench/live.py). Publishes carry only changes (and keep-alives), so a short
#: one costs nothing while the values hold.
MAX_PUBLISH_S = 0.25


def publishing_interval_ms(poll_interval_s: float) -> float:
    """The subscription's requested publishing interval: the poll interval, at most ``MAX_PUBLISH_S``."""
    return min(poll_interval_s, MAX_PUBLISH_S) * 1000


@dataclass
class OpcUaDevice(DeviceHealthKeeping):
    device: DeviceSettings
    sink: SampleSink
    health_sink: HealthSink | None = None
    base_dir: Path = Path(".")
    health: DeviceHealth = field(default_factory=DeviceHealth)
    lateness_ms: deque = field(default_factory=lambda: deque(maxlen=100_000))
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.filter = ChangeFilter(self.device.tags)
        self.intervals = sorted({self.device.interval_of(t) for t in self.device.tags})
        self._last_status = 0.0
        self._cycles = self._cycles_summarised = 0
        self._failing_since: float | None = None
        self.client: Client | None = None
        self.subscription: Subscription | None = None
        self.subscribed: list[str] = []  # tag names on monitored items
        self.polled: list[_Node] = []  # nodes read each interval instead
        self._by_node: dict[ua.NodeId, list[_Node]] = {}
        self._bad: dict[str, str] = {}  # tag -> why it has no value
        self._latest: dict[str, tuple[bool | int | float | str, int]] = {}  # tag -> (value, its ts)
        self._sent_ms: dict[str, int] = {}  # tag -> ts of the last sample that carried it
        self._lost: asyncio.Event = asyncio.Event()
        self._lost_reason = ""
        self._pending: dict[int, Values] = {}
        self._flush_scheduled = False

    @property
    def link_label(self) -> str:
        return str(self.device.endpoint)

    async def run(self, phase_s: float = 0.0) -> None:
        """Keep a session with subscriptions up until cancelled; rebuild it after any failure."""
        if phase_s > 0:
            await asyncio.sleep(phase_s)
        try:
            while True:
                try:
                    await self._session()
                except Exception as exc:  # noqa: BLE001 - a long-running device must outlive any one session
                    _stop_if_cancelled()
                    if not isinstance(exc, (PollError, OSError, TimeoutError, asyncio.TimeoutError, ua.UaError)):
                        log.exception("session_crashed device=%s", self.device.name)
                    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
                        self.health.timeouts += 1
                    self._failed(exc.args[0] if isinstance(exc, PollError) else _describe(exc))
                    await self.close()
                    await asyncio.sleep(backoff_s(self.device.poll_interval_s, self.health.consecutive_failures,
                                                  self.device.max_backoff_s))
        finally:
            await self.close()

    async def close(self) -> None:
        client, self.client, self.subscription = self.client, None, None
        if client is None:
            return
        try:
            if self._lost.is_set():
                client.disconnect_socket()
                for task in (client._supervisor_task, client._stale_watchdog_task, client._renew_channel_task):
                    if task is not None:
                        task.cancel()
            else:
                await asyncio.wait_for(client.disconnect(), self.device.timeout_s)
        except Exception:  # noqa: BLE001 - closing a broken session must not fail the next one
            client.disconnect_socket()

    async def _session(self) -> None:
        d = self.device
        self._lost = asyncio.Event()
        started = time.perf_counter()
        self.client = client = await make_client(d, self.base_dir)

        async def lost(exc: Exception) -> None:
            self._lost_reason = f"connection lost: {_describe(exc)}"
            self._lost.set()

        client.connection_lost_callback = lost
        try:
            await asyncio.wait_for(client.connect(auto_reconnect=False), d.timeout_s * 4)
        except ua.UaStatusCodeError as exc:
            refused = certificate_refused(d, exc)
            if refused is None:
                raise
            raise PollError(refused) from None
        except (TimeoutError, asyncio.TimeoutError, ua.UaError, OSError):
            mismatch = await security_mismatch(d, self.base_dir)
            if mismatch is None:
                raise
            raise PollError(mismatch) from None
        nodes, problems = await resolve(client, d)
        for name, why in problems.items():
            self._set_bad(name, why)
        self._by_node = {}
        for n in nodes:
            self._by_node.setdefault(n.node_id, []).append(n)
        await self._subscribe(client, nodes)
        if self.polled:
            await self._poll(self.polled)
        self._succeeded(time.time_ns() // 1_000_000, (time.perf_counter() - started) * 1000)
        log.info("opcua_session device=%s endpoint=%s security=%s subscribed=%d polled=%d unresolved=%d",
                 d.name, d.endpoint, d.security.mode.value if d.security else "none", len(self.subscribed),
                 len(self.polled), len(problems))
        await self._cycles_loop()

    async def _subscribe(self, client: Client, nodes: list[_Node]) -> None:
        d = self.device
        self.subscribed, self.polled = [], []
        if not nodes:
            return
        publish_ms = publishing_interval_ms(d.poll_interval_s)
        try:
            self.subscription = await client.create_subscription(publish_ms, handler=self)
        except ua.UaStatusCodeError as exc:
            log.warning("subscription_refused device=%s status=%s action=poll tags=%d", d.name, type(exc).__name__, len(nodes))
            self.polled = list(nodes)
            return
        by_interval: dict[float, list[_Node]] = {}
        for n in nodes:
            by_interval.setdefault(n.interval_s, []).append(n)
        for interval, group in by_interval.items():
            # the server samples at the tag's interval and queues what changed between publishes
            queue = max(1, min(100, math.ceil(d.poll_interval_s / interval)))
            unique = list(dict.fromkeys(n.node_id for n in group))
            results = await self.subscription.subscribe_data_change(
                [client.get_node(node_id) for node_id in unique], queuesize=queue, sampling_interval=interval * 1000)
            for node_id, result in zip(unique, results):
                tags = [n for n in group if n.node_id == node_id]
                if isinstance(result, ua.StatusCode):
                    if result.value in _POLL_INSTEAD:
                        log.warning("monitoring_refused device=%s tags=%s status=%s action=poll", d.name,
                                    ",".join(n.tag.name for n in tags), status_name(result))
                        self.polled.extend(tags)
                    else:
                        for n in tags:
                            self._set_bad(n.tag.name, status_name(result))
                    continue
                self.subscribed.extend(n.tag.name for n in tags)

    async def _cycles_loop(self) -> None:
        """Each interval: check the session, poll what could not be subscribed, re-send quiet
        every_poll tags, count a good cycle; until the connection is lost."""
        now = time.monotonic()
        due_at = {i: now + i for i in self.intervals}
        previous = {i: time.time_ns() // 1_000_000 for i in self.intervals}
        while True:
            wait = max(0.0, min(due_at.values()) - time.monotonic())
            try:
                await asyncio.wait_for(self._lost.wait(), wait)
            except (TimeoutError, asyncio.TimeoutError):
                pass
            if self._lost.is_set():
                raise PollError(self._lost_reason or "connection lost")
            start = time.monotonic()
            self.lateness_ms.append((start - min(due_at.values())) * 1000)
            self._cycles += 1
            due = [i for i in self.intervals if due_at[i] <= start + 0.001]
            started = time.perf_counter()
            polled = [n for n in self.polled if n.interval_s in due]
            if polled:
                await self._poll(polled)
            self._flush()
            now_ms = time.time_ns() // 1_000_000
            self._resend_quiet(due, previous, now_ms)
            for i in due:
                previous[i] = now_ms
                due_at[i] = next_slot(due_at[i], i, time.monotonic())
            self._succeeded(now_ms, (time.perf_counter() - started) * 1000 if polled else 0.0)
            self._maybe_status()

    async def _poll(self, nodes: list[_Node]) -> None:
        assert self.client is not None
        unique = list(dict.fromkeys(n.node_id for n in nodes))
        try:
            values = await self.client.read_attributes([self.client.get_node(i) for i in unique])
        except (TimeoutError, asyncio.TimeoutError):
            self.health.timeouts += 1
            raise PollError(f"read of {len(unique)} nodes: Timeout, no answer in {self.device.timeout_s:g} s") from None
        except (ua.UaError, OSError, ConnectionError) as exc:
            raise PollError(f"read of {len(unique)} nodes: {_describe(exc)}") from None
        for node_id, dv in zip(unique, values):
            self._on_value(node_id, dv, [n for n in nodes if n.node_id == node_id])
        self._flush()

    # --- asyncua's subscription handler ------------------------------------------------

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self._on_value(node.nodeid, data.monitored_item.Value, self._by_node.get(node.nodeid, []))

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        if not _is_good(status.Status):
            self._lost_reason = f"subscription ended: {status_name(status.Status)}"
            self._lost.set()

    # --- values ------------------------------------------------------------------------

    def _on_value(self, node_id: ua.NodeId, dv: ua.DataValue | None, nodes: list[_Node]) -> None:
        now_ms = time.time_ns() // 1_000_000
        for n in nodes:
            name = n.tag.name
            code = dv.StatusCode if dv is not None else None
            if dv is None or not _is_good(code):
                self._set_bad(name, status_name(code) if code is not None else "no value")
                continue
            raw = dv.Value.Value if dv.Value is not None else None
            try:
                value = convert(n.tag, raw)
            except ValueError as exc:
                self._set_bad(name, str(exc))
                continue
            if isinstance(value, float) and not math.isfinite(value):
                log.warning("value_skipped device=%s tag=%s reason=not-finite value=%r", self.device.name, name, value)
                continue
            ts = _ms(dv.SourceTimestamp) or _ms(dv.ServerTimestamp) or now_ms
            # never stamp a change before a sample already sent (a re-sent quiet value, a replay)
            ts = max(ts, self._sent_ms.get(name, 0) + 1)
            self._set_good(name)
            self._latest[name] = (value, ts)
            self._pending.setdefault(ts, {})[name] = value
        if self._pending and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Send what arrived, one sample per source timestamp (a publish carries many tags)."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for ts in sorted(pending):
            self._emit(ts, pending[ts])

    def _emit(self, ts: int, values: Values) -> None:
        selected = self.filter.select(ts, values)
        if selected:
            for name in selected:
                self._sent_ms[name] = max(ts, self._sent_ms.get(name, 0))
            self.sink(self.device, ts, selected)

    def _resend_quiet(self, due: list[float], previous: dict[float, int], now_ms: int) -> None:
        """Values that held through the interval: every_poll tags not sent since the last cycle,
        and on_change tags for their heartbeat. Stamped now: the live subscription vouches that
        they have not changed (a change still in flight is stamped after this, see _on_value)."""
        polled = {n.tag.name for n in self.polled}
        out: Values = {}
        for tag in self.device.tags:
            interval = self.device.interval_of(tag)
            if interval not in due or tag.name not in self._latest or tag.name in self._bad:
                continue
            value, ts = self._latest[tag.name]
            if tag.name in polled:
                continue  # read just now: already sent (or filtered) with its own timestamp
            if getattr(tag, "report", None) is not None and tag.report.value == "every_poll" \
                    and self._sent_ms.get(tag.name, 0) > previous[interval]:
                continue  # a change already carried it this interval
            if now_ms <= self._sent_ms.get(tag.name, 0):
                continue
            out[tag.name] = value
        if out:
            self._emit(now_ms, out)

    def _set_bad(self, name: str, why: str) -> None:
        if self._bad.get(name) != why:
            log.warning("tag_unreadable device=%s tag=%s status=%s", self.device.name, name, why)
        self._bad[name] = why
        self._latest.pop(name, None)
        self.health.unreadable_tags = sorted(self._bad)

    def _set_good(self, name: str) -> None:
        if name in self._bad:
            log.info("tag_readable device=%s tag=%s was=%s", self.device.name, name, self._bad.pop(name))
            self.health.unreadable_tags = sorted(self._bad)


# --- offline description (gateway plan) and browsing (gateway browse) ------------------------


def offline_ref(device: DeviceSettings, tag: OpcUaTag) -> str:
    """The tag's node with every namespace named by URI, as far as the config says (no server)."""
    def name(ns: Namespace) -> Namespace:
        if ns.index and ns.index in device.namespaces:
            return Namespace(uri=device.namespaces[ns.index])
        return ns

    if tag.node_id is not None:
        ref = parse_node_id(tag.node_id, tag.namespace_uri)
        return str(NodeRef(name(ref.namespace), ref.kind, ref.identifier))
    parts = []
    for text in tag.browse_path or ():
        element = parse_path_element(text)
        ns = name(element.namespace)
        parts.append(element.name if ns.index == 0 else f"nsu={ns.uri};{element.name}" if ns.uri else text)
    return "browse path /" + "/".join(parts)


@dataclass
class Browsed:
    node_id: str  # with the namespace URI: nsu=...;s=...
    path: list[str]  # browse names from Objects, each nsu=<URI>;Name (ns 0: Name)
    node_class: str
    data_type: str | None = None
    value: Any = None


async def browse(client: Client, start: ua.NodeId | None = None, depth: int = 6, limit: int = 2000,
                 include_standard: bool = False) -> list[Browsed]:
    """Walk the hierarchy below ``start`` (default Objects): every object and variable with its
    node id and browse names in URI form, each variable's data type and current value. The
    standard Server object (namespace 0, hundreds of diagnostics nodes) is skipped unless asked."""
    array = await client.get_namespace_array()

    def uri_form(node_id: ua.NodeId) -> str:
        text = node_id.to_string()
        if node_id.NamespaceIndex == 0:
            return text
        ident = text.split(";", 1)[1] if text.startswith("ns=") else text
        return f"nsu={array[node_id.NamespaceIndex]};{ident}"

    def qname(q: ua.QualifiedName) -> str:
        return q.Name if q.NamespaceIndex == 0 else f"nsu={array[q.NamespaceIndex]};{q.Name}"

    out: list[Browsed] = []
    root = client.get_node(start or ua.NodeId(ua.ObjectIds.ObjectsFolder))
    queue: list[tuple[Any, list[str], int]] = [(root, [] if start else ["Objects"], 0)]
    seen: set[ua.NodeId] = set()
    while queue and len(out) < limit:
        node, path, level = queue.pop(0)
        if level >= depth:
            continue
        for ref in await node.get_references(refs=ua.ObjectIds.HierarchicalReferences,
                                             direction=ua.BrowseDirection.Forward, nodeclassmask=ua.NodeClass.Object | ua.NodeClass.Variable):
            child_id = ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType)
            if child_id in seen:
                continue
            seen.add(child_id)
            if not include_standard and child_id.NamespaceIndex == 0 and ref.NodeClass == ua.NodeClass.Object:
                continue  # Server, Aliases, ...: the standard's own objects
            child = client.get_node(child_id)
            item = Browsed(uri_form(child_id), [*path, qname(ref.BrowseName)], ref.NodeClass.name)
            if ref.NodeClass == ua.NodeClass.Variable:
                try:
                    dtype = await child.read_data_type()
                    item.data_type = (await client.get_node(dtype).read_browse_name()).Name
                    dv = await child.read_data_value(raise_on_bad_status=False)
                    item.value = dv.Value.Value if _is_good(dv.StatusCode) and dv.Value is not None else status_name(dv.StatusCode)
                except ua.UaError as exc:
                    item.value = _describe(exc)
            out.append(item)
            if len(out) >= limit:
                break
            queue.append((child, item.path, level + 1))
    return out
