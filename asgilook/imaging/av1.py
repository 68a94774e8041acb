"""The picture size AV1 coded data declares: its sequence headers, read, not decoded.

An AV1 decoder sizes its frames from the sequence header OBU (AV1 5.5.1:
max_frame_width_minus_1 and max_frame_height_minus_1), whatever the
container around it says. Coded data is a run of OBUs (5.3), each a header,
then, if it has a size field, a leb128 length (4.10.5); without one, the OBU
runs to the end of the data. An OBU, a length or a sequence header that
passes the end of the data is a file cut short.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import BrokenFileError

_SEQUENCE_HEADER = 1
# A leb128 takes at most 8 bytes (AV1 4.10.5).
_LEB128_BYTES = 8
# The OBUs walked in one file. A picture takes a few (a sequence header,
# metadata, a frame), a grid a few for each tile; thousands of tiny OBUs
# are a file built to make the walk slow.
MAX_UNITS = 1 << 14
# The most a sequence header takes up to its sizes (some 3100 bits, with
# 32 operating points): what is read of it, however long the OBU.
_HEADER_BYTES = 512


class Units:
    """Walk the OBUs of one file's coded data, MAX_UNITS of them at most."""

    def __init__(self) -> None:
        self._left = MAX_UNITS

    def sizes(self, data: memoryview) -> Iterator[tuple[int, int]]:
        """Yield the size each sequence header in data declares."""
        position = 0
        while position < len(data):
            self._left -= 1
            if self._left < 0:
                raise BrokenFileError('the AV1 data holds more OBUs than any picture')
            kind, payload, end = _unit(data, position)
            if kind == _SEQUENCE_HEADER:
                yield _sequence_size(data[payload:end])
            position = end


def _unit(data: memoryview, position: int) -> tuple[int, int, int]:
    """Return the type of the OBU at position, where its payload begins and ends."""
    header = data[position]
    kind = header >> 3 & 0xF
    payload = position + 1 + (header >> 2 & 1)  # and its extension byte
    if header >> 1 & 1:
        size, payload = _leb128(data, payload)
        end = payload + size
    else:
        end = len(data)
    if end > len(data):
        raise BrokenFileError('the AV1 data ends inside an OBU')
    return kind, payload, end


def _leb128(data: memoryview, position: int) -> tuple[int, int]:
    """Return the leb128 at position and where it ends."""
    value = 0
    for index in range(_LEB128_BYTES):
        if position + index >= len(data):
            raise BrokenFileError('the AV1 data ends inside an OBU size')
        byte = data[position + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, position + index + 1
    raise BrokenFileError('an OBU size longer than AV1 allows')


class _Bits:
    """Read a sequence header's fields, most significant bit first."""

    def __init__(self, data: memoryview) -> None:
        self._value = int.from_bytes(data)
        self._left = 8 * len(data)

    def read(self, count: int) -> int:
        if count > self._left:
            raise BrokenFileError('the AV1 data ends inside a sequence header')
        self._left -= count
        return self._value >> self._left & ((1 << count) - 1)

    def uvlc(self) -> None:
        """Pass a variable-length number, as dav1d reads it (32 zeros end it)."""
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros == 32:
                return
        self.read(zeros)


def _sequence_size(payload: memoryview) -> tuple[int, int]:
    """Return max_frame_width_minus_1 + 1 and max_frame_height_minus_1 + 1."""
    bits = _Bits(payload[:_HEADER_BYTES])
    bits.read(4)  # seq_profile, still_picture
    if bits.read(1):  # reduced_still_picture_header
        bits.read(5)  # seq_level_idx
    else:
        _operating_points(bits)
    width_bits, height_bits = bits.read(4) + 1, bits.read(4) + 1
    return bits.read(width_bits) + 1, bits.read(height_bits) + 1


def _operating_points(bits: _Bits) -> None:
    """Pass the timing and decoder model of a full sequence header, and its
    operating points."""
    delay_bits = 0  # buffer_delay_length_minus_1 + 1, with a decoder model
    if bits.read(1):  # timing_info_present_flag
        bits.read(64)  # num_units_in_display_tick, time_scale
        if bits.read(1):  # equal_picture_interval
            bits.uvlc()
        if bits.read(1):  # decoder_model_info_present_flag
            delay_bits = bits.read(5) + 1
            bits.read(32 + 5 + 5)
    display_delays = bits.read(1)
    for _ in range(bits.read(5) + 1):
        bits.read(12)  # operating_point_idc
        if bits.read(5) > 7:  # seq_level_idx
            bits.read(1)  # seq_tier
        if delay_bits and bits.read(1):  # decoder_model_present_for_this_op
            bits.read(2 * delay_bits + 1)
        if display_delays and bits.read(1):
            bits.read(4)  # initial_display_delay_minus_1
