"""The typed definition of one tag, as written in a gateway's YAML config."""

from __future__ import annotations

from enum import Enum
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


class McTag(BaseModel):
    """One named value in a Mitsubishi PLC's device memory, read over the MC protocol (SLMP).

    ``device`` names the point as the PLC's manual does (``D100``, ``W1A0``, ``M17``, ``X1F``;
    X, Y, B, W in hexadecimal). A bit device (X, Y, M, L, B, SM, SB) holds a bool; a word
    device a number, a string or, with ``bit``, one bit of a word. 32- and 64-bit values
    are low word first, Mitsubishi's order (``CDAB``), and strings low byte first
    (``BADC``), unless ``order`` says otherwise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
    device: str = Field(description="e.g. D100, W1A0, M17, X1F")
    type: DataType = DataType.uint16
    order: ByteOrder | None = Field(None, description="default CDAB (low word first); strings BADC")
    bit: Annotated[int | None, Field(ge=0, le=15, description="bit of a word device, for type bool")] = None
    length: Annotated[int | None, Field(ge=1, le=960, description="words, for type string")] = None
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

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
            if self.type is DataType.bool and self.bit is None:
                raise ValueError(f"a bool in word device {self.device} needs 'bit' (0-15)")
            if self.type is not DataType.bool and self.bit is not None:
                raise ValueError("'bit' applies only to type 'bool'")
        if self.type is DataType.string and self.length is None:
            raise ValueError("type 'string' needs 'length' in words")
        if self.type is not DataType.string and self.length is not None:
            raise ValueError("'length' applies only to type 'string'")
        return self

    @property
    def _parsed(self) -> Any:
        from plcprotocol.mc import Device

        return Device.parse(self.device)

    @property
    def is_bit_device(self) -> bool:
        return bool(self._parsed.kind.is_bit)

    @property
    def table(self) -> str:
        """The read area: one per device kind (a request reads one kind)."""
        return str(self._parsed.kind.name)

    @property
    def address(self) -> int:
        """The word the value starts in: bit devices are read 16 points a word."""
        number = int(self._parsed.number)
        return number // 16 if self.is_bit_device else number

    @property
    def bit_in_word(self) -> int | None:
        return int(self._parsed.number) % 16 if self.is_bit_device else self.bit

    @property
    def byte_order(self) -> ByteOrder:
        if self.order is not None:
            return self.order
        return ByteOrder.BADC if self.type is DataType.string else ByteOrder.CDAB

    @property
    def width(self) -> int:
        from registermap.codec import register_count

        return register_count(self)

    @property
    def scaled(self) -> bool:
        return self.scale != 1.0 or self.offset != 0.0
