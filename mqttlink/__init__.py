"""Broker connection settings and the paho-mqtt client both the gateway and collector use.

One place parses ``mqtt://``/``mqtts://`` URLs, applies TLS and credentials, and sets
reconnect behaviour, so the two sides never disagree on how to reach the broker.
"""

from __future__ import annotations

import logging
import ssl
from typing import Annotated
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, field_validator

log = logging.getLogger(__name__)


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port, or mqtts:// for TLS")
    username: str | None = None
    password: str | None = None
    ca_file: str | None = Field(None, description="CA bundle for mqtts://; the system's by default")
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    reconnect_max_s: Annotated[float, Field(ge=1, le=300, description="longest wait between reconnect attempts")] = 5.0

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("use mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        try:
            _ = parts.port  # raises for a port that is not a number in 1..65535
        except ValueError:
            raise ValueError("the port must be a number from 1 to 65535") from None
        return url

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    clean_session: bool = True,
    manual_ack: bool = False,
    will: tuple[str, bytes] | None = None,
) -> mqtt.Client:
    """A paho 2.x client (MQTT 3.1.1) that reconnects by itself with capped backoff.

    With a broker account (``username``) the client id *is* the username: the brokers we
    support bind each client id to its account (mosquitto's ``use_username_as_clientid``,
    the embedded broker refuses any other id), so one credential cannot push another
    client off the broker or discard its session. ``client_id`` names the client only on an
    anonymous (demo) broker.

    ``will`` (topic, payload) is published retained at QoS 1 by the broker if this client
    vanishes without disconnecting, within 1.5 keep-alives."""
    if settings.username and client_id != settings.username:
        log.info("mqtt_client_id configured=%s used=%s: with an account the client id is the username",
                 client_id, settings.username)
        client_id = settings.username
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    # paho doubles the wait from 1 s up to this cap: a short cap brings a gateway back within
    # seconds of a long broker outage ending, at the cost of one CONNECT every few seconds meanwhile
    client.reconnect_delay_set(min_delay=1, max_delay=max(1, round(settings.reconnect_max_s)))
    return client
