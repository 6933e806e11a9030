"""Prometheus metrics of one collector, on a registry of its own (several may share a process in tests)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)


class CollectorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.received = Counter("collector_messages_received", "MQTT messages received", registry=r)
        self.received_bytes = Counter("collector_received_bytes", "payload bytes received", registry=r)
        self.written_points = Counter("collector_points_written", "points (lines) the store accepted", registry=r)
        self.written_values = Counter("collector_values_written", "values (fields) the store accepted", registry=r)
        self.rejected = Counter("collector_rejected", "messages or points sent to the dead letters, by reason",
                                ["reason"], registry=r)
        self.refused = Counter(
            "collector_refused_messages",
            "messages sent to the dead letters by the plant model or a per-tenant limit (unknown_machine, "
            "rate_limited, too_many_tags), by reason and tenant", ["reason", "tenant"], registry=r)
        self.known_machines = Gauge("collector_known_machines", "machines in the plant model's list the collector holds",
                                    registry=r)
        self.machine_list_failures = Counter("collector_machine_list_failures",
                                             "reloads of the machine list that failed (the last list is kept)",
                                             registry=r)
        self.spooled = Counter("collector_messages_spooled", "messages written to the disk spool", registry=r)
        self.drained = Counter("collector_messages_drained", "spooled messages later stored", registry=r)
        self.spool_messages = Gauge("collector_spool_messages", "messages waiting in the disk spool", registry=r)
        self.spool_bytes = Gauge("collector_spool_bytes", "payload bytes waiting in the disk spool", registry=r)
        self.store_failures = Counter("collector_store_failures", "store writes that failed and will be retried",
                                      registry=r)
        self.backpressure = Gauge("collector_backpressure", "1 while the spool is full and acks are held back",
                                  registry=r)
        self.unacked = Gauge("collector_unacked_messages", "messages received and not yet acknowledged", registry=r)
        self.consumer_lag = Gauge(
            "collector_consumer_lag_seconds",
            "now minus the source timestamp of the newest point stored (how far the store trails the machines)",
            registry=r,
        )
        self.end_to_end = Histogram(
            "collector_end_to_end_seconds", "source timestamp to stored, per point, of live (not spooled) batches",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.batch_latency = Histogram(
            "collector_batch_write_seconds", "time of one batch write to the store, including isolating bad points",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.batch_points = Histogram(
            "collector_batch_points", "points per store write",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000, 50000), registry=r,
        )
        self.server = None

    def serve(self, host: str, port: int | None) -> int | None:
        """Start /metrics; return the bound port. A busy port is logged, never fatal to ingest."""
        if port is None:
            return None
        try:
            self.server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.error("metrics_unavailable host=%s port=%s error=%r (ingest continues; set collector.metrics_port)",
                      host, port, str(exc))
            return None
        bound = self.server.server_port
        log.info("metrics_serving url=http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
