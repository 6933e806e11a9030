"""The ``gateway:`` section of a config file: which devices to poll, how to reach them, what to read."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, model_validator
from pydantic import Tag as UnionBranch

from plant import IDENTIFIER_PATTERN
from plcprotocol.mc import LIMITS as MC_LIMITS, Series as McSeries
from plcprotocol.xgt import MAX_BYTES as XGT_MAX_BYTES
from registermap import BIT_TABLES, McTag, OpcUaTag, Table, Tag, XgtTag

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]


class Addressing(str, Enum):
    """How tag addresses are written in the config.

    ``zero_based`` is the address on the wire. ``modicon`` is the vendor-manual notation:
    00001-09999 coils, 10001-19999 discrete inputs, 30001-39999 input registers,
    40001-49999 holding registers (or the 6-digit 000001-465536 forms); the leading digit
    gives the table and the rest is 1-based.
    """

    zero_based = "zero_based"
    modicon = "modicon"


class Protocol(str, Enum):
    modbus = "modbus"  # Modbus TCP, RTU over TCP or RTU (see transport)
    mc = "mc"  # Mitsubishi MC protocol / SLMP, binary 3E frames over TCP
    xgt = "xgt"  # LS ELECTRIC XGT dedicated protocol over FEnet (TCP)
    opcua = "opcua"  # OPC UA binary (opc.tcp), monitored-item subscriptions


class Transport(str, Enum):
    tcp = "tcp"  # Modbus TCP (MBAP framing)
    rtu_over_tcp = "rtu_over_tcp"  # RTU frames through a serial-to-Ethernet converter
    rtu = "rtu"  # RTU on a local serial line


class Report(str, Enum):
    every_poll = "every_poll"
    on_change = "on_change"


class SerialLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    port: str = Field(description="serial device, e.g. /dev/ttyUSB0")
    baudrate: Annotated[int, Field(ge=300, le=1_000_000)] = 19200
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1


class Polling(BaseModel):
    """How often to read a tag and when to report it (any protocol's tag)."""

    poll_interval_s: Annotated[float | None, Field(ge=0.05, le=86400, description="default: the device's")] = None
    report: Report = Report.every_poll
    deadband: Annotated[float | None, Field(ge=0, description="absolute change that counts (on_change)")] = None
    deadband_percent: Annotated[float | None, Field(ge=0, le=1000, description="change in % of the last report")] = None
    max_silence_s: Annotated[
        float | None, Field(gt=0, description="on_change: report anyway after this long (heartbeat)")
    ] = None

    @model_validator(mode="after")
    def _reporting(self) -> "Polling":
        if self.deadband is not None and self.deadband_percent is not None:
            raise ValueError("set either 'deadband' or 'deadband_percent', not both")
        if self.report is Report.every_poll and (
            self.deadband is not None or self.deadband_percent is not None or self.max_silence_s is not None
        ):
            raise ValueError("'deadband', 'deadband_percent' and 'max_silence_s' need report: on_change")
        return self


class PolledTag(Tag, Polling):
    """A register-map tag plus how often to read it and when to report it."""

    def __eq__(self, other: object) -> bool:
        # A tag with default polling options is the plain register-map tag it extends, so
        # a config can be compared with a shared map such as PRESS_TAGS.
        if type(other) is Tag:
            defaults = all(getattr(self, f) == PolledTag.model_fields[f].default for f in _POLLING_FIELDS)
            return defaults and Tag.model_validate(self.model_dump(include=set(Tag.model_fields))) == other
        return super().__eq__(other)

    __hash__ = Tag.__hash__


class McPolledTag(McTag, Polling):
    """A Mitsubishi device point plus how often to read it and when to report it."""


class XgtPolledTag(XgtTag, Polling):
    """An LS XGT variable plus how often to read it and when to report it."""


class OpcUaPolledTag(OpcUaTag, Polling):
    """An OPC UA node plus its sampling interval and when to report it."""


def _tag_kind(value: Any) -> str:
    """Which tag model a config entry is: an MC device point names a ``device``, an XGT one a
    ``variable``, an OPC UA one a ``node_id`` or a ``browse_path``."""
    if isinstance(value, McTag) or (isinstance(value, dict) and "device" in value):
        return "mc"
    if isinstance(value, XgtTag) or (isinstance(value, dict) and "variable" in value):
        return "xgt"
    if isinstance(value, OpcUaTag) or (isinstance(value, dict) and ("node_id" in value or "browse_path" in value)):
        return "opcua"
    return "modbus"


AnyPolledTag = Annotated[
    Annotated[PolledTag, UnionBranch("modbus")] | Annotated[McPolledTag, UnionBranch("mc")]
    | Annotated[XgtPolledTag, UnionBranch("xgt")] | Annotated[OpcUaPolledTag, UnionBranch("opcua")],
    Discriminator(_tag_kind),
]

#: the tag model each protocol's devices take, and how a config names it
_TAG_OF = {"modbus": (Tag, "'table' and 'address'"), "mc": (McTag, "'device', e.g. D100"),
           "xgt": (XgtTag, "'variable', e.g. %MW100"),
           "opcua": (OpcUaTag, "'node_id' (e.g. nsu=urn:acme:press;s=Force) or 'browse_path'")}


class OpcUaSecurityMode(str, Enum):
    none = "none"  # no signing, no encryption: a closed cell network only
    sign = "sign"  # signed, readable on the wire
    sign_and_encrypt = "sign_and_encrypt"


class OpcUaSecurity(BaseModel):
    """How an OPC UA session is secured. Every path is relative to the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: OpcUaSecurityMode = OpcUaSecurityMode.none
    policy: Literal["Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"] = "Basic256Sha256"
    certificate: Path | None = Field(None, description="the gateway's application instance certificate (.der or .pem)")
    private_key: Path | None = Field(None, description="its private key (.pem or .der)")
    private_key_password: str | None = None
    server_certificate: Path | None = Field(None, description="the server's certificate, pinned: the session is "
                                            "encrypted to it, so only that server can answer")

    @model_validator(mode="after")
    def _files(self) -> "OpcUaSecurity":
        if self.mode is OpcUaSecurityMode.none:
            given = [k for k in ("certificate", "private_key", "server_certificate") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"security mode 'none' uses no certificates, but {', '.join(given)} is set: "
                                 "set 'mode: sign' or 'mode: sign_and_encrypt', or drop them")
            return self
        missing = [k for k in ("certificate", "private_key", "server_certificate") if getattr(self, k) is None]
        if missing:
            raise ValueError(f"security mode '{self.mode.value}' needs {', '.join(missing)} (file paths); "
                             "copy the server's certificate from its PKI folder (own/certs) and trust the "
                             "gateway's certificate on the server")
        return self

    def resolved(self, base_dir: Path) -> "OpcUaSecurity":
        def at(p: Path | None) -> Path | None:
            return None if p is None or p.is_absolute() else base_dir / p
        return self.model_copy(update={k: at(getattr(self, k)) or getattr(self, k)
                                       for k in ("certificate", "private_key", "server_certificate")})


_POLLING_FIELDS = ("poll_interval_s", "report", "deadband", "deadband_percent", "max_silence_s")

_MODICON_TABLES = {0: Table.coil, 1: Table.discrete_input, 3: Table.input_register, 4: Table.holding_register}


def modicon_to_wire(reference: int) -> tuple[Table, int]:
    """Split a Modicon reference (40001, 400001, ...) into its table and 0-based wire address."""
    if not isinstance(reference, int) or isinstance(reference, bool) or reference < 1:
        raise ValueError(f"{reference!r} is not a Modicon reference (e.g. 40001 for the first holding register)")
    if reference <= 99999:
        prefix, offset = divmod(reference, 10000)
    elif reference <= 465536:
        prefix, offset = divmod(reference, 100000)
    else:
        raise ValueError(f"{reference} is past the largest Modicon reference 465536")
    if prefix not in _MODICON_TABLES or offset < 1:
        raise ValueError(
            f"{reference} is not a Modicon reference: use 0xxxx coils, 1xxxx discrete inputs, "
            "3xxxx input registers, 4xxxx holding registers, counting from 1 (e.g. 40001)"
        )
    return _MODICON_TABLES[prefix], offset - 1


class DeviceSettings(BaseModel):
    """One PLC (one Modbus unit), published as one machine."""

    model_config = ConfigDict(extra="forbid")

    name: Identifier = Field(description="machine id, the topic level and store tag")
    line: Identifier
    protocol: Protocol = Protocol.modbus
    series: McSeries = Field(McSeries.q, description="MC protocol: q (Q, L, FX5) or iq-r addressing")
    transport: Transport = Transport.tcp
    host: str | None = Field(None, description="for tcp and rtu_over_tcp")
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    serial: SerialLine | None = Field(None, description="for rtu")
    unit_id: Annotated[int, Field(ge=0, le=247)] = 1
    addressing: Addressing = Addressing.zero_based
    poll_interval_s: Annotated[float, Field(ge=0.05, le=3600)] = 1.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    max_backoff_s: Annotated[float, Field(ge=0.1, le=3600)] = 30.0
    max_registers_per_read: Annotated[int, Field(ge=1, le=960, description="Modbus: at most 125; MC: 960")] = 125
    max_bits_per_read: Annotated[int, Field(ge=1, le=2000)] = 2000
    max_gap: Annotated[int, Field(ge=0, le=959, description="unmapped registers a read may span; default: "
                                  "the whole read on Ethernet, 16 on a serial line")] = 124
    status_interval_s: Annotated[float, Field(ge=1, le=3600, description="health publish period")] = 10.0
    offline_after_failures: Annotated[
        int, Field(ge=1, le=1000, description="consecutive failed polls before the device is reported offline")
    ] = 3
    offline_after_s: Annotated[
        float, Field(gt=0, le=86400, description="or this long without a good poll, whichever comes first")
    ] = 30.0
    endpoint: str | None = Field(None, description="OPC UA: opc.tcp://host:port/path")
    security: OpcUaSecurity | None = Field(None, description="OPC UA: mode none, sign or sign_and_encrypt, certificates")
    username: str | None = Field(None, description="OPC UA: user name for the session (default anonymous)")
    password: str | None = None
    namespaces: dict[Annotated[int, Field(ge=1, le=65535)], str] = Field(
        default_factory=dict, description="OPC UA: the URI each namespace index in the tags stands for")
    relearn_s: Annotated[
        float, Field(ge=10, description="forget refused addresses after this long (the PLC program may change)")
    ] = 3600.0
    tags: Annotated[list[AnyPolledTag], Field(min_length=1)]

    @model_validator(mode="before")
    @classmethod
    def _protocol_defaults(cls, data: Any) -> Any:
        """Defaults that depend on the protocol and the medium.

        An MC device reads up to 960 words a request unless told less. The gap a read may span
        trades bytes against round trips: on Ethernet a request costs a round trip to the PLC
        (milliseconds, plus its scan), an unmapped register 2 bytes, so any gap that fits in one
        read is worth spanning; on a serial line at 9600-19200 baud a register costs about a
        millisecond and a request about twenty (frame, silent intervals, turnaround), so 16.
        A span the device refuses is bisected and learned either way."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        if data.get("protocol") == Protocol.mc.value and "max_registers_per_read" not in data:
            out["max_registers_per_read"] = MC_LIMITS[McSeries.q][0]  # 960 on every series
        if data.get("protocol") == Protocol.xgt.value:
            out.setdefault("max_registers_per_read", XGT_MAX_BYTES // 2)  # 1400 bytes a block read
            out.setdefault("port", 2004)  # the FEnet module's dedicated-protocol TCP port
        if "max_gap" not in data:
            serial = data.get("transport") in (Transport.rtu.value, Transport.rtu_over_tcp.value)
            out["max_gap"] = 16 if serial else int(out.get("max_registers_per_read", 125)) - 1
        return out

    @model_validator(mode="before")
    @classmethod
    def _modicon_addresses(cls, data: Any) -> Any:
        """Turn Modicon references into wire addresses before the tags are validated, so
        the rest of the gateway only ever sees 0-based addresses."""
        if not isinstance(data, dict) or data.get("addressing") != Addressing.modicon.value:
            return data
        tags = data.get("tags")
        if not isinstance(tags, list):
            return data
        converted = []
        for i, tag in enumerate(tags):
            if not isinstance(tag, dict) or "address" not in tag:
                converted.append(tag)
                continue
            try:
                table, address = modicon_to_wire(tag["address"])
            except ValueError as exc:
                raise ValueError(f"tags[{i}].address ({tag.get('name', '?')}): {exc}") from None
            given = tag.get("table")
            if given is not None and given != table.value:
                raise ValueError(
                    f"tags[{i}].table ({tag.get('name', '?')}): Modicon reference {tag['address']} is a "
                    f"{table.value}, but table says {given!r}; drop 'table' or fix the address"
                )
            extra = {"type": "bool"} if table in BIT_TABLES and "type" not in tag else {}
            converted.append({**tag, **extra, "table": table.value, "address": address})
        return {**data, "tags": converted}

    @model_validator(mode="after")
    def _consistent(self) -> "DeviceSettings":
        model, naming = _TAG_OF[self.protocol.value]
        for i, tag in enumerate(self.tags):
            if not isinstance(tag, model):
                kind = next(k for k, (m, _) in _TAG_OF.items() if isinstance(tag, m))
                raise ValueError(f"tags[{i}] ({tag.name}) is written as a {kind} tag, but the device speaks "
                                 f"{self.protocol.value}: name it with {naming}, or set 'protocol: {kind}'")
        opcua_only = [k for k in ("endpoint", "security", "username", "password", "namespaces") if k in self.model_fields_set]
        if self.protocol is Protocol.opcua:
            self._check_opcua()
            self._unique_tag_names()
            return self
        if opcua_only:
            raise ValueError(f"{', '.join(opcua_only)}: OPC UA settings, but the device speaks {self.protocol.value}")
        if self.protocol is Protocol.modbus:
            if self.max_registers_per_read > 125:
                raise ValueError(f"max_registers_per_read {self.max_registers_per_read}: Modbus reads at most 125 registers")
            if self.max_gap > 124:
                raise ValueError(f"max_gap {self.max_gap}: a Modbus read spans at most 124 unmapped registers")
        else:
            self._check_named_devices()
        if self.transport is Transport.rtu:
            if self.serial is None:
                raise ValueError("transport 'rtu' needs 'serial' (port, baudrate, parity, ...)")
        else:
            if not self.host:
                raise ValueError(f"transport '{self.transport.value}' needs 'host'")
            if self.serial is not None:
                raise ValueError(f"'serial' applies only to transport 'rtu', not '{self.transport.value}'")
        self._unique_tag_names()
        for tag in self.tags:
            if isinstance(tag, OpcUaTag):
                continue  # checked above: an OPC UA device returned early
            if tag.table not in BIT_TABLES and tag.width > self.max_registers_per_read:
                raise ValueError(
                    f"tag {tag.name!r} spans {tag.width} registers, more than max_registers_per_read "
                    f"({self.max_registers_per_read})"
                )
        return self

    def _unique_tag_names(self) -> None:
        names = [t.name for t in self.tags]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tag names must be unique per device; repeated: {', '.join(dupes)}")

    def _check_opcua(self) -> None:
        """An OPC UA device: an opc.tcp endpoint instead of host/port, and every namespace index
        its tags use mapped to a URI (indices move when a server restarts with other models)."""
        from urllib.parse import urlparse

        from plcprotocol.opcua import parse_node_id, parse_path_element

        modbus_only = [k for k in ("host", "port", "transport", "serial", "unit_id", "addressing", "series")
                       if k in self.model_fields_set]
        if modbus_only:
            raise ValueError(f"{', '.join(modbus_only)}: not used by an OPC UA device; give 'endpoint: opc.tcp://host:port/path'")
        if not self.endpoint:
            raise ValueError("an OPC UA device needs 'endpoint', e.g. opc.tcp://192.168.0.10:4840")
        url = urlparse(self.endpoint)
        if url.scheme != "opc.tcp" or not url.hostname:
            raise ValueError(f"endpoint {self.endpoint!r}: write opc.tcp://host:port[/path]")
        try:
            _ = url.port
        except ValueError:
            raise ValueError(f"endpoint {self.endpoint!r}: the port is not a number 1-65535") from None
        if url.username or url.password:
            raise ValueError(f"endpoint {self.endpoint!r}: put the user in 'username' and 'password', not in the URL")
        if self.password is not None and self.username is None:
            raise ValueError("'password' needs 'username'")
        for i, tag in enumerate(self.tags):
            assert isinstance(tag, OpcUaTag)
            if tag.node_id is not None:
                namespaces = [(parse_node_id(tag.node_id, tag.namespace_uri).namespace, "node_id")]
            else:
                namespaces = [(parse_path_element(e).namespace, "browse_path") for e in tag.browse_path or ()]
            for ns, key in namespaces:
                if ns.index is not None and ns.index != 0 and ns.index not in self.namespaces:
                    raise ValueError(
                        f"tags[{i}].{key} ({tag.name}): namespace index {ns.index} may mean another namespace after "
                        f"the server restarts; write nsu=<namespace URI>;... or map it under 'namespaces: "
                        f"{{{ns.index}: <URI>}}' (smartfactory gateway browse lists each node's URI)")

    def _check_named_devices(self) -> None:
        """MC and XGT devices: TCP only, an explicit port for MC, reads within the protocol's limit."""
        if self.transport is not Transport.tcp:
            raise ValueError(f"the {self.protocol.value} protocol runs over TCP: drop 'transport: {self.transport.value}'")
        if self.protocol is Protocol.mc and "port" not in self.model_fields_set:
            raise ValueError("an MC device needs 'port': the PLC's MC protocol port as set in GX Works "
                             "(Ethernet settings, e.g. 5007); Mitsubishi has no fixed default")
        limit = MC_LIMITS[self.series][0] if self.protocol is Protocol.mc else XGT_MAX_BYTES // 2
        what = "the MC protocol reads" if self.protocol is Protocol.mc else "an XGT block read takes"
        if self.max_registers_per_read > limit:
            raise ValueError(f"max_registers_per_read {self.max_registers_per_read}: {what} at most {limit} words")

    @property
    def link(self) -> tuple:
        """Devices with the same link share one connection (one serial line, one converter)."""
        if self.protocol is Protocol.opcua:
            return (self.protocol.value, self.endpoint, self.name)  # a session of its own per device
        if self.protocol is not Protocol.modbus:
            return (self.protocol.value, self.host, self.port)
        if self.transport is Transport.rtu:
            assert self.serial is not None
            return (self.transport.value, self.serial.port)
        return (self.transport.value, self.host, self.port)

    @property
    def link_name(self) -> str:
        if self.protocol is Protocol.opcua:
            return str(self.endpoint)
        if self.protocol is not Protocol.modbus:
            return f"{self.protocol.value}:{self.host}:{self.port}"
        if self.transport is Transport.rtu:
            assert self.serial is not None
            return f"rtu:{self.serial.port}"
        return f"{self.transport.value}:{self.host}:{self.port}"

    def interval_of(self, tag: Tag | McTag | XgtTag | OpcUaTag) -> float:
        return getattr(tag, "poll_interval_s", None) or self.poll_interval_s


class OutboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path | None = Field(None, description="SQLite file; default <config dir>/<gateway id>.outbox.db")
    max_samples: Annotated[int, Field(ge=100, le=100_000_000, description="oldest are dropped past this")] = 5_000_000
    max_samples_per_message: Annotated[int, Field(ge=1, le=10_000)] = 500
    max_in_flight: Annotated[int, Field(ge=1, le=10_000, description="unacknowledged messages")] = 200


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier = Field(description="this gateway's id, in its status topic; its MQTT client id unless mqtt.username is set (then the username)")
    tenant: Identifier
    site: Identifier
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    status_interval_s: Annotated[float, Field(ge=1, le=3600, description="gateway status publish period")] = 10.0
    devices: Annotated[list[DeviceSettings], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_machines(self) -> "GatewaySettings":
        keys = [(d.line, d.name) for d in self.devices]
        dupes = sorted({f"{line}/{name}" for line, name in keys if keys.count((line, name)) > 1})
        if dupes:
            raise ValueError(f"two devices publish as the same machine: {', '.join(dupes)}")
        units: dict[tuple, list[int]] = {}
        serials: dict[str, SerialLine] = {}
        for d in self.devices:
            units.setdefault(d.link, []).append(d.unit_id)
            if d.serial is not None:
                other = serials.setdefault(d.serial.port, d.serial)
                if other != d.serial:
                    raise ValueError(f"devices on serial port {d.serial.port} disagree on its settings (baudrate, ...)")
        for link, ids in units.items():
            repeated = sorted({u for u in ids if ids.count(u) > 1})
            own_connection = (Transport.tcp.value, Protocol.mc.value, Protocol.xgt.value, Protocol.opcua.value)
            if repeated and link[0] not in own_connection:  # on a shared bus a unit id is one device
                raise ValueError(f"two devices on {link[0]} {link[1:]} share unit id {repeated[0]}")
        return self
