"""The MC protocol (SLMP) 3E binary codec, checked byte for byte against the manual's frame layout."""

import pytest
from hypothesis import given, strategies as st

from plcprotocol import mc


def test_batch_read_of_d100_is_the_manuals_frame():
    # subheader, network 0, PC FF, module I/O 03FF, station 0, length 12, timer 16,
    # command 0401, subcommand 0000, device 100 (3 bytes), code A8 (D), 10 points
    frame = mc.batch_read(mc.Device.parse("D100"), 10, bits=False)
    assert frame.hex(" ") == "50 00 00 ff ff 03 00 0c 00 10 00 01 04 00 00 64 00 00 a8 0a 00"


def test_iq_r_addresses_take_four_byte_numbers_two_byte_codes_and_their_subcommands():
    frame = mc.batch_read(mc.Device.parse("M1000"), 3, bits=True, series=mc.Series.iq_r)
    assert frame[11:15] == bytes.fromhex("0104 0300".replace(" ", ""))  # command 0401, subcommand 0003
    assert frame[15:21] == (1000).to_bytes(4, "little") + b"\x90\x00"
    assert mc.frame_length(frame) == len(frame)


@pytest.mark.parametrize("text,kind,number", [("X1F", "X", 0x1F), ("y10", "Y", 16), ("W1A0", "W", 0x1A0),
                                              ("B0", "B", 0), ("D12287", "D", 12287), ("ZR100", "ZR", 100),
                                              ("M20", "M", 20), ("SD0", "SD", 0), ("WC00", "W", 0xC00),
                                              ("XFF", "X", 0xFF), ("BA", "B", 0xA), ("SBF", "SB", 0xF)])
def test_device_names_follow_mitsubishis_hex_and_decimal_numbering(text, kind, number):
    d = mc.Device.parse(text)
    assert (d.kind.name, d.number) == (kind, number)
    assert mc.Device.parse(str(d)) == d


@pytest.mark.parametrize("text", ["Q100", "D1A", "D", "100", "X-1"])
def test_a_bad_device_name_says_what_is_allowed(text):
    with pytest.raises(mc.McError, match="MC device|decimal"):
        mc.Device.parse(text)


def test_requests_past_the_per_request_limits_are_refused_before_sending():
    with pytest.raises(mc.McError, match="limit is 1-960"):
        mc.batch_read(mc.Device.parse("D0"), 961, bits=False)
    with pytest.raises(mc.McError, match="limit is 1-7168"):
        mc.batch_read(mc.Device.parse("M0"), 7169, bits=True)
    with pytest.raises(mc.McError, match="limit is 96"):
        mc.random_read([mc.Device.parse(f"D{i}") for i in range(97)], [], series=mc.Series.iq_r)
    with pytest.raises(mc.McError, match="word device"):
        mc.batch_read(mc.Device.parse("D0"), 1, bits=True)


def test_a_good_response_gives_its_words():
    frame = mc.response(mc.Route(), mc.pack_words([1, 0xFFFF, 300]))
    assert frame[:2] == b"\xd0\x00" and frame[9:11] == b"\x00\x00"
    assert mc.words_of(mc.response_data(frame), 3) == [1, 0xFFFF, 300]


def test_an_end_code_is_raised_with_its_meaning_and_c056_counts_as_a_refused_address():
    frame = mc.response(mc.Route(), end_code=0xC056, command=mc.BATCH_READ, subcommand=0)
    with pytest.raises(mc.EndCodeError, match="0xC056: read past") as err:
        mc.response_data(frame)
    assert err.value.refused_address and err.value.command == mc.BATCH_READ
    with pytest.raises(mc.EndCodeError) as other:
        mc.response_data(mc.response(mc.Route(), end_code=0xC059))
    assert not other.value.refused_address


def test_bit_units_put_the_first_point_in_the_high_nibble():
    assert mc.pack_bits([True, False, False, True, True]) == bytes([0x10, 0x01, 0x10])
    assert mc.bits_of(bytes([0x10, 0x01, 0x10]), 5) == [True, False, False, True, True]


def test_a_bit_device_read_in_words_has_its_head_in_bit_zero():
    assert mc.bits_of_words([0b1000_0000_0000_0101, 0x0001], 17) == (
        [True, False, True] + [False] * 12 + [True] + [True])


def test_random_read_sends_word_points_then_double_words_and_splits_the_answer():
    frame = mc.random_read([mc.Device.parse("D0"), mc.Device.parse("W10")], [mc.Device.parse("D200")])
    req = mc.parse_request(frame)
    assert (req.command, req.subcommand, req.data[:2]) == (mc.RANDOM_READ, 0, bytes([2, 1]))
    assert [str(d) for d in req.devices(2, 3)] == ["D0", "W10", "D200"]
    data = mc.pack_words([7, 8]) + (0x0001_0002).to_bytes(4, "little")
    assert mc.random_values(data, 2, 1) == ([7, 8], [0x0001_0002])


def test_a_frame_that_is_not_3e_binary_says_how_to_fix_the_plc_setting():
    with pytest.raises(mc.McError, match="binary code and 3E"):
        mc.frame_length(b"5000" + bytes(5))  # an ASCII-mode PLC answers in ASCII


def test_a_truncated_or_padded_response_is_an_error_not_garbage():
    frame = mc.response(mc.Route(), mc.pack_words([1, 2]))
    with pytest.raises(mc.McError, match="header says"):
        mc.response_data(frame[:-1])
    with pytest.raises(mc.McError, match="short"):
        mc.words_of(mc.response_data(frame), 3)


@given(st.sampled_from(sorted(mc.DEVICE_KINDS)), st.integers(0, 0xFFFFFF), st.integers(1, 960),
       st.sampled_from(list(mc.Series)))
def test_the_server_side_reads_back_what_the_client_side_wrote(kind, number, points, series):
    head = mc.Device(mc.DEVICE_KINDS[kind], number)
    req = mc.parse_request(mc.batch_read(head, points, bits=False, series=series))
    assert (req.command, req.series, req.bits) == (mc.BATCH_READ, series, False)
    assert req.devices(0, 1) == [head]
    size = 6 if series is mc.Series.iq_r else 4
    assert int.from_bytes(req.data[size:size + 2], "little") == points


@given(st.lists(st.booleans(), min_size=1, max_size=200))
def test_bits_round_trip(values):
    assert mc.bits_of(mc.pack_bits(values), len(values)) == values


def test_the_simulated_plc_answers_unknown_commands_and_oversized_requests_with_the_plcs_end_codes():
    from simulators.mc_server import McMemory, answer

    memory = McMemory()
    unknown = mc.request(0x0619, 0, b"")  # loopback test: not served by our PLC model
    with pytest.raises(mc.EndCodeError, match="0xC059"):
        mc.response_data(answer(memory, unknown))
    too_many = mc.request(mc.BATCH_READ, 0, mc.Device.parse("D0").encode(mc.Series.q) + (961).to_bytes(2, "little"))
    with pytest.raises(mc.EndCodeError, match="0xC052"):
        mc.response_data(answer(memory, too_many))


def test_c059_to_a_random_read_means_the_cpu_lacks_the_command_not_a_bad_address():
    frame = mc.response(mc.Route(), end_code=0xC059, command=mc.RANDOM_READ, subcommand=0)
    with pytest.raises(mc.EndCodeError, match="not supported") as err:
        mc.response_data(frame)
    assert err.value.unsupported and not err.value.refused_address and err.value.command == mc.RANDOM_READ
