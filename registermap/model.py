"""The typed definition of one tag, as written in a gateway's YAML config."""

from __future__ import annotations

from enum import Enum
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plant import IDENTIFIER_PATTERN


class Table(str, Enum):
    coil = "coil"
    discrete_input = "discrete_input"
    input_register = "input_register"
    holding_register = "holding_register"


BIT_TABLES = frozenset({Table.coil, Table.discrete_input})


class DataType(str, Enum):
    bool = "bool"
    int16 = "int16"
    uint16 = "uint16"
    int32 = "int32"
    uint32 = "uint32"
    int64 = "int64"
    uint64 = "uint64"
    float32 = "float32"
    float64 = "float64"
    string = "string"


class ByteOrder(str, Enum):
    """Order of the value's big-endian bytes A B C D … across registers.

    ABCD is Modbus' own big-endian order; CDAB swaps words (common on Schneider, many
    meters), BADC swaps the bytes inside each word, DCBA does both.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"

    @property
    def swaps_words(self) -> bool:
        return self in (ByteOrder.CDAB, ByteOrder.DCBA)

    @property
    def swaps_bytes(self) -> bool:
        return self in (ByteOrder.BADC, ByteOrder.DCBA)


class Tag(BaseModel):
    """One named value in a device's register map. Addresses are 0-based wire addresses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
    table: Table
    address: Annotated[int, Field(ge=0, le=65535, description="0-based address on the wire")]
    type: DataType = DataType.uint16
    order: ByteOrder = ByteOrder.ABCD
    bit: Annotated[int | None, Field(ge=0, le=15, description="bit of a register, for type bool")] = None
    length: Annotated[int | None, Field(ge=1, le=123, description="registers, for type string")] = None
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Tag":
        if self.table in BIT_TABLES and self.type is not DataType.bool:
            raise ValueError(f"a {self.table.value} holds one bit: type must be 'bool', not '{self.type.value}'")
        if self.table not in BIT_TABLES and self.type is DataType.bool and self.bit is None:
            raise ValueError("a bool in a register needs 'bit' (0-15)")
        if self.type is not DataType.bool and self.bit is not None:
            raise ValueError("'bit' applies only to type 'bool'")
        if self.type is DataType.string and self.length is None:
            raise ValueError("type 'string' needs 'length' in registers")
        if self.type is not DataType.string and self.length is not None:
            raise ValueError("'length' applies only to type 'string'")
        if self.address + self.width > 65536:
            raise ValueError(f"tag spans past address 65535 (address {self.address}, {self.width} registers)")
        return self

    @property
    def width(self) -> int:
        """Registers (or bits, for bit tables) that the tag occupies."""
        from registermap.codec import register_count

        return register_count(self)

    @property
    def scaled(self) -> bool:
        return self.scale != 1.0 or self.offset != 0.0

    @property
    def byte_order(self) -> ByteOrder:
        return self.order

    @property
    def bit_in_word(self) -> int | None:
        return self.bit


class _WordDeviceTag(BaseModel):
    """What the tags of the PLC protocols that name devices (MC, XGT) share: the value's type,
    byte order, bit, length and scaling, over 16-bit words that the device's address locates.
    Their 32- and 64-bit values are low word first (``CDAB``) and strings low byte first
    (``BADC``) unless ``order`` says otherwise: both Mitsubishi and LS store little-endian."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
    type: DataType = DataType.uint16
    order: ByteOrder | None = Field(None, description="default CDAB (low word first); strings BADC")
    bit: Annotated[int | None, Field(ge=0, le=15, description="bit of a word device, for type bool")] = None
    length: Annotated[int | None, Field(ge=1, le=960, description="words, for type string")] = None
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    # where the value is: (read area, first word, bit in that word or None, a bit point?)
    def _locate(self) -> tuple[str, int, int | None, bool]:
        raise NotImplementedError

    @cached_property
    def _location(self) -> tuple[str, int, int | None, bool]:
        """``_locate`` parsed once: the planner asks for a tag's area and address many times."""
        return self._locate()

    @property
    def is_bit_device(self) -> bool:
        return self._location[3]

    @property
    def table(self) -> str:
        """The read area: a request reads one device area."""
        return self._location[0]

    @property
    def address(self) -> int:
        """The word the value starts in."""
        return self._location[1]

    @property
    def bit_in_word(self) -> int | None:
        return self._location[2]

    @property
    def byte_order(self) -> ByteOrder:
        if self.order is not None:
            return self.order
        return ByteOrder.BADC if self.type is DataType.string else ByteOrder.CDAB

    @cached_property
    def width(self) -> int:
        from registermap.codec import register_count

        return register_count(self)  # type: ignore[arg-type]

    @property
    def scaled(self) -> bool:
        return self.scale != 1.0 or self.offset != 0.0

    def _check_word_value(self, where: str) -> None:
        if self.type is DataType.bool and self.bit_in_word is None:
            raise ValueError(f"a bool in word device {where} needs 'bit' (0-15)")
        if self.type is not DataType.bool and self.bit is not None:
            raise ValueError("'bit' applies only to type 'bool'")
        if self.type is DataType.string and self.length is None:
            raise ValueError("type 'string' needs 'length' in words")
        if self.type is not DataType.string and self.length is not None:
            raise ValueError("'length' applies only to type 'string'")


class McTag(_WordDeviceTag):
    """One named value in a Mitsubishi PLC's device memory, read over the MC protocol (SLMP).

    ``device`` names the point as the PLC's manual does (``D100``, ``W1A0``, ``M17``, ``X1F``;
    X, Y, B, W in hexadecimal). A bit device (X, Y, M, L, B, SM, SB) holds a bool; a word
    device a number, a string or, with ``bit``, one bit of a word.
    """

    device: str = Field(description="e.g. D100, W1A0, M17, X1F")

    @model_validator(mode="before")
    @classmethod
    def _bit_devices_hold_bools(cls, data: Any) -> Any:
        from plcprotocol.mc import Device, McError

        if not isinstance(data, dict) or not isinstance(data.get("device"), str):
            return data
        try:
            device = Device.parse(data["device"])
        except McError as exc:
            raise ValueError(str(exc)) from None
        if device.kind.is_bit:
            if data.get("type", "bool") not in ("bool", DataType.bool):
                raise ValueError(f"{device} is a bit device: type must be 'bool', not {data['type']!r}")
            if data.get("bit") is not None:
                raise ValueError(f"'bit' applies to word devices; {device} is a bit device")
            return {**data, "type": "bool", "device": str(device)}
        return {**data, "device": str(device)}

    @model_validator(mode="after")
    def _consistent(self) -> "McTag":
        if not self.is_bit_device:
            self._check_word_value(self.device)
        elif self.type is DataType.string or self.length is not None:
            raise ValueError(f"{self.device} is a bit device: it holds a bool")
        return self

    def _locate(self) -> tuple[str, int, int | None, bool]:
        from plcprotocol.mc import Device

        d = Device.parse(self.device)
        if d.kind.is_bit:  # read 16 points a word
            return d.kind.name, d.number // 16, d.number % 16, True
        return d.kind.name, d.number, self.bit, False


#: the word size an XGT variable's size letter stands for, and the types it may hold
_XGT_SIZES = {"W": (1, {DataType.uint16, DataType.int16, DataType.bool, DataType.string}),
              "D": (2, {DataType.uint32, DataType.int32, DataType.float32}),
              "L": (4, {DataType.uint64, DataType.int64, DataType.float64})}
_XGT_DEFAULT_TYPE = {"X": DataType.bool, "W": DataType.uint16, "D": DataType.uint32, "L": DataType.uint64}


class XgtTag(_WordDeviceTag):
    """One named value in an LS ELECTRIC XGT PLC, read over FEnet's dedicated protocol.

    ``variable`` is the direct variable as XG5000 writes it: ``%MW100`` (a word of M),
    ``%DD20`` (a double word: 32-bit types), ``%ML4`` (64-bit), ``%MX35`` (bit 35 of M, counting
    bits from the area's start as XGI and XGB do) or ``%MW10.A`` (bit 10 of word 10, XGK style).
    The type defaults to the variable's size: bool, uint16, uint32 or uint64.
    """

    variable: str = Field(description="e.g. %MW100, %DD20, %MX35, %MW10.A")

    @model_validator(mode="before")
    @classmethod
    def _size_gives_the_type(cls, data: Any) -> Any:
        from plcprotocol.xgt import Variable, XgtError

        if not isinstance(data, dict) or not isinstance(data.get("variable"), str):
            return data
        try:
            v = Variable.parse(data["variable"])
        except XgtError as exc:
            raise ValueError(str(exc)) from None
        if v.size == "B":
            raise ValueError(f"{v}: read bytes as part of a word (%{v.area}W{v.index // 2}) or a bit (%{v.area}X...)")
        if data.get("bit") is not None:
            raise ValueError(f"{v}: write the bit in the variable (%{v.area}W{v.index}.A), not as 'bit'")
        out = {**data, "variable": str(v)}
        if v.size == "X" or v.bit is not None:
            if data.get("type", "bool") not in ("bool", DataType.bool):
                raise ValueError(f"{v} is a bit: type must be 'bool', not {data['type']!r}")
            out["type"] = "bool"
        else:
            out.setdefault("type", _XGT_DEFAULT_TYPE[v.size].value)
        return out

    @model_validator(mode="after")
    def _consistent(self) -> "XgtTag":
        from plcprotocol.xgt import Variable

        v = Variable.parse(self.variable)
        if v.size in _XGT_SIZES and v.bit is None and self.type not in _XGT_SIZES[v.size][1]:
            allowed = ", ".join(sorted(t.value for t in _XGT_SIZES[v.size][1]))
            raise ValueError(f"{v} is a {v.size} variable: type must be one of {allowed}, not '{self.type.value}'")
        if self.type is DataType.string and self.length is None:
            raise ValueError("type 'string' needs 'length' in words")
        if self.type is not DataType.string and self.length is not None:
            raise ValueError("'length' applies only to type 'string'")
        return self

    def _locate(self) -> tuple[str, int, int | None, bool]:
        from plcprotocol.xgt import Variable

        v = Variable.parse(self.variable)
        if v.size == "X":
            return v.area, v.index // 16, v.index % 16, True
        words = {"W": 1, "D": 2, "L": 4}[v.size]
        return v.area, v.index * words, v.bit, False


class OpcUaType(str, Enum):
    """What an OPC UA tag's value is turned into; by default what the server's variant holds."""

    bool = "bool"
    int = "int"
    float = "float"
    string = "string"


class OpcUaTag(BaseModel):
    """One named value on an OPC UA server: a Variable node's Value attribute.

    The node is named by ``node_id`` (``nsu=urn:acme:press;s=Press 1.Force``, ``ns=3;i=1001``
    with the device's ``namespaces`` mapping index 3 to its URI, ``g=<GUID>``, ``b=<base64>``;
    ``namespace_uri`` may give the URI separately) or by ``browse_path`` from the Root node
    (``[Objects, "nsu=urn:acme:press;Press1", "nsu=urn:acme:press;Force"]``). Either way the
    namespace index is looked up on the server at connect, never assumed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
    node_id: str | None = Field(None, description="e.g. nsu=urn:acme:press;s=Press 1.Force")
    namespace_uri: str | None = Field(None, description="the namespace of a node_id written without one")
    browse_path: tuple[str, ...] | None = Field(None, description="browse names from the Root node, e.g. [Objects, ...]")
    type: OpcUaType | None = Field(None, description="default: as the server's variant (bool, int, float, string)")
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "OpcUaTag":
        from plcprotocol.opcua import NodeIdError, parse_node_id, parse_path_element

        if (self.node_id is None) == (self.browse_path is None):
            raise ValueError("an OPC UA tag names its node by 'node_id' or by 'browse_path' (one of them)")
        try:
            if self.node_id is not None:
                parse_node_id(self.node_id, self.namespace_uri)
            else:
                if self.namespace_uri is not None:
                    raise ValueError("'namespace_uri' applies to 'node_id'; a browse path names each element's namespace "
                                     "(nsu=<URI>;Name)")
                assert self.browse_path is not None
                if not self.browse_path:
                    raise ValueError("'browse_path' is empty: start from the Root node, e.g. [Objects, ...]")
                for element in self.browse_path:
                    parse_path_element(element)
        except NodeIdError as exc:
            raise ValueError(str(exc)) from None
        if self.scaled and self.type in (OpcUaType.bool, OpcUaType.string):
            raise ValueError(f"'scale' and 'offset' apply to numbers, not type '{self.type.value}'")
        return self

    @property
    def scaled(self) -> bool:
        return self.scale != 1.0 or self.offset != 0.0

    @property
    def where(self) -> str:
        """The node as the config names it, for logs and ``gateway plan``."""
        if self.node_id is not None:
            from plcprotocol.opcua import parse_node_id

            return str(parse_node_id(self.node_id, self.namespace_uri))
        assert self.browse_path is not None
        return "/" + "/".join(self.browse_path)
