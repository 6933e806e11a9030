"""The collector process: subscribe, validate, batch, store (or spool), and only then acknowledge.

Three threads, each owning its part:

- paho's network thread classifies every message (``handle_message``): accepted points or
  a dead letter with its reason. It never raises, whatever arrives.
- the batcher groups them into batches by points, messages and age.
- the store thread writes a batch to the store; if the store is down it appends the
  batch's raw messages to the on-disk spool (fsynced) instead; dead letters go to the
  ledger. Only then does it acknowledge the batch's messages to the broker. A crash at any
  point leaves unacknowledged messages with the broker, which redelivers them (writes are
  idempotent by source timestamp). When the spool is full it holds the acks back, the
  broker stops sending (its in-flight window is full), and nothing is dropped here.
  While the spool is not empty, new batches are spooled behind it, so the store receives
  everything in order once it is back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import paho.mqtt.client as mqtt

from collector.admission import Admission
from collector.batcher import Batch
from collector.ledger import DeadLetter, Ledger, now_ms
from collector.machines import MachineDirectory, TagNameLog
from collector.metrics import CollectorMetrics
from collector.policy import Backoff, isolate_rejects
from collector.settings import CollectorSettings
from mqttlink import MqttSettings, make_client
from plant import MachineRef
from tsstore import Point, StoreRejected, StoreUnavailable, TimeSeriesStore
from wire import WireError, decode_telemetry, encode_telemetry, telemetry_subscription, telemetry_topic

log = logging.getLogger(__name__)

_STOP = object()
#: put in the inbox by the store thread when it goes idle: the batcher re-checks whether its batch is due
_WAKE = object()

#: the reason of a point the store refused (partial write, field type conflict)
STORE_REJECTED = "store_rejected"
#: the reason of a message whose classification itself failed (a bug, never expected)
INTERNAL = "internal"
#: refusals by the admission policy are logged once per reason and tenant per this many seconds
#: (all are counted in collector_refused_messages and kept in the dead letters)
REFUSAL_LOG_EVERY_S = 10.0
#: a drain write takes up to this many live batches' worth of spooled messages
DRAIN_CHUNK_BATCHES = 4


class Collector:
    def __init__(self, settings: CollectorSettings, mqtt_settings: MqttSettings, store: TimeSeriesStore,
                 data_dir: Path | None = None, retire: bool = False,
                 machine_list: Callable[[], frozenset[MachineRef]] | None = None) -> None:
        """``machine_list`` loads the plant model's machines (refreshed every plant_refresh_s); without it,
        or with unknown_machines: accept, no machine is refused for being unknown (the limits still apply)."""
        self.settings = settings
        self.mqtt_settings = mqtt_settings
        self.store = store
        self.data_dir = Path(data_dir) if data_dir is not None else settings.resolved_data_dir()
        self.topic = telemetry_subscription(settings.tenant, settings.shared_group)
        self.counters: Counter[str] = Counter()
        self.metrics = CollectorMetrics()
        self.metrics_port: int | None = None
        self.subscribed = threading.Event()  # set once the broker has acknowledged the subscription
        self._session_present = False
        #: leave the (shared) subscription: store what the session still holds, take nothing new
        self.retire = retire
        self.last_message_at = time.monotonic()
        self._unacked = 0  # received and not yet acknowledged (also the collector_unacked_messages gauge)
        self._unacked_lock = threading.Lock()
        #: called by the store thread with the points of each live batch and the time they were stored
        self.on_stored: Callable[[Sequence[Point], float], None] | None = None
        self.ledger = Ledger(self.data_dir, settings.spool_max_bytes, settings.dead_letter_max_payload_bytes,
                             settings.dead_letter_max_bytes)
        self.metrics.spool_messages.set(self.ledger.spool_messages)
        self.metrics.spool_bytes.set(self.ledger.spool_bytes)
        self._tag_log = TagNameLog(self.data_dir)
        self.admission = Admission(settings.max_tags_per_machine, settings.max_messages_per_s_per_tenant,
                                   settings.tenant_burst_s, accept_unknown_machines=settings.unknown_machines == "accept",
                                   on_new_tags=self._tag_log.append)
        for machine, tags in self._tag_log.read().items():
            self.admission.remember_tags(machine, tags)
        self.machines: MachineDirectory | None = None
        self._refusal_logged: dict[tuple[str, str], float] = {}
        if machine_list is not None and settings.unknown_machines == "refuse":
            self.machines = MachineDirectory(machine_list, self.data_dir, settings.plant_refresh_s,
                                             on_change=self._machines_changed, on_failure=self.metrics.machine_list_failures.inc)
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s)
        self._inbox: queue.Queue = queue.Queue(maxsize=settings.max_pending_messages)
        self._ready: queue.Queue = queue.Queue(maxsize=1)
        self._stopping = threading.Event()
        self._store_idle = threading.Event()  # the store thread waits for a batch (set by it, read by the batcher)
        self._backpressure_since: float | None = None
        # clean_session=False: the broker keeps our subscription and unacknowledged
        # messages while we are away, and redelivers them when we come back.
        self.client = make_client(mqtt_settings, settings.client_id, clean_session=False, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self._batcher = threading.Thread(target=self._batch_loop, name="collector-batcher", daemon=True)
        self._writer = threading.Thread(target=self._store_loop, name="collector-store", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, serve_metrics: bool = True) -> None:
        if serve_metrics:
            self.metrics_port = self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        if self.ledger.spool_messages:
            log.info("spool_found messages=%d bytes=%d path=%s (drains once the store answers)",
                     self.ledger.spool_messages, self.ledger.spool_bytes, self.ledger.path)
        self._batcher.start()
        self._writer.start()
        if self.machines is None:
            self._connect()
            return
        self.machines.start()
        if self.machines.ready.is_set():
            self._connect()
        else:  # never had a list: the broker keeps the messages until the plant model answers
            threading.Thread(target=self._connect_when_machines_known, name="collector-wait-machines",
                             daemon=True).start()

    def _connect(self) -> None:
        self.client.connect_async(self.mqtt_settings.host, self.mqtt_settings.port, self.mqtt_settings.keepalive_s)
        self.client.loop_start()

    def _connect_when_machines_known(self) -> None:
        while not self._stopping.is_set():
            if self.machines.ready.wait(1.0):  # type: ignore[union-attr]
                if not self._stopping.is_set():
                    self._connect()
                return

    def _machines_changed(self, machines: frozenset[MachineRef]) -> None:
        self.admission.set_machines(machines)
        self.metrics.known_machines.set(len(machines))

    def stop(self) -> None:
        """Store (or spool) and acknowledge what is pending, then disconnect."""
        self._stopping.set()
        while self._batcher.is_alive():
            try:
                self._inbox.put(_STOP, timeout=1)
                break
            except queue.Full:
                continue
        self._batcher.join(timeout=30)
        self._writer.join(timeout=30)
        if self.machines is not None:
            self.machines.stop()
        self.client.disconnect()
        self.client.loop_stop()
        self._tag_log.close()
        self.ledger.close()
        self.metrics.close()

    # -- MQTT thread -------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt_connect_refused broker=%s reason=%s", self.mqtt_settings.url, reason_code)
            return
        if self.retire:
            # The broker stops giving this session new messages; what it already holds for it
            # (in flight or queued) is still delivered, stored and acknowledged.
            client.unsubscribe(self.topic)
            log.info("mqtt_retiring broker=%s topic=%s session_present=%s: unsubscribed, draining the session",
                     self.mqtt_settings.url, self.topic, flags.session_present)
            self.subscribed.set()
        else:
            # subscribed is set when the broker acknowledges (``_on_subscribe``): until then a message
            # published to the topic is not routed to this session, so "subscribed" would be a lie
            self._session_present = flags.session_present
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [rc for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("mqtt_subscribe_refused broker=%s topic=%s reason=%s fix=allow this client to read the topic "
                      "in the broker's ACL", self.mqtt_settings.url, self.topic, refused[0])
            return
        log.info("mqtt_subscribed broker=%s topic=%s session_present=%s", self.mqtt_settings.url, self.topic,
                 self._session_present)
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning("mqtt_disconnected broker=%s reason=%s", self.mqtt_settings.url, reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # the broker should refuse these, but never trust it to
            topic = bytes(message._topic).decode("utf-8", "replace")
        self.handle_message(topic, message.payload, message.mid, message.qos)

    def handle_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        """Classify one message and queue it for the batcher; never raises on any input."""
        ack = (mid, qos)
        received = now_ms()
        self.last_message_at = time.monotonic()
        self.counters["received"] += 1
        self.metrics.received.inc()
        with self._unacked_lock:
            self._unacked += 1
        self.metrics.unacked.inc()
        try:
            payload = bytes(payload)
            self.metrics.received_bytes.inc(len(payload))
            machine, telemetry = decode_telemetry(topic, payload)
            refusal = self.admission.check(machine, (t for s in telemetry.samples for t in s.values),
                                           time.monotonic())
            if refusal is None:
                points = [Point(machine, s.ts, s.values) for s in telemetry.samples]
                item = (points, ack, (received, topic, payload))
            else:
                self.metrics.refused.labels(refusal.reason, refusal.tenant).inc()
                item = (self._reject(received, refusal.reason, refusal.detail, topic, payload,
                                     quiet=self._quiet(refusal.reason, refusal.tenant)), ack, None)
        except WireError as exc:
            item = (self._reject(received, exc.reason, exc.detail, topic, payload), ack, None)
        except Exception as exc:  # a bug in classification must not stop ingest either
            log.exception("message_classification_failed topic=%r", topic)
            item = (self._reject(received, INTERNAL, f"{type(exc).__name__}: {exc}", topic, payload), ack, None)
        # Blocks only if the batcher is far behind (more than max_pending_messages).
        self._inbox.put(item)

    def _quiet(self, reason: str, tenant: str) -> bool:
        """One log line per reason and tenant per REFUSAL_LOG_EVERY_S: a flood must not flood the log too."""
        now = time.monotonic()
        key = (reason, tenant)
        last = self._refusal_logged.get(key)
        if last is not None and now - last < REFUSAL_LOG_EVERY_S:
            return True
        self._refusal_logged[key] = now
        return False

    def _reject(self, received: int, reason: str, detail: str, topic: str, payload, quiet: bool = False) -> DeadLetter:
        self.counters[f"rejected_{reason}"] += 1
        self.metrics.rejected.labels(reason).inc()
        size = len(payload) if isinstance(payload, (bytes, bytearray)) else -1
        if not quiet:
            log.warning("message_rejected topic=%r reason=%s detail=%r bytes=%d", topic[:200], reason, detail[:300],
                        size)
        raw = bytes(payload) if isinstance(payload, (bytes, bytearray)) else repr(payload).encode()
        return DeadLetter(received, reason, detail, topic, raw)

    # -- batcher thread ----------------------------------------------------------------
    def _batch_loop(self) -> None:
        s = self.settings
        batch = Batch()
        while True:
            timeout = batch.seconds_until_due(time.monotonic(), s.batch_interval_s, s.batch_linger_s,
                                              s.batch_linger_max_s, self._idle())
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                if batch.acks:
                    self._encode(batch)
                    self._ready.put(batch)
                self._ready.put(_STOP)
                return
            if item is not None and item is not _WAKE:
                content, ack, raw = item
                if isinstance(content, DeadLetter):
                    batch.add_dead(content, ack, time.monotonic())
                else:
                    batch.add(content, ack, time.monotonic(), raw)
            if batch.due(time.monotonic(), s.batch_size, s.batch_interval_s, s.max_batch_messages,
                         s.batch_linger_s, s.batch_linger_max_s, self._idle()):
                self._encode(batch)
                self._ready.put(batch)  # waits while the store thread still has the previous one
                batch = Batch()

    def _idle(self) -> bool:
        """Group commit: the store thread waits for a batch and no message waits in the inbox."""
        return self._store_idle.is_set() and self._inbox.empty()

    def _encode(self, batch: Batch) -> None:
        """Encode here, so the store thread sends one batch while this one is encoded."""
        encode = getattr(self.store, "encode", None)
        if encode is None or not batch.points:
            return
        try:
            batch.encoded = encode(batch.points)
        except Exception:  # noqa: BLE001 - the store thread finds and dead-letters the culprit point
            batch.encoded = None

    # -- store thread ------------------------------------------------------------------
    def _store_loop(self) -> None:
        while True:
            timeout = None
            if self.ledger.spool_messages:
                timeout = min(1.0, max(0.01, self._backoff.retry_at - time.monotonic()))
            self._store_idle.set()
            try:
                self._inbox.put_nowait(_WAKE)  # a partial batch may be due now that the store is idle
            except queue.Full:
                pass  # the batcher has plenty to read: it is not waiting on the store
            try:
                batch = self._ready.get(timeout=timeout)
            except queue.Empty:
                batch = None
            self._store_idle.clear()
            if batch is _STOP:
                return
            while True:
                try:
                    if batch is not None:
                        self._store(batch)
                        batch = None
                    if not self._stopping.is_set():
                        self._drain()
                    break
                except Exception:  # noqa: BLE001 - the store thread must outlive any single failure
                    # e.g. the data disk is full. Retry the same batch: the broker only redelivers
                    # unacknowledged messages after a reconnect, so dropping it here would stall them.
                    log.exception("store_loop_error: retrying in 1 s; the batch stays unacknowledged")
                    if self._stopping.wait(1.0):
                        break

    def _add_dead_letters(self, letters: list[DeadLetter]) -> None:
        pruned = self.ledger.dead_letters_pruned
        self.ledger.add_dead_letters(letters)
        if self.ledger.dead_letters_pruned > pruned:
            log.warning("dead_letters_pruned rows=%d total_pruned=%d: the oldest letters were deleted to stay under "
                        "dead_letter_max_bytes=%d", self.ledger.dead_letters_pruned - pruned,
                        self.ledger.dead_letters_pruned, self.settings.dead_letter_max_bytes)

    def _store(self, batch: Batch) -> None:
        if batch.dead:
            self._add_dead_letters(batch.dead)
        if batch.points:
            if not self.ledger.spool_messages and self._backoff.ready(time.monotonic()):
                if self._write(batch.points, live=True, encoded=batch.encoded):
                    self._ack(batch)
                    return
            if not self._spool(batch):
                return  # stopping while the spool is full: the broker keeps these messages
        self._ack(batch)

    def _spool(self, batch: Batch) -> bool:
        """Append the batch to the spool, waiting (acks held back) while it is full."""
        while not self.ledger.spool_has_room(batch.payload_bytes):
            if self._backpressure_since is None:
                self._backpressure_since = time.monotonic()
                self.metrics.backpressure.set(1)
                log.error("spool_full messages=%d bytes=%d limit=%d: acknowledgements held back, the broker keeps "
                          "the rest until the store answers", self.ledger.spool_messages, self.ledger.spool_bytes,
                          self.settings.spool_max_bytes)
            if self._stopping.is_set():
                return False
            self._stopping.wait(max(0.01, self._backoff.retry_at - time.monotonic()))
            if not self._stopping.is_set():
                self._drain(force=True)
        if self._backpressure_since is not None:
            log.info("spool_has_room again after_s=%.1f", time.monotonic() - self._backpressure_since)
            self._backpressure_since = None
            self.metrics.backpressure.set(0)
        self.ledger.spool_append(batch.messages)
        self.counters["spooled"] += len(batch.messages)
        self.metrics.spooled.inc(len(batch.messages))
        self._spool_gauges()
        return True

    def _drain(self, force: bool = False) -> None:
        """Write the spool's oldest messages to the store while it answers.

        Each call drains at least one chunk before it yields to a waiting live batch, and a
        chunk holds up to DRAIN_CHUNK_BATCHES live batches' worth of messages (at most
        batch_size points), so the spool shrinks even while live traffic keeps arriving.
        """
        s = self.settings
        drained = 0
        while self.ledger.spool_messages and self._backoff.ready(time.monotonic()):
            if drained and (force or not self._ready.empty()):
                return  # spool the live batch (cheap), then come back
            head = self.ledger.spool_head(s.max_batch_messages * DRAIN_CHUNK_BATCHES)
            if not head:
                self.ledger.spool_messages = self.ledger.spool_bytes = 0
                return
            points: list[Point] = []
            dead: list[DeadLetter] = []
            taken = 0
            for m in head:
                if taken and len(points) >= s.batch_size:
                    break
                taken += 1
                try:
                    machine, telemetry = decode_telemetry(m.topic, m.payload)
                except WireError as exc:  # spooled by a collector with another contract version
                    dead.append(DeadLetter(m.received_ms, exc.reason, exc.detail, m.topic, m.payload))
                    continue
                points.extend(Point(machine, x.ts, x.values) for x in telemetry.samples)
            head = head[:taken]
            if not self._write(points, live=False):
                return
            if dead:
                self._add_dead_letters(dead)
            self.ledger.spool_remove_through(head[-1].id, len(head), sum(len(m.payload) for m in head))
            drained += len(head)
            self.counters["drained"] += len(head)
            self.metrics.drained.inc(len(head))
            self._spool_gauges()
            if not self.ledger.spool_messages:
                log.info("spool_drained: writing live again")

    def _write(self, points: list[Point], live: bool, encoded: object | None = None) -> bool:
        """Write points, isolating the ones the store refuses; False if the store is unavailable."""
        started = time.perf_counter()
        try:
            rejected = []
            if encoded is not None:
                try:
                    self.store.write_encoded(encoded)  # type: ignore[attr-defined]
                except StoreRejected:
                    rejected = isolate_rejects(self._store_write, points)
            else:
                rejected = isolate_rejects(self._store_write, points)
        except StoreUnavailable as exc:
            self._store_failed(exc, len(points))
            return False
        stored_at = time.time()
        elapsed = time.perf_counter() - started
        self._backoff.succeeded()
        if rejected:
            self._dead_letter_points(rejected)
        bad = {id(p) for p, _ in rejected}
        good = [p for p in points if id(p) not in bad] if bad else points
        n_values = sum(len(p.values) for p in good)
        self.counters["written"] += len(good)
        self.counters["written_values"] += n_values
        m = self.metrics
        m.written_points.inc(len(good))
        m.written_values.inc(n_values)
        m.batch_latency.observe(elapsed)
        m.batch_points.observe(len(points))
        if good:
            newest = max(p.ts_ms for p in good)
            m.consumer_lag.set(max(0.0, stored_at - newest / 1000))
            if live:
                for p in good:
                    m.end_to_end.observe(max(0.0, stored_at - p.ts_ms / 1000))
                if self.on_stored is not None:
                    self.on_stored(good, stored_at)
        log.debug("batch_written points=%d values=%d rejected=%d ms=%.1f live=%s", len(good), n_values, len(rejected),
                  elapsed * 1000, live)
        return True

    def _store_write(self, points: Sequence[Point]) -> None:
        """The store's write, where a point it cannot even encode (an integer beyond float
        range, say) counts as refused, like a line influxd rejects: never an endless retry."""
        try:
            self.store.write(points)
        except (StoreUnavailable, StoreRejected):
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            raise StoreRejected(f"cannot encode for the store: {type(exc).__name__}: {exc}") from exc

    def _dead_letter_points(self, rejected: list[tuple[Point, str]]) -> None:
        now = now_ms()
        letters = []
        for p, reason in rejected:
            try:
                payload = encode_telemetry(p.machine, [(p.ts_ms, p.values)])
            except ValueError:
                payload = repr(p).encode()
            letters.append(DeadLetter(now, STORE_REJECTED, reason, telemetry_topic(p.machine), payload))
        self._add_dead_letters(letters)
        self.counters[f"rejected_{STORE_REJECTED}"] += len(rejected)
        self.metrics.rejected.labels(STORE_REJECTED).inc(len(rejected))
        log.error("points_rejected_by_store count=%d first_reason=%r (kept in the dead letters)", len(rejected),
                  rejected[0][1][:300])

    def _store_failed(self, exc: StoreUnavailable, n_points: int) -> None:
        self.counters["store_retries"] += 1
        self.metrics.store_failures.inc()
        delay = self._backoff.failed(time.monotonic(), getattr(exc, "retry_after_s", None))
        log.warning("store_unavailable points=%d retry_in_s=%.1f spool_messages=%d error=%r", n_points, delay,
                    self.ledger.spool_messages, str(exc)[:300])

    def _ack(self, batch: Batch) -> None:
        for mid, qos in batch.acks:
            if qos > 0:
                self.client.ack(mid, qos)
        with self._unacked_lock:
            self._unacked -= len(batch.acks)
        self.metrics.unacked.dec(len(batch.acks))

    def _spool_gauges(self) -> None:
        self.metrics.spool_messages.set(self.ledger.spool_messages)
        self.metrics.spool_bytes.set(self.ledger.spool_bytes)

    def idle(self, quiet_s: float) -> bool:
        """Nothing received for quiet_s, nothing unacknowledged, nothing spooled."""
        return (self.subscribed.is_set() and time.monotonic() - self.last_message_at >= quiet_s
                and self._unacked == 0 and self.ledger.spool_messages == 0)


def forget_session(settings: CollectorSettings, mqtt_settings: MqttSettings, timeout_s: float = 10.0) -> None:
    """Connect once with clean_session=True under the collector's client id: the broker drops its session."""
    done = threading.Event()
    client = make_client(mqtt_settings, settings.client_id, clean_session=True)
    client.on_connect = lambda c, u, f, rc, p: (done.set(), c.disconnect()) if not rc.is_failure else None
    client.connect(mqtt_settings.host, mqtt_settings.port, mqtt_settings.keepalive_s)
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            raise RuntimeError(f"broker {mqtt_settings.url} did not accept the clean-session connect")
    finally:
        client.loop_stop()


def retire_collector(settings: CollectorSettings, mqtt_settings: MqttSettings, store: TimeSeriesStore,
                     stop: threading.Event, data_dir: Path | None = None, quiet_s: float = 5.0) -> bool:
    """Take a collector out of a shared group without losing what the broker holds for it.

    Unsubscribe, store (and drain the spool of) everything still delivered to the session,
    and once quiet for quiet_s, delete the session so the broker queues nothing more for
    this client id. True when retired; False if stopped first (the session stays).
    """
    collector = Collector(settings, mqtt_settings, store, data_dir, retire=True)
    collector.start()
    try:
        while not stop.wait(0.2):
            if collector.idle(quiet_s):
                break
        else:
            return False
    finally:
        collector.stop()
        store.close()
    forget_session(settings, mqtt_settings)
    log.info("collector_retired client_id=%s received=%d written=%d: the broker holds no session for it any more",
             settings.client_id, collector.counters["received"], collector.counters["written"])
    return True


def run_collector(settings: CollectorSettings, mqtt_settings: MqttSettings, store: TimeSeriesStore,
                  stop: threading.Event, data_dir: Path | None = None,
                  machine_list: Callable[[], frozenset[MachineRef]] | None = None) -> None:
    collector = Collector(settings, mqtt_settings, store, data_dir, machine_list=machine_list)
    collector.start()
    try:
        while not stop.wait(60):
            c = collector.counters
            log.info("collector_stats received=%d written=%d written_values=%d rejected=%d spooled=%d drained=%d "
                     "spool_messages=%d", c["received"], c["written"], c["written_values"],
                     sum(v for k, v in c.items() if k.startswith("rejected")), c["spooled"], c["drained"],
                     collector.ledger.spool_messages)
    finally:
        collector.stop()
        store.close()
