"""AVIF uploads whose AV1 data declares a larger picture than their boxes:
the decoder allocates what the sequence header says, so that is checked too."""

import functools
import struct

import PIL.Image
import pytest

from .boxes import box, full_box
from .images import animation, boxes_of, declaring, encode
from .refusals import assert_refused, upload

LIMIT = 1_000_000


@functools.cache
def _avif(size: tuple[int, int]) -> bytes:
    """A still AVIF of one colour, as small as Pillow writes it."""
    image = PIL.Image.new('RGB', size, (10, 200, 30))
    return encode(image, 'AVIF', quality=30, speed=10)


@functools.cache
def _sequence(size: tuple[int, int]) -> bytes:
    return animation('AVIF', size=size)


def _iloc_extent(data: bytes) -> int:
    """Where the extent of the one item Pillow's iloc (version 0) locates is."""
    return boxes_of(data, b'iloc')[0] + 8 + 14


def _coded_header(data: bytes) -> bytes:
    """The sequence header OBU of a still AVIF's coded data.

    Its item's data begins with a temporal delimiter OBU (2 bytes).
    """
    (start,) = struct.unpack_from('>I', data, _iloc_extent(data))
    at = start + 2
    assert data[at] == 0x0A  # an OBU of type 1 with a size field
    return data[at : at + 2 + data[at + 1]]


def _configured(data: bytes, obus: bytes) -> bytes:
    """A still AVIF whose av1C holds obus (Pillow's holds none).

    The boxes around it grow, and the item's data moves on as far.
    """
    patched = bytearray(data)
    at = boxes_of(data, b'av1C')[0]
    assert struct.unpack_from('>I', data, at)[0] == 12
    for kind in (b'meta', b'iprp', b'ipco', b'av1C'):
        where = boxes_of(data, kind)[0]
        struct.pack_into(
            '>I', patched, where, struct.unpack_from('>I', data, where)[0] + len(obus)
        )
    extent = _iloc_extent(data)
    struct.pack_into(
        '>I', patched, extent, struct.unpack_from('>I', data, extent)[0] + len(obus)
    )
    return bytes(patched[: at + 12] + obus + patched[at + 12 :])


def _seen_as(data: bytes, size: tuple[int, int]) -> bytes:
    """A still AVIF whose ispe says size."""
    return declaring(data, b'ispe', size)


def _first_sample_only(data: bytes) -> bytes:
    """An AVIF sequence of 100x100 boxes whose item is its second frame.

    Only the track's first sample then holds the sequence header.
    """
    data = declaring(data, b'ispe', (100, 100))
    data = declaring(data, b'tkhd', (100 << 16, 100 << 16), at=8 + 88)
    data = declaring(data, b'av01', (100, 100), nth=-1, at=8 + 24, layout='>2H')
    stco, stsz = boxes_of(data, b'stco')[0], boxes_of(data, b'stsz')[0]
    (chunk,) = struct.unpack_from('>I', data, stco + 16)
    first, second = struct.unpack_from('>2I', data, stsz + 20)
    return declaring(data, b'iloc', (chunk + first, second), at=8 + 14)


BOMBS = {
    # A 2000x2000 picture whose ispe says 100x100 (of a 900-byte file).
    'AVIF whose av1C and item say more than its ispe': lambda: _configured(
        _seen_as(_avif((2000, 2000)), (100, 100)), _coded_header(_avif((2000, 2000)))
    ),
    'AVIF whose item says more than its av1C and ispe': lambda: _configured(
        _seen_as(_avif((2000, 2000)), (40, 30)), _coded_header(_avif((40, 30)))
    ),
    'AVIF sequence whose first sample says more than its boxes': lambda: (
        _first_sample_only(_sequence((1500, 1500)))
    ),
}


@pytest.mark.parametrize('kind', sorted(BOMBS))
def test_a_coded_picture_over_the_limit_is_refused_before_pillow_opens_it(
    client, config, storage_path, pillow_opens, kind
):
    config.max_image_pixels = LIMIT

    resp = assert_refused(client, storage_path, BOMBS[kind](), 413, 'Image too large')

    side = 1500 if 'sequence' in kind else 2000
    assert f'{side}x{side} pixels' in resp.json['description']
    assert pillow_opens == []


def test_an_avif_whose_av1c_holds_its_sequence_header_is_stored(client, pillow_opens):
    small = _avif((40, 30))

    resp = upload(client, _configured(small, _coded_header(small)))

    assert resp.status_code == 201, resp.text
    assert resp.json['size'] == [40, 30]
    assert len(pillow_opens) == 1


def _cut_item(data: bytes, length: int) -> bytes:
    """The still AVIF with its item's extent cut to length bytes."""
    return declaring(data, b'iloc', (length,), at=8 + 18, layout='>I')


def _sample_at(data: bytes, offset: int) -> bytes:
    """The AVIF sequence with its first chunk at offset."""
    return declaring(data, b'stco', (offset,), at=16, layout='>I')


def _header_of_length(data: bytes, length: int) -> bytes:
    """The still AVIF with its item's sequence header OBU saying length."""
    (start,) = struct.unpack_from('>I', data, _iloc_extent(data))
    patched = bytearray(data)
    patched[start + 3] = length
    return bytes(patched)


CUT = {
    # After the temporal delimiter, the header byte, its size, one byte.
    'an item cut inside an OBU': lambda: _cut_item(_avif((40, 30)), 5),
    'an item cut inside an OBU size': lambda: _cut_item(_avif((40, 30)), 3),
    'a sequence header cut short': lambda: _header_of_length(_avif((40, 30)), 2),
    'an OBU size longer than AV1 allows': lambda: _configured(
        _avif((40, 30)), b'\x0a' + b'\x80' * 8 + b'\x00'
    ),
    'an av1C too short for its record': lambda: _avif((40, 30)) + box(b'av1C', b'\x81'),
    'a first sample past the end': lambda: _sample_at(_sequence((40, 30)), 10**6),
}


@pytest.mark.parametrize('kind', sorted(CUT))
def test_av1_data_cut_short_is_422(client, storage_path, pillow_opens, kind):
    assert_refused(client, storage_path, CUT[kind](), 422, 'Damaged image')
    assert pillow_opens == []


def _av01_entry() -> bytes:
    """A sample description of one 40x30 AV1 sample entry."""
    entry = box(b'av01', bytes(24) + struct.pack('>2H', 40, 30) + bytes(50))
    return full_box(b'stsd', 0, struct.pack('>I', 1) + entry)


def _table(chunks: bytes, sizes: bytes) -> bytes:
    return box(b'stbl', _av01_entry() + chunks + sizes)


def _item_again(data: bytes) -> bytes:
    """A sample table whose one sample is the still AVIF's item (co64)."""
    start, length = struct.unpack_from('>2I', data, _iloc_extent(data))
    chunks = full_box(b'co64', 0, struct.pack('>IQ', 1, start))
    return _table(chunks, full_box(b'stsz', 0, struct.pack('>2I', length, 1)))


IGNORED = {
    # Boxes after the file's own: the decoder passes over them, and they
    # locate no AV1 data but what the file's item holds.
    'a sample table of no samples': lambda: _table(
        full_box(b'stco', 0, struct.pack('>I', 0)),
        full_box(b'stsz', 0, struct.pack('>2I', 0, 0)),
    ),
    'a sample table whose one sample is the item': lambda: _item_again(_avif((40, 30))),
    'an empty item info box at the end': lambda: box(b'iinf'),
}


@pytest.mark.parametrize('kind', sorted(IGNORED))
def test_boxes_that_locate_no_other_av1_data_pass(client, kind):
    resp = upload(client, _avif((40, 30)) + IGNORED[kind]())

    assert resp.status_code == 201, resp.text
    assert resp.json['size'] == [40, 30]
