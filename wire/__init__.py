"""The wire contract between gateways and collectors: MQTT topics and payloads, v1.

Documented for integrators in docs/wire-contract.md; this package is the executable
version of that page and the only place either side builds or parses a message.
"""

from wire.payload import MAX_PAYLOAD_BYTES, Sample, Telemetry, WireError, decode_telemetry, encode_telemetry
from wire.topics import (
    TOPIC_ROOT,
    VERSION,
    device_status_topic,
    gateway_status_topic,
    parse_telemetry_topic,
    status_subscription,
    telemetry_subscription,
    telemetry_topic,
)

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "TOPIC_ROOT",
    "VERSION",
    "Sample",
    "Telemetry",
    "WireError",
    "decode_telemetry",
    "device_status_topic",
    "gateway_status_topic",
    "status_subscription",
    "encode_telemetry",
    "parse_telemetry_topic",
    "telemetry_subscription",
    "telemetry_topic",
]
