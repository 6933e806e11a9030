"""LS ELECTRIC XGT dedicated protocol over FEnet (TCP): requests and responses as bytes, no I/O.

No maintained Python library speaks it, so this codec is ours, written from the protocol
manual (LSIS XGL-EFMT/EFMF FEnet, "dedicated communication") and kept pure so that the
gateway's driver, the simulator's server and the tests share it.

Facts it relies on:

- Every frame starts with a 20-byte application header: company ID ``LSIS-XGT`` padded
  with zeros to 10 bytes (older GLOFA modules say ``LGIS-GLOFA``), PLC info (2), CPU info
  (1), source of frame (0x33 request from a client, 0x11 response from the PLC), invoke ID
  (2, little-endian, echoed in the response), length of what follows the header (2, LE),
  FEnet position (1: slot and base) and BCC (1: the sum of the 19 header bytes before it,
  modulo 256).
- The instruction follows: command (0x0054 read request, 0x0055 its response; 0x0058
  write, 0x0059), data type (0x0000 bit, 0x0001 byte, 0x0002 word, 0x0003 double word,
  0x0004 long word, 0x0014 continuous block), reserved (0x0000) and, in a request, the
  number of blocks, each a variable name's length (2) and the name in ASCII (``%MW100``).
  A continuous read names one byte-typed variable (``%MB200``) and the number of bytes.
- A response carries the same command + 1, the data type, reserved, then an error status
  (2): 0 is an ACK followed by the number of blocks and, per block, its data size (2) and
  the data; anything else is a NAK followed by an error code (2 bytes in most manuals, 1 in
  some: both are accepted). Values are little-endian.
- An individual read names up to 16 variables of one data type (bit, byte, word, double word or
  long word; a bit variable such as ``%MX10`` is answered with one byte, 0 or 1); its answer
  holds one block per variable, in the order asked.
- Limits: at most 16 blocks in an individual read; at most 1400 bytes of data per request.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

COMPANY_ID = b"LSIS-XGT"
OLD_COMPANY_ID = b"LGIS-GLOFA"
HEADER_BYTES = 20
SOURCE_CLIENT = 0x33
SOURCE_PLC = 0x11

READ_REQUEST, READ_RESPONSE = 0x0054, 0x0055
WRITE_REQUEST, WRITE_RESPONSE = 0x0058, 0x0059

BIT, BYTE, WORD, DWORD, LWORD, CONTINUOUS = 0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0014
_SIZE_LETTER = {BIT: "X", BYTE: "B", WORD: "W", DWORD: "D", LWORD: "L"}
_LETTER_TYPE = {v: k for k, v in _SIZE_LETTER.items()}
#: bytes of data a variable of each size letter answers with (a bit: one byte, 0 or 1)
SIZE_BYTES = {"X": 1, "B": 1, "W": 2, "D": 4, "L": 8}

MAX_BLOCKS = 16
MAX_BYTES = 1400

#: NAK error codes that mean "this span is refused" (split the read, as Modbus exception 2)
ADDRESS_NAK_CODES = frozenset({0x0003, 0x0004, 0x0005, 0x0006})
#: the error codes of a NAK, as the FEnet manuals list them ("Communication error code", 10.4)
NAK_TEXT = {
    0x0001: "more than 16 blocks in one individual read or write",
    0x0002: "a data type other than X, B, W, D or L in the request",
    0x0003: "device memory this PLC does not have",
    0x0004: "address past the end of the device area",
    0x0005: "more than 1400 bytes in one block",
    0x0006: "more than 1400 bytes in all the request's blocks",
    0x0075: "company ID at the start of the header wrong (try LGIS-GLOFA for an old GLOFA module)",
    0x0076: "header length wrong",
    0x0077: "header checksum (BCC) wrong",
    0x0078: "instruction (command) not supported",
}

#: Device areas: XGK (P, M, K, F, T, C, L, N, D, R, U, Z) and XGI/XGB IEC (I, Q, M, R, W, A, F)
AREAS = frozenset("PMKFTCLNDRUZIQWA")
_VARIABLE = re.compile(r"^%([A-Z])([XBWDL])(\d+)(?:\.([0-9A-F]))?$")


class XgtError(ValueError):
    """A frame that is not the XGT dedicated protocol, or a variable we cannot address."""


class NakError(Exception):
    """The PLC answered with a NAK."""

    def __init__(self, status: int, code: int | None) -> None:
        text = NAK_TEXT.get(code or 0, "see the FEnet manual's error code list")
        shown = f"0x{code:04X}" if code is not None else "unknown"
        super().__init__(f"XGT NAK (status 0x{status:04X}, code {shown}): {text}")
        self.status, self.code = status, code

    @property
    def refused_address(self) -> bool:
        return self.code in ADDRESS_NAK_CODES


@dataclass(frozen=True)
class Variable:
    """A direct variable such as ``%MW100`` (word 100 of M), ``%DB20`` (byte 20 of D),
    ``%MX35`` (bit 35 of M, IEC numbering) or ``%MW10.A`` (bit 10 of word 10)."""

    area: str
    size: str  # X, B, W, D, L
    index: int
    bit: int | None = None  # with the ``.hex`` form: the bit of a word

    @classmethod
    def parse(cls, text: str) -> Variable:
        m = _VARIABLE.match(text.strip().upper())
        if m is None or m.group(1) not in AREAS:
            raise XgtError(f"{text!r} is not an XGT variable: write %, the area ({', '.join(sorted(AREAS))}), "
                           "the size (X bit, B byte, W word, D double word, L long word) and the number, "
                           "e.g. %MW100, %DB20, %MX35 or %MW10.A for bit 10 of word 10")
        area, size, index, bit = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        if bit is not None and size != "W":
            raise XgtError(f"{text!r}: a .bit suffix goes with a word (%MW10.A), not size {size}")
        return cls(area, size, index, int(bit, 16) if bit is not None else None)

    def __str__(self) -> str:
        return f"%{self.area}{self.size}{self.index}" + (f".{self.bit:X}" if self.bit is not None else "")

    @property
    def byte_offset(self) -> int:
        """Where the variable starts in its area, in bytes."""
        if self.size == "X":
            return self.index // 8
        return self.index * {"B": 1, "W": 2, "D": 4, "L": 8}[self.size]


def _header(source: int, invoke_id: int, length: int, company: bytes = COMPANY_ID, plc_info: int = 0,
            cpu_info: int = 0, position: int = 0) -> bytes:
    head = company.ljust(10, b"\x00")[:10] + struct.pack("<HBBHHB", plc_info, cpu_info, source, invoke_id, length,
                                                          position)
    return head + bytes([sum(head) % 256])


def _name(variable: Variable | str) -> bytes:
    raw = str(variable).encode("ascii")
    return struct.pack("<H", len(raw)) + raw


def read_individual(variables: list[Variable], invoke_id: int = 0, company: bytes = COMPANY_ID) -> bytes:
    """Read up to 16 variables of one size (all words, all bits, ...) in one request."""
    if not 1 <= len(variables) <= MAX_BLOCKS:
        raise XgtError(f"an individual read takes 1-{MAX_BLOCKS} variables, not {len(variables)}")
    sizes = {v.size for v in variables}
    if len(sizes) != 1 or any(v.bit is not None for v in variables):
        raise XgtError("an individual read takes variables of one size, without .bit suffixes")
    size = sizes.pop()
    if SIZE_BYTES[size] * len(variables) > MAX_BYTES:  # never with 16 blocks of at most 8 bytes; kept as the rule
        raise XgtError(f"an individual read answers at most {MAX_BYTES} bytes")
    body = struct.pack("<HHHH", READ_REQUEST, _LETTER_TYPE[size], 0, len(variables))
    body += b"".join(_name(v) for v in variables)
    return _header(SOURCE_CLIENT, invoke_id, len(body), company) + body


def read_block(area: str, first_byte: int, count: int, invoke_id: int = 0, company: bytes = COMPANY_ID) -> bytes:
    """Read ``count`` bytes of ``area`` from byte ``first_byte`` (the continuous read)."""
    if area not in AREAS:
        raise XgtError(f"{area!r} is not an XGT device area ({', '.join(sorted(AREAS))})")
    if not 1 <= count <= MAX_BYTES:
        raise XgtError(f"a block read takes 1-{MAX_BYTES} bytes, not {count}")
    body = struct.pack("<HHHH", READ_REQUEST, CONTINUOUS, 0, 1) + _name(f"%{area}B{first_byte}")
    body += struct.pack("<H", count)
    return _header(SOURCE_CLIENT, invoke_id, len(body), company) + body


def frame_length(head: bytes) -> int:
    """The whole frame's length from its header."""
    if len(head) < HEADER_BYTES:
        raise XgtError(f"need {HEADER_BYTES} bytes to frame an XGT message, got {len(head)}")
    if not (head.startswith(COMPANY_ID) or head.startswith(OLD_COMPANY_ID)):
        raise XgtError(f"not an XGT frame: company ID {head[:10]!r} (expected LSIS-XGT; is this the FEnet "
                       "module's dedicated-protocol port, 2004 by default?)")
    length: int = struct.unpack_from("<H", head, 16)[0]
    return HEADER_BYTES + length


def invoke_id_of(frame: bytes) -> int:
    value: int = struct.unpack_from("<H", frame, 14)[0]
    return value


@dataclass(frozen=True)
class Response:
    invoke_id: int
    data_type: int
    blocks: list[bytes]


def parse_response(frame: bytes) -> Response:
    """A read response's data blocks; a NAK raises ``NakError``. The BCC is not checked: the
    modules and clients in the field disagree on it, and TCP already guards the bytes."""
    if frame_length(frame) != len(frame):
        raise XgtError(f"XGT response of {len(frame)} bytes, its header says {frame_length(frame)}")
    if frame[13] != SOURCE_PLC:
        raise XgtError(f"not a response from the PLC: source of frame 0x{frame[13]:02X} (expected 0x11)")
    body = frame[HEADER_BYTES:]
    if len(body) < 8:
        raise XgtError("XGT response too short for its instruction")
    command, data_type, _, status = struct.unpack_from("<HHHH", body)
    if command != READ_RESPONSE:
        raise XgtError(f"XGT response to command 0x{command:04X}, not to a read")
    if status:
        rest = body[8:]
        code = struct.unpack_from("<H", rest)[0] if len(rest) >= 2 else (rest[0] if rest else None)
        raise NakError(status, code)
    (count,) = struct.unpack_from("<H", body, 8)
    blocks, at = [], 10
    for _ in range(count):
        if at + 2 > len(body):
            raise XgtError("XGT response ends inside a block")
        (size,) = struct.unpack_from("<H", body, at)
        if at + 2 + size > len(body):
            raise XgtError("XGT response ends inside a block's data")
        blocks.append(body[at + 2:at + 2 + size])
        at += 2 + size
    return Response(invoke_id_of(frame), data_type, blocks)


def request_kind(data_type: int) -> str:
    """What a read request is, for counting: ``block`` (continuous) or ``individual``."""
    return "block" if data_type == CONTINUOUS else "individual"


def words_of(data: bytes) -> list[int]:
    """Little-endian 16-bit words (a block read of 2n bytes from an even byte)."""
    if len(data) % 2:
        raise XgtError(f"{len(data)} bytes are not whole words")
    return list(struct.unpack(f"<{len(data) // 2}H", data))


# -- the server side, for the simulator and the tests -----------------------------------------

@dataclass(frozen=True)
class ReadRequest:
    invoke_id: int
    data_type: int
    names: list[str]
    count: int | None  # bytes, for a continuous read


def parse_request(frame: bytes) -> ReadRequest:
    if frame_length(frame) != len(frame) or frame[13] != SOURCE_CLIENT:
        raise XgtError(f"not a whole XGT request: {frame[:24].hex(' ')}")
    body = frame[HEADER_BYTES:]
    command, data_type, _, blocks = struct.unpack_from("<HHHH", body)
    if command != READ_REQUEST:
        raise NakError(0xFFFF, 0x0078)
    names, at = [], 8
    for _ in range(blocks):
        (n,) = struct.unpack_from("<H", body, at)
        names.append(body[at + 2:at + 2 + n].decode("ascii", errors="replace"))
        at += 2 + n
    count = struct.unpack_from("<H", body, at)[0] if data_type == CONTINUOUS else None
    return ReadRequest(invoke_id_of(frame), data_type, names, count)


def response(invoke_id: int, data_type: int, blocks: list[bytes], company: bytes = COMPANY_ID) -> bytes:
    body = struct.pack("<HHHHH", READ_RESPONSE, data_type, 0, 0, len(blocks))
    body += b"".join(struct.pack("<H", len(b)) + b for b in blocks)
    return _header(SOURCE_PLC, invoke_id, len(body), company) + body


def nak(invoke_id: int, data_type: int, code: int, company: bytes = COMPANY_ID) -> bytes:
    body = struct.pack("<HHHHH", READ_RESPONSE, data_type, 0, 0xFFFF, code)
    return _header(SOURCE_PLC, invoke_id, len(body), company) + body
