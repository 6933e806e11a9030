"""OPC UA node ids and browse paths as configs write them, and variant values as the wire takes them."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from asyncua import ua

from gateway.opcua import convert
from plcprotocol.opcua import Namespace, NodeIdError, parse_node_id, parse_path_element
from registermap import OpcUaTag


@pytest.mark.parametrize("text, namespace, kind, identifier", [
    ("nsu=urn:acme:press;s=Press 1.Force", Namespace(uri="urn:acme:press"), "s", "Press 1.Force"),
    ("ns=3;i=1001", Namespace(index=3), "i", 1001),
    ("i=2253", Namespace(index=0), "i", 2253),
    ("nsu=urn:a;g=7d3c4a52-1f7e-4b8e-9a55-0c1d2e3f4a5b", Namespace(uri="urn:a"), "g",
     uuid.UUID("7d3c4a52-1f7e-4b8e-9a55-0c1d2e3f4a5b")),
    ("nsu=urn:a;b=AAEC", Namespace(uri="urn:a"), "b", b"\x00\x01\x02"),
    ("nsu=http://acme.example/UA/Press/;s=가압력;설정", Namespace(uri="http://acme.example/UA/Press/"), "s", "가압력;설정"),
])
def test_node_ids_parse_in_every_form(text, namespace, kind, identifier):
    ref = parse_node_id(text)
    assert (ref.namespace, ref.kind, ref.identifier) == (namespace, kind, identifier)
    assert parse_node_id(str(ref)) == ref  # the printed form reads back the same


def test_a_namespace_uri_field_applies_to_a_bare_node_id_only():
    assert parse_node_id("s=Force", "urn:a").namespace == Namespace(uri="urn:a")
    with pytest.raises(NodeIdError, match="give it once"):
        parse_node_id("ns=2;s=Force", "urn:a")


@pytest.mark.parametrize("text, message", [
    ("Force", "is not a node id"), ("ns=x;s=F", "is not a node id"), ("s=", "needs a name"),
    ("i=4294967296", "i=<0..4294967295>"), ("g=1234", "GUID"), ("b=!!", "base64"), ("ns=70000;i=1", "past 65535"),
])
def test_bad_node_ids_say_how_to_write_one(text, message):
    with pytest.raises(NodeIdError, match=message):
        parse_node_id(text)


def test_browse_path_elements():
    assert parse_path_element("Objects").namespace == Namespace(index=0)
    assert parse_path_element("2:Press 1") == parse_path_element("2:Press 1")
    e = parse_path_element("nsu=urn:acme:press;Press 1")
    assert (e.namespace, e.name) == (Namespace(uri="urn:acme:press"), "Press 1")
    assert str(e) == "nsu=urn:acme:press;Press 1"


def _tag(**kw) -> OpcUaTag:
    return OpcUaTag(name="t", node_id="nsu=urn:a;s=T", **kw)


def test_variants_become_wire_values_with_type_and_scaling():
    assert convert(_tag(), True) is True
    assert convert(_tag(), 7) == 7 and isinstance(convert(_tag(), 7), int)
    assert convert(_tag(scale=0.1), 123) == pytest.approx(12.3)
    assert convert(_tag(type="int"), 3.9) == 3
    assert convert(_tag(type="bool"), 2) is True
    assert convert(_tag(), ua.LocalizedText("운전 중", "ko-KR")) == "운전 중"
    assert convert(_tag(), datetime(2026, 1, 1, tzinfo=timezone.utc)) == 1767225600000
    assert convert(_tag(), "x" * 300) == "x" * 256  # the wire's longest string


@pytest.mark.parametrize("raw, message", [([1, 2], "an array of 2"), (b"\x01", "ByteString"), (None, "null")])
def test_values_with_no_scalar_meaning_are_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        convert(_tag(), raw)


def test_tag_model_needs_exactly_one_way_to_name_its_node():
    with pytest.raises(ValueError, match="by 'node_id' or by 'browse_path'"):
        OpcUaTag(name="t")
    with pytest.raises(ValueError, match="apply to numbers"):
        OpcUaTag(name="t", node_id="nsu=urn:a;s=T", type="string", scale=2)
