"""OPC UA node ids and browse paths as a config writes them: parsed offline, no I/O, no asyncua.

A namespace *index* is only a position in the server's namespace array, which a server may
reorder at any restart (a new companion spec loaded, a project re-deployed), so a node id kept
in a config names its namespace by *URI*; the gateway looks the index up on the server at
every connect. The text forms follow OPC UA Part 6, 5.3.1.10 (the XML/JSON string form):

- ``ns=<index>;<id>``, ``nsu=<namespace URI>;<id>`` or just ``<id>`` (namespace 0, or the tag's
  ``namespace_uri``), where ``<id>`` is ``i=<uint32>``, ``s=<string>`` (anything, spaces and
  Hangul included), ``g=<GUID>`` or ``b=<base64 opaque>``;
- a browse path element is ``Name`` (namespace 0: ``Objects``, ``Server``), ``<index>:Name``
  (copied from a browser such as UaExpert; the index must be mapped to a URI) or
  ``nsu=<namespace URI>;Name``.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass

#: the OPC UA namespace, always index 0
UA_NAMESPACE = "http://opcfoundation.org/UA/"

_NODE_ID = re.compile(r"^(?:ns=(?P<ns>\d+);|nsu=(?P<nsu>.+?);)?(?P<kind>[isgb])=(?P<id>.*)$", re.DOTALL)
_ELEMENT = re.compile(r"^(?:(?P<ns>\d+):|nsu=(?P<nsu>.+?);)?(?P<name>.+)$", re.DOTALL)

Identifier = int | str | uuid.UUID | bytes


class NodeIdError(ValueError):
    """A node id or browse path that cannot be meant: says what is wrong and how to write it."""


@dataclass(frozen=True)
class Namespace:
    """A namespace as the config names it: by URI, or by an index (0 is the OPC UA namespace)."""

    uri: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        return f"nsu={self.uri}" if self.uri is not None else f"ns={self.index}"


@dataclass(frozen=True)
class NodeRef:
    namespace: Namespace
    kind: str  # i, s, g or b
    identifier: Identifier

    def __str__(self) -> str:
        if self.kind == "b":
            assert isinstance(self.identifier, bytes)
            ident = base64.b64encode(self.identifier).decode()
        else:
            ident = str(self.identifier)
        if self.namespace.index == 0:
            return f"{self.kind}={ident}"
        return f"{self.namespace};{self.kind}={ident}"


@dataclass(frozen=True)
class PathElement:
    namespace: Namespace
    name: str

    def __str__(self) -> str:
        if self.namespace.index == 0:
            return self.name
        if self.namespace.uri is not None:
            return f"nsu={self.namespace.uri};{self.name}"
        return f"{self.namespace.index}:{self.name}"


def _namespace(ns: str | None, nsu: str | None, default_uri: str | None, text: str) -> Namespace:
    if (ns is not None or nsu is not None) and default_uri is not None:
        raise NodeIdError(f"{text!r} names its namespace, and so does 'namespace_uri': give it once")
    if nsu is not None:
        return Namespace(uri=nsu)
    if ns is not None:
        index = int(ns)
        if index > 65535:
            raise NodeIdError(f"{text!r}: namespace index {index} is past 65535")
        return Namespace(index=index)
    if default_uri is not None:
        return Namespace(uri=default_uri)
    return Namespace(index=0)


def parse_node_id(text: str, namespace_uri: str | None = None) -> NodeRef:
    """``ns=3;i=1001``, ``nsu=urn:acme:press;s=Press 1.Force``, ``g=...``, ``b=...``; without a
    namespace the node is in ``namespace_uri`` if given, else in namespace 0."""
    m = _NODE_ID.match(text)
    if m is None:
        raise NodeIdError(
            f"{text!r} is not a node id: write nsu=<namespace URI>;s=<name> (or i=<number>, g=<GUID>, "
            "b=<base64>), e.g. 'nsu=urn:acme:press;s=Press 1.Force' or 'nsu=urn:acme:press;i=1001'"
        )
    namespace = _namespace(m["ns"], m["nsu"], namespace_uri, text)
    kind, raw = m["kind"], m["id"]
    identifier: Identifier
    if kind == "i":
        if not raw.isdigit() or int(raw) > 0xFFFFFFFF:
            raise NodeIdError(f"{text!r}: a numeric node id is i=<0..4294967295>, not i={raw}")
        identifier = int(raw)
    elif kind == "s":
        if not raw:
            raise NodeIdError(f"{text!r}: a string node id needs a name after s=")
        identifier = raw
    elif kind == "g":
        try:
            identifier = uuid.UUID(raw)
        except ValueError:
            raise NodeIdError(f"{text!r}: a GUID node id is g=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") from None
    else:
        try:
            identifier = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise NodeIdError(f"{text!r}: an opaque node id is b=<base64>") from None
        if not identifier:
            raise NodeIdError(f"{text!r}: an opaque node id needs bytes after b=")
    return NodeRef(namespace, kind, identifier)


def parse_path_element(text: str) -> PathElement:
    """One browse name of a browse path: ``Objects``, ``2:Press1`` or ``nsu=urn:acme:press;Press1``."""
    m = _ELEMENT.match(text)
    if m is None or not m["name"].strip():
        raise NodeIdError(f"{text!r} is not a browse name: write Name, nsu=<namespace URI>;Name or <index>:Name")
    return PathElement(_namespace(m["ns"], m["nsu"], None, text), m["name"])


def unmapped_indices(namespaces: list[Namespace], mapped: set[int]) -> list[int]:
    """Namespace indices (other than 0) that a config uses without saying which URI they stand for."""
    return sorted({n.index for n in namespaces if n.index is not None and n.index != 0 and n.index not in mapped})
