"""The LS XGT FEnet dedicated-protocol codec, checked against the manual's frame layout."""

import struct

import pytest
from hypothesis import given, strategies as st

from plcprotocol import xgt
from registermap import XgtTag, decode


def test_a_block_read_has_the_application_header_and_the_continuous_instruction():
    frame = xgt.read_block("M", 200, 20, invoke_id=7)
    head = frame[:20]
    assert head[:10] == b"LSIS-XGT\x00\x00"
    assert head[13] == 0x33  # source of frame: a client
    assert struct.unpack_from("<H", head, 14)[0] == 7  # invoke id
    assert struct.unpack_from("<H", head, 16)[0] == len(frame) - 20  # length of what follows
    assert head[19] == sum(head[:19]) % 256  # BCC
    body = frame[20:]
    # read 0x0054, continuous 0x0014, reserved, 1 block, name "%MB200" (6), 20 bytes
    assert body == bytes.fromhex("5400 1400 0000 0100 0600".replace(" ", "")) + b"%MB200" + b"\x14\x00"


def test_individual_reads_name_each_variable_and_are_limited_to_16():
    frame = xgt.read_individual([xgt.Variable.parse("%MW100"), xgt.Variable.parse("%DW4")])
    req = xgt.parse_request(frame)
    assert (req.data_type, req.names) == (xgt.WORD, ["%MW100", "%DW4"])
    with pytest.raises(xgt.XgtError, match="1-16 variables"):
        xgt.read_individual([xgt.Variable.parse(f"%MW{i}") for i in range(17)])
    with pytest.raises(xgt.XgtError, match="one size"):
        xgt.read_individual([xgt.Variable.parse("%MW1"), xgt.Variable.parse("%MD1")])


@pytest.mark.parametrize("text,area,size,index,bit,byte", [
    ("%MW100", "M", "W", 100, None, 200), ("%DD20", "D", "D", 20, None, 80), ("%MX35", "M", "X", 35, None, 4),
    ("%mw10.a", "M", "W", 10, 10, 20), ("%PB3", "P", "B", 3, None, 3), ("%ML2", "M", "L", 2, None, 16),
])
def test_variables_parse_as_xg5000_writes_them(text, area, size, index, bit, byte):
    v = xgt.Variable.parse(text)
    assert (v.area, v.size, v.index, v.bit, v.byte_offset) == (area, size, index, bit, byte)
    assert xgt.Variable.parse(str(v)) == v


@pytest.mark.parametrize("text", ["MW100", "%YW1", "%MQ1", "%MD1.A", "%MW"])
def test_a_bad_variable_says_how_to_write_one(text):
    with pytest.raises(xgt.XgtError, match="XGT variable|bit suffix"):
        xgt.Variable.parse(text)


def test_an_ack_gives_its_blocks_and_a_nak_its_error_code():
    ok = xgt.response(7, xgt.CONTINUOUS, [b"\x01\x00\x02\x00"])
    parsed = xgt.parse_response(ok)
    assert parsed.invoke_id == 7 and xgt.words_of(parsed.blocks[0]) == [1, 2]
    with pytest.raises(xgt.NakError, match=r"code 0x0004\): address past the end") as err:
        xgt.parse_response(xgt.nak(7, xgt.CONTINUOUS, 0x0004))
    assert err.value.refused_address
    with pytest.raises(xgt.NakError, match=r"code 0x0078\): instruction \(command\) not supported") as other:
        xgt.parse_response(xgt.nak(7, xgt.CONTINUOUS, 0x0078))
    assert not other.value.refused_address
    with pytest.raises(xgt.NakError, match=r"code 0x0077\): header checksum \(BCC\) wrong"):
        xgt.parse_response(xgt.nak(7, xgt.CONTINUOUS, 0x0077))


def test_a_nak_with_a_one_byte_error_code_is_accepted_too():
    frame = bytearray(xgt.nak(1, xgt.CONTINUOUS, 0x0004))
    frame = bytes(frame[:-1])  # some modules send the code as one byte
    frame = frame[:16] + struct.pack("<H", len(frame) - 20) + frame[18:]
    with pytest.raises(xgt.NakError) as err:
        xgt.parse_response(frame)
    assert err.value.code == 0x04


def test_a_frame_from_another_protocol_says_which_port_to_use():
    with pytest.raises(xgt.XgtError, match="dedicated-protocol port, 2004"):
        xgt.frame_length(b"\x00\x01\x00\x00\x00\x06" + bytes(14))  # a Modbus TCP header


def test_a_request_past_1400_bytes_is_refused_before_it_is_sent():
    with pytest.raises(xgt.XgtError, match="1-1400 bytes"):
        xgt.read_block("D", 0, 1401)


def test_tags_locate_their_words_and_decode_little_endian_values():
    count = XgtTag(name="count", variable="%DD10")  # 32-bit at bytes 40-43: words 20 (low) and 21 (high)
    assert (count.table, count.address, count.width, count.type.value) == ("D", 20, 2, "uint32")
    assert decode(count, [70_000 & 0xFFFF, 70_000 >> 16]) == 70_000
    force = XgtTag(name="force", variable="%MD0", type="float32")
    low, high = struct.unpack("<HH", struct.pack("<f", 812.5))
    assert decode(force, [low, high]) == 812.5
    running = XgtTag(name="running", variable="%MX35")
    assert (running.address, running.bit_in_word, running.type.value) == (2, 3, "bool")
    assert decode(running, [1 << 3]) is True
    alarm = XgtTag(name="alarm", variable="%MW10.A")
    assert (alarm.address, alarm.bit_in_word) == (10, 10)


def test_a_type_that_does_not_fit_the_variables_size_is_refused():
    with pytest.raises(ValueError, match="D variable: type must be one of float32, int32, uint32"):
        XgtTag(name="x", variable="%MD1", type="int16")
    with pytest.raises(ValueError, match="is a bit"):
        XgtTag(name="x", variable="%MX1", type="uint16")


@given(st.sampled_from(sorted(xgt.AREAS)), st.integers(0, 60_000), st.integers(1, 1400), st.integers(0, 0xFFFF))
def test_the_server_side_reads_back_what_the_client_wrote(area, first, count, invoke):
    req = xgt.parse_request(xgt.read_block(area, first, count, invoke))
    assert (req.invoke_id, req.data_type, req.names, req.count) == (invoke, xgt.CONTINUOUS, [f"%{area}B{first}"], count)


def test_an_individual_read_round_trips_through_the_server_with_each_block_in_order():
    from simulators.xgt_server import XgtMemory, answer

    memory = XgtMemory()
    memory.set("%DW100", 0x1234)
    memory.set("%MW7", 0xBEEF)
    memory.set("%DD20", 70_000)
    memory.set("%MX10", 1)
    words = xgt.parse_response(answer(memory, xgt.read_individual(
        [xgt.Variable.parse("%DW100"), xgt.Variable.parse("%MW7"), xgt.Variable.parse("%MW8")], invoke_id=9)))
    assert words.invoke_id == 9 and words.data_type == xgt.WORD
    assert [xgt.words_of(b) for b in words.blocks] == [[0x1234], [0xBEEF], [0]]
    dwords = xgt.parse_response(answer(memory, xgt.read_individual([xgt.Variable.parse("%DD20")])))
    assert dwords.blocks == [(70_000).to_bytes(4, "little")]  # little-endian, low word first
    # a bit variable is answered with one byte, 0 or 1
    bits = xgt.parse_response(answer(memory, xgt.read_individual(
        [xgt.Variable.parse("%MX10"), xgt.Variable.parse("%MX11")])))
    assert bits.data_type == xgt.BIT and bits.blocks == [b"\x01", b"\x00"]


def test_an_individual_read_past_an_area_is_a_nak_that_refuses_the_address():
    from simulators.xgt_server import XgtMemory, answer

    memory = XgtMemory(sizes={"M": 16})
    with pytest.raises(xgt.NakError) as err:
        xgt.parse_response(answer(memory, xgt.read_individual([xgt.Variable.parse("%MW1"), xgt.Variable.parse("%MW8")])))
    assert err.value.code == 0x0004 and err.value.refused_address


def test_the_server_counts_requests_by_kind():
    from simulators.xgt_server import XgtMemory, XgtServer

    server = XgtServer(XgtMemory())
    server.answer(xgt.read_block("M", 0, 4))
    server.answer(xgt.read_individual([xgt.Variable.parse("%MW1")]))
    server.answer(xgt.read_individual([xgt.Variable.parse("%DD1")]))
    assert server.requests == {"block": 1, "individual": 2}
