# asyncua's NewType annotations (Int16, UInt32) reject the plain ints its documentation passes
# mypy: disable-error-code="arg-type"
"""A machine's tags on an OPC UA server (asyncua's), in a namespace of its own.

The machine is an object under Objects (``Objects/<machine>``) whose variables are its tags,
each with a string node id ``<machine>.<tag>`` (spaces and Hangul as real servers have
them), plus optional GUID and numeric node ids, and nodes that answer BadNotReadable as a
broken sensor channel does. Namespaces registered before the machine's push its index
away from 2, so a client that assumed an index would read the wrong nodes. A seeded machine
timeline can drive the values (``follow``), as it drives the Modbus simulators.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.server.user_managers import UserManager

log = logging.getLogger("simulators.opcua")

NAMESPACE_URI = "urn:smartfactory:simulator:machine"

Value = bool | int | float | str


def variant(value: Value) -> ua.Variant:
    if isinstance(value, bool):
        return ua.Variant(value, ua.VariantType.Boolean)
    if isinstance(value, int):
        return ua.Variant(value, ua.VariantType.Int32 if -2**31 <= value < 2**31 else ua.VariantType.Int64)
    if isinstance(value, float):
        return ua.Variant(value, ua.VariantType.Double)
    return ua.Variant(str(value), ua.VariantType.String)


class _Users(UserManager):
    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> Any:
        from asyncua.crypto.permission_rules import User, UserRole

        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


@dataclass
class OpcUaMachine:
    machine: str
    values: dict[str, Value]
    namespace_uri: str = NAMESPACE_URI
    #: registered before the machine's namespace: moves its index
    namespaces_before: tuple[str, ...] = ()
    guid_nodes: dict[str, uuid.UUID] = field(default_factory=dict)  # tag -> its GUID node id
    numeric_nodes: dict[str, int] = field(default_factory=dict)  # tag -> its numeric node id
    unreadable: tuple[str, ...] = ()  # tags whose value is BadNotReadable
    host: str = "127.0.0.1"
    port: int = 0
    #: Sign or Sign&Encrypt: the server's certificate and key, and the client certificates it trusts
    certificate: Path | None = None
    private_key: Path | None = None
    trusted: tuple[bytes, ...] = ()  # DER of the client certificates it accepts
    allow_none: bool = True  # also offer security mode None
    #: with a certificate: the Basic256Sha256 modes offered (sign, sign_and_encrypt)
    secure_modes: tuple[str, ...] = ("sign_and_encrypt",)
    users: dict[str, str] | None = None  # name -> password; None: anonymous
    application_uri: str = "urn:smartfactory:simulator:opcua"  # its certificate's URI, when it has one
    #: a cache of the standard address space (asyncua builds it in seconds; a shelf loads it lazily)
    shelf_file: Path | None = None

    def __post_init__(self) -> None:
        self.server: Server | None = None
        self.index = 0
        self._nodes: dict[str, Any] = {}
        self._follow: asyncio.Task | None = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/smartfactory/sim"

    def node_id(self, tag: str) -> str:
        """The tag's node id as a config writes it: by namespace URI."""
        if tag in self.guid_nodes:
            return f"nsu={self.namespace_uri};g={self.guid_nodes[tag]}"
        if tag in self.numeric_nodes:
            return f"nsu={self.namespace_uri};i={self.numeric_nodes[tag]}"
        return f"nsu={self.namespace_uri};s={self.machine}.{tag}"

    async def start(self) -> int:
        server = Server(user_manager=_Users(self.users) if self.users is not None else None)
        await server.init(self.shelf_file)
        if self.shelf_file is not None and not self.shelf_file.is_file():
            # asyncua looks for the shelf under its own name, but the dbm module that wrote it may have
            # added suffixes (.dat/.dir): mark it as there, or every start builds it again
            self.shelf_file.touch()
        await server.set_application_uri(self.application_uri)
        if self.port == 0:
            import socket

            with socket.socket() as sock:
                sock.bind((self.host, 0))
                self.port = sock.getsockname()[1]
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"smartfactory simulated {self.machine}")
        policies = [ua.SecurityPolicyType.NoSecurity] if self.allow_none else []
        if self.certificate is not None and self.private_key is not None:
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(self.private_key))
            for mode in self.secure_modes:
                policies.append({"sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
                                 "sign_and_encrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt}[mode])
            if self.trusted:
                server.set_certificate_validator(self._validate)
        server.set_security_policy(policies)
        if self.users is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        for uri in self.namespaces_before:
            await server.register_namespace(uri)
        self.index = idx = await server.register_namespace(self.namespace_uri)
        machine = await server.nodes.objects.add_object(ua.NodeId(self.machine, idx), ua.QualifiedName(self.machine, idx))
        for name, value in self.values.items():
            if name in self.guid_nodes:
                node_id = ua.NodeId(self.guid_nodes[name], idx, ua.NodeIdType.Guid)
            elif name in self.numeric_nodes:
                node_id = ua.NodeId(self.numeric_nodes[name], idx, ua.NodeIdType.Numeric)
            else:
                node_id = ua.NodeId(f"{self.machine}.{name}", idx, ua.NodeIdType.String)
            v = variant(value)
            node = await machine.add_variable(node_id, ua.QualifiedName(name, idx), v.Value, v.VariantType)
            self._nodes[name] = node
            if name in self.unreadable:
                await node.write_attribute(ua.AttributeIds.AccessLevel, ua.DataValue(ua.Variant(0, ua.VariantType.Byte)))
                await server.write_attribute_value(node.nodeid, ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadNotReadable)))
        await server.start()
        self.server = server
        log.info("opcua_sim_listening endpoint=%s namespace=%s index=%d", self.endpoint, self.namespace_uri, idx)
        return self.port

    async def _validate(self, certificate: Any, app_description: Any) -> None:
        from asyncua.crypto import uacrypto
        from asyncua.common.utils import ServiceError

        if uacrypto.der_from_x509(certificate) not in self.trusted:
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    async def set(self, name: str, value: Value, source_timestamp: datetime | None = None) -> None:
        """Write a value as the PLC program would (source timestamp: the one given, else now)."""
        node = self._nodes[name]
        self.values[name] = value
        v = variant(value)
        current = await node.read_data_type_as_variant_type()
        await node.write_value(ua.DataValue(ua.Variant(v.Value, current), SourceTimestamp=source_timestamp,
                                            ServerTimestamp=source_timestamp))

    async def read(self, name: str) -> Any:
        return await self._nodes[name].read_value()

    def follow(self, values_at: Callable[[float], Mapping[str, Value]], interval_s: float = 0.5,
               clock: Callable[[], float] | None = None) -> None:
        """Drive the tags from a machine model: every ``interval_s``, ``values_at(t)`` for the tags it names."""
        import time

        async def loop() -> None:
            while True:
                for name, value in values_at((clock or time.time)()).items():
                    if name in self._nodes and name not in self.unreadable:
                        await self.set(name, value)
                await asyncio.sleep(interval_s)

        self._follow = asyncio.create_task(loop(), name=f"opcua-sim:{self.machine}")

    async def stop(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            await asyncio.gather(self._follow, return_exceptions=True)
            self._follow = None
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop()
