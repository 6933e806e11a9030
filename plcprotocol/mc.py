"""Mitsubishi MC protocol (SLMP), binary 3E frame: requests and responses as bytes, no I/O.

Kept pure so that the gateway's driver, the simulator's server and the tests share one
codec, and the framing can be checked byte for byte against the manual's examples.

Facts it relies on (MELSEC Communication Protocol / SLMP reference manuals):

- A request is subheader ``50 00``, network no., PC no. (``FF``), request destination
  module I/O no. (``FF 03``: 0x03FF little-endian), station no., request data length
  (2 bytes LE, counted from the monitoring timer to the end), monitoring timer (2 bytes LE,
  units of 250 ms), command and subcommand (2 bytes LE each), then the command's data.
- A response is subheader ``D0 00``, the same four routing fields, response data length
  (2 bytes LE, counted from the end code), end code (2 bytes LE) and data. A non-zero end
  code is followed by error information (the routing fields, command and subcommand).
- Q/L series and FX5 address a device with a 3-byte number and a 1-byte device code
  (subcommands 0x0000 word units, 0x0001 bit units); iQ-R with a 4-byte number and a
  2-byte code (subcommands 0x0002 and 0x0003).
- Batch read 0x0401; random read 0x0403 (word points first, then double-word points).
- In bit units two points share a byte, the first in the high nibble. Read in word units,
  a bit device gives 16 points a word, the head device in bit 0.
- X, Y, B, W (and SB, SW) are numbered in hexadecimal, the others in decimal.
- Points per request (R/Q/L over Ethernet, binary): batch read 960 words or 7168 bits;
  random read 192 word plus double-word points (96 with the iQ-R subcommand).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import Enum

REQUEST_SUBHEADER = b"\x50\x00"
RESPONSE_SUBHEADER = b"\xd0\x00"
HEADER_BYTES = 9  # subheader, routing (5 bytes), data length: enough to know the frame's length

BATCH_READ = 0x0401
RANDOM_READ = 0x0403

#: The end codes the gateway treats as "this request's span is refused" (split the read, as
#: for Modbus exception 2), rather than as a device failure: out of range, a device this CPU
#: does not have, or more points than this CPU takes in one request.
ADDRESS_END_CODES = frozenset({0xC051, 0xC052, 0xC053, 0xC054, 0xC056, 0xC05B})
#: End codes that mean "this CPU does not take this command": answered to a random read, the
#: gateway switches that device to batch reads for good.
UNSUPPORTED_END_CODES = frozenset({0xC059, 0xC05F})
#: as the SLMP reference manual lists them (end codes returned by the CPU module)
END_CODE_TEXT = {
    0xC050: "ASCII data that cannot be converted to binary",
    0xC051: "too many bit points for one request",
    0xC052: "too many word points for one request",
    0xC053: "too many bit points for one random request",
    0xC054: "too many word points for one random request",
    0xC056: "read past the device's address range",
    0xC058: "request data length after ASCII-to-binary conversion does not match the character count",
    0xC059: "command or subcommand not supported",
    0xC05B: "the CPU cannot read or write this device",
    0xC05C: "error in the request (e.g. a bit device not a multiple of 16 in word units)",
    0xC05F: "the target CPU cannot execute this request",
    0xC060: "error in the request for a bit device",
    0xC061: "request data length does not match the data",
}


class Series(str, Enum):
    """Which device-address format the PLC takes."""

    q = "q"  # MELSEC-Q, L and FX5 (SLMP): 3-byte device numbers, 1-byte device codes
    iq_r = "iq-r"  # MELSEC iQ-R: 4-byte device numbers, 2-byte device codes


@dataclass(frozen=True)
class DeviceKind:
    name: str
    code: int
    is_bit: bool
    hex_numbered: bool


_KINDS = (
    DeviceKind("X", 0x9C, True, True), DeviceKind("Y", 0x9D, True, True), DeviceKind("M", 0x90, True, False),
    DeviceKind("L", 0x92, True, False), DeviceKind("B", 0xA0, True, True), DeviceKind("SM", 0x91, True, False),
    DeviceKind("SB", 0xA1, True, True), DeviceKind("D", 0xA8, False, False), DeviceKind("W", 0xB4, False, True),
    DeviceKind("R", 0xAF, False, False), DeviceKind("ZR", 0xB0, False, False), DeviceKind("SD", 0xA9, False, False),
    DeviceKind("SW", 0xB5, False, True),
)
DEVICE_KINDS = {k.name: k for k in _KINDS}
_BY_CODE = {k.code: k for k in _KINDS}
# two-letter kinds first, so that a hexadecimal number starting with a letter (WC00, XFF, BA) is
# not read as a kind "WC", "XF" or "BA"
_DEVICE = re.compile(r"^(" + "|".join(sorted(DEVICE_KINDS, key=len, reverse=True)) + r"|[A-Z]{1,2})([0-9A-F]+)$")

LIMITS = {  # points per request: (batch words, batch bits, random word + double-word points)
    Series.q: (960, 7168, 192),
    Series.iq_r: (960, 7168, 96),
}


class McError(ValueError):
    """A frame that is not valid MC protocol, or a device name we cannot address."""


class EndCodeError(Exception):
    """The PLC answered with a non-zero end code."""

    def __init__(self, end_code: int, command: int | None = None) -> None:
        text = END_CODE_TEXT.get(end_code, "see the PLC manual's error code list")
        super().__init__(f"MC end code 0x{end_code:04X}: {text}")
        self.end_code = end_code
        self.command = command

    @property
    def refused_address(self) -> bool:
        return self.end_code in ADDRESS_END_CODES

    @property
    def unsupported(self) -> bool:
        return self.end_code in UNSUPPORTED_END_CODES


@dataclass(frozen=True)
class Device:
    """A device point such as D100 or X1F (X, Y, B, W numbered in hexadecimal)."""

    kind: DeviceKind
    number: int

    @classmethod
    def parse(cls, text: str) -> Device:
        m = _DEVICE.match(text.strip().upper())
        kind = DEVICE_KINDS.get(m.group(1)) if m else None
        if m is None or kind is None:
            raise McError(f"{text!r} is not an MC device: use one of {', '.join(DEVICE_KINDS)} and a number, "
                          "e.g. D100, M20, X1F (X, Y, B, W in hexadecimal)")
        try:
            number = int(m.group(2), 16 if kind.hex_numbered else 10)
        except ValueError:
            raise McError(f"{text!r}: {kind.name} devices are numbered in decimal, e.g. {kind.name}100") from None
        return cls(kind, number)

    def __str__(self) -> str:
        return f"{self.kind.name}{self.number:X}" if self.kind.hex_numbered else f"{self.kind.name}{self.number}"

    def encode(self, series: Series) -> bytes:
        if series is Series.iq_r:
            return struct.pack("<IH", self.number, self.kind.code)
        if not 0 <= self.number < 1 << 24:
            raise McError(f"{self}: device number past the 3-byte range of Q/L addressing (use series iq-r)")
        return self.number.to_bytes(3, "little") + bytes([self.kind.code])


@dataclass(frozen=True)
class Route:
    """Where the request goes: the connected station's CPU by default."""

    network: int = 0
    pc: int = 0xFF
    module_io: int = 0x03FF
    station: int = 0

    def encode(self) -> bytes:
        return struct.pack("<BBHB", self.network, self.pc, self.module_io, self.station)


LOCAL_CPU = Route()  # the CPU of the station the gateway is connected to


def _subcommand(series: Series, bits: bool) -> int:
    return (0x0003 if bits else 0x0002) if series is Series.iq_r else (0x0001 if bits else 0x0000)


def _device_bytes(series: Series) -> int:
    return 6 if series is Series.iq_r else 4


def request(command: int, subcommand: int, data: bytes, route: Route = Route(), timer: int = 0x0010) -> bytes:
    """A 3E request; ``timer`` is the PLC's own wait in 250 ms units (0x0010: 4 s)."""
    body = struct.pack("<HHH", timer, command, subcommand) + data
    return REQUEST_SUBHEADER + route.encode() + struct.pack("<H", len(body)) + body


def batch_read(head: Device, points: int, *, bits: bool, series: Series = Series.q, route: Route = Route(),
               timer: int = 0x0010) -> bytes:
    """Read ``points`` consecutive points from ``head``: words (a bit device then gives 16
    points a word) or, with ``bits``, single bits."""
    words_max, bits_max, _ = LIMITS[series]
    limit = bits_max if bits else words_max
    if not 1 <= points <= limit:
        raise McError(f"batch read of {points} {'bits' if bits else 'words'}: the limit is 1-{limit} per request")
    if bits and not head.kind.is_bit:
        raise McError(f"{head} is a word device: read it in word units")
    data = head.encode(series) + struct.pack("<H", points)
    return request(BATCH_READ, _subcommand(series, bits), data, route, timer)


def random_read(words: list[Device], dwords: list[Device], *, series: Series = Series.q, route: Route = Route(),
                timer: int = 0x0010) -> bytes:
    """Read scattered word and double-word points in one request."""
    limit = LIMITS[series][2]
    if not words and not dwords:
        raise McError("a random read needs at least one device")
    if len(words) + len(dwords) > limit:
        raise McError(f"random read of {len(words) + len(dwords)} points: the limit is {limit} per request")
    data = bytes([len(words), len(dwords)]) + b"".join(d.encode(series) for d in (*words, *dwords))
    return request(RANDOM_READ, _subcommand(series, False), data, route, timer)


def frame_length(head: bytes) -> int:
    """The whole frame's length from its first ``HEADER_BYTES`` bytes (request or response)."""
    if len(head) < HEADER_BYTES:
        raise McError(f"need {HEADER_BYTES} bytes to frame an MC message, got {len(head)}")
    if head[:2] not in (REQUEST_SUBHEADER, RESPONSE_SUBHEADER):
        raise McError(f"not a binary 3E frame: subheader {head[:2].hex(' ')} (expected 50 00 or d0 00; "
                      "is the PLC port set to binary code and 3E frames?)")
    length: int = struct.unpack_from("<H", head, 7)[0]
    return HEADER_BYTES + length


def response_data(frame: bytes) -> bytes:
    """The data of a good response; a non-zero end code raises ``EndCodeError``."""
    if len(frame) < HEADER_BYTES + 2 or frame[:2] != RESPONSE_SUBHEADER:
        raise McError(f"not a 3E response: {frame[:12].hex(' ')}")
    if frame_length(frame) != len(frame):
        raise McError(f"3E response of {len(frame)} bytes, its header says {frame_length(frame)}")
    end_code = struct.unpack_from("<H", frame, HEADER_BYTES)[0]
    if end_code:
        command = struct.unpack_from("<H", frame, HEADER_BYTES + 7)[0] if len(frame) >= HEADER_BYTES + 11 else None
        raise EndCodeError(end_code, command)
    return frame[HEADER_BYTES + 2:]


def words_of(data: bytes, count: int) -> list[int]:
    """Unsigned 16-bit words, little-endian."""
    if len(data) < 2 * count:
        raise McError(f"short MC response: {len(data)} bytes for {count} words")
    return list(struct.unpack_from(f"<{count}H", data))


def bits_of(data: bytes, count: int) -> list[bool]:
    """Bit-unit data: two points a byte, the first in the high nibble."""
    if len(data) < (count + 1) // 2:
        raise McError(f"short MC response: {len(data)} bytes for {count} bits")
    return [bool((data[i // 2] >> (4 if i % 2 == 0 else 0)) & 0x1) for i in range(count)]


def bits_of_words(words: list[int], count: int) -> list[bool]:
    """A bit device read in word units: 16 points a word, the head device in bit 0."""
    return [bool((words[i // 16] >> (i % 16)) & 1) for i in range(count)]


def random_values(data: bytes, n_words: int, n_dwords: int) -> tuple[list[int], list[int]]:
    """A random read's answer: the word points' values, then the double words' (low word first)."""
    if len(data) < 2 * n_words + 4 * n_dwords:
        raise McError(f"short MC response: {len(data)} bytes for {n_words} words and {n_dwords} double words")
    words = list(struct.unpack_from(f"<{n_words}H", data))
    dwords = list(struct.unpack_from(f"<{n_dwords}I", data, 2 * n_words))
    return words, dwords


# -- the server side, for the simulator and the tests -----------------------------------------

@dataclass(frozen=True)
class Request:
    route: Route
    timer: int
    command: int
    subcommand: int
    data: bytes

    @property
    def series(self) -> Series:
        return Series.iq_r if self.subcommand in (0x0002, 0x0003) else Series.q

    @property
    def bits(self) -> bool:
        return self.subcommand in (0x0001, 0x0003)

    def devices(self, offset: int, n: int) -> list[Device]:
        """``n`` device addresses starting at ``offset`` in the data."""
        size, out = _device_bytes(self.series), []
        for i in range(n):
            raw = self.data[offset + i * size: offset + (i + 1) * size]
            if len(raw) < size:
                raise McError("request data ends inside a device address")
            if self.series is Series.iq_r:
                number, code = struct.unpack("<IH", raw)
            else:
                number, code = int.from_bytes(raw[:3], "little"), raw[3]
            kind = _BY_CODE.get(code)
            if kind is None:
                raise EndCodeError(0xC05B)
            out.append(Device(kind, number))
        return out


def parse_request(frame: bytes) -> Request:
    if frame_length(frame) != len(frame) or frame[:2] != REQUEST_SUBHEADER or len(frame) < HEADER_BYTES + 6:
        raise McError(f"not a whole 3E request: {frame[:16].hex(' ')}")
    network, pc, module_io, station = struct.unpack_from("<BBHB", frame, 2)
    timer, command, subcommand = struct.unpack_from("<HHH", frame, HEADER_BYTES)
    return Request(Route(network, pc, module_io, station), timer, command, subcommand, frame[HEADER_BYTES + 6:])


def response(route: Route, data: bytes = b"", end_code: int = 0, command: int = 0, subcommand: int = 0) -> bytes:
    """A good response with ``data``, or (non-zero ``end_code``) an error response with its error information."""
    if end_code:
        data = route.encode() + struct.pack("<HH", command, subcommand)
    body = struct.pack("<H", end_code) + data
    return RESPONSE_SUBHEADER + route.encode() + struct.pack("<H", len(body)) + body


def pack_words(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}H", *(v & 0xFFFF for v in values))


def pack_bits(values: list[bool]) -> bytes:
    out = bytearray((len(values) + 1) // 2)
    for i, v in enumerate(values):
        if v:
            out[i // 2] |= 0x10 if i % 2 == 0 else 0x01
    return bytes(out)
