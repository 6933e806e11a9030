"""Pure conversion between tag values and 16-bit registers, in all four byte orders.

pymodbus' own converter knows word order only, so byte swapping is done here, once,
for every type.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from registermap.model import BIT_TABLES, DataType, McTag, Tag, XgtTag

AnyTag = Tag | McTag | XgtTag

_STRUCT = {
    DataType.int16: ("h", 1),
    DataType.uint16: ("H", 1),
    DataType.int32: ("i", 2),
    DataType.uint32: ("I", 2),
    DataType.int64: ("q", 4),
    DataType.uint64: ("Q", 4),
    DataType.float32: ("f", 2),
    DataType.float64: ("d", 4),
}


def register_count(tag: AnyTag) -> int:
    if tag.table in BIT_TABLES or tag.type is DataType.bool:
        return 1
    if tag.type is DataType.string:
        assert tag.length is not None
        return tag.length
    return _STRUCT[tag.type][1]


def _registers_to_bytes(tag: AnyTag, registers: Sequence[int]) -> bytes:
    words = list(registers)
    if tag.byte_order.swaps_words:
        words.reverse()
    fmt = "<" if tag.byte_order.swaps_bytes else ">"
    return b"".join(struct.pack(fmt + "H", w) for w in words)


def _bytes_to_registers(tag: AnyTag, raw: bytes) -> list[int]:
    fmt = "<" if tag.byte_order.swaps_bytes else ">"
    words = [struct.unpack(fmt + "H", raw[i : i + 2])[0] for i in range(0, len(raw), 2)]
    if tag.byte_order.swaps_words:
        words.reverse()
    return words


def decode(tag: AnyTag, raw: Sequence[int] | Sequence[bool]) -> bool | int | float | str:
    """Turn the tag's registers (or its one bit) into its engineering value.

    ``raw`` holds exactly the tag's own registers, ``register_count(tag)`` of them. Scale
    and offset turn an integer into a float; an unscaled integer stays an exact int.
    """
    if tag.table in BIT_TABLES:
        return bool(raw[0])
    if tag.type is DataType.bool:
        bit = tag.bit_in_word
        assert bit is not None
        return bool((int(raw[0]) >> bit) & 1)
    data = _registers_to_bytes(tag, [int(r) for r in raw])
    if tag.type is DataType.string:
        return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace").rstrip()
    fmt, _ = _STRUCT[tag.type]
    value: int | float = struct.unpack(">" + fmt, data)[0]
    if tag.scaled:
        return value * tag.scale + tag.offset
    return value


def encode(tag: AnyTag, value: bool | int | float | str) -> list[int]:
    """Inverse of decode (for simulators): engineering value to the registers that carry it.

    Bit tags encode to ``[0 or 1]``; a bool in a register encodes to a register with only
    that bit set.
    """
    if tag.table in BIT_TABLES:
        return [1 if value else 0]
    if tag.type is DataType.bool:
        bit = tag.bit_in_word
        assert bit is not None
        return [(1 << bit) if value else 0]
    if tag.type is DataType.string:
        assert tag.length is not None
        raw = str(value).encode("utf-8")[: tag.length * 2].ljust(tag.length * 2, b"\x00")
        return _bytes_to_registers(tag, raw)
    fmt, _ = _STRUCT[tag.type]
    if tag.scaled:
        value = (float(value) - tag.offset) / tag.scale
    if fmt in "fd":
        raw = struct.pack(">" + fmt, float(value))
    else:
        raw = struct.pack(">" + fmt, int(round(value)) if isinstance(value, float) else int(value))
    return _bytes_to_registers(tag, raw)


def is_finite(value: bool | int | float | str) -> bool:
    return not isinstance(value, float) or math.isfinite(value)
