"""The typed definition of one tag, as written in a gateway's YAML config."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

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
