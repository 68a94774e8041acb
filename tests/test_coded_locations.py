"""AV1 data wherever an AVIF may keep it, and sequence headers of every form:
each one's size is checked before a pixel is decoded (files built by hand)."""

import pytest

from asgilook.imaging import av1

from .boxes import FTYP, avif, full_box, iinf, infe, ispe, obu, sequence_header
from .refusals import assert_refused

# More than the default limit of 50 000 000 pixels.
LARGE = sequence_header((8000, 8000))
# An OBU of padding (type 15) before it.
PADDING = obu(15, bytes(200))


def _unsized(header: bytes, extension: bool = False) -> bytes:
    """The sequence header OBU without its size field: it runs to the end."""
    kept = bytes([0x0C, 0]) if extension else bytes([0x08])
    return kept + header[2:]


LOCATED = {
    'in the file': lambda: avif(LARGE, version=0),
    'in the file, by an iloc of version 2, a base offset and extent indexes': lambda: (
        avif(
            LARGE,
            lambda start, length: [(start - 100, length)],
            version=2,
            base=100,
            sizes=(8, 8, 4, 4),
            entry=infe(version=3),
        )
    ),
    'in the idat box': lambda: avif(LARGE, idat=True, method=1),
    'in an extent that runs to the end of the file': lambda: avif(
        LARGE, lambda start, length: [(start, 0)]
    ),
    'in two extents': lambda: avif(
        LARGE, lambda start, length: [(start, 3), (start + 3, length - 3)]
    ),
    'after other OBUs': lambda: avif(obu(2, b'') + PADDING + LARGE),
    'in an OBU without a size field': lambda: avif(_unsized(LARGE)),
    'in an OBU with an extension': lambda: avif(_unsized(LARGE, extension=True)),
    'in a long OBU': lambda: avif(obu(1, LARGE[2:] + bytes(4000))),
    'in a full sequence header': lambda: avif(
        sequence_header((8000, 8000), reduced=False)
    ),
    'in one with timing, a decoder model and operating points': lambda: avif(
        sequence_header(
            (8000, 8000),
            reduced=False,
            timing=True,
            interval_zeros=5,
            decoder_model=True,
            points=3,
            display_delay=True,
        )
    ),
    'in one of a low level and a uvlc of 32 zeros': lambda: avif(
        sequence_header(
            (8000, 8000), reduced=False, timing=True, interval_zeros=32, level=7
        )
    ),
    'in one with timing of unequal intervals': lambda: avif(
        sequence_header((8000, 8000), reduced=False, timing=True)
    ),
    'in an av1C': lambda: avif(obu(2, b'')) + full_box(b'av1C', 1, LARGE),
}


@pytest.mark.parametrize('kind', sorted(LOCATED))
def test_a_large_sequence_header_is_found_and_refused(
    client, storage_path, pillow_opens, kind
):
    resp = assert_refused(client, storage_path, LOCATED[kind](), 413, 'Image too large')

    assert '8000x8000 pixels' in resp.json['description']
    assert pillow_opens == []


def test_only_the_data_of_av1_items_is_read_as_av1(client, storage_path):
    # An Exif item and one of an entry too old to name a type, whose data
    # would be OBUs of 8000x8000: what decides is Pillow's (it reads no such
    # file), not the walk.
    entries = [infe(kind=b'Exif'), infe(version=1)]
    for entry in entries:
        resp = assert_refused(
            client, storage_path, avif(LARGE, entry=entry), 422, 'Damaged image'
        )
        assert '8000x8000' not in resp.json['description']


def _iloc_of(body: bytes, version: int = 0) -> bytes:
    meta = iinf(infe()) + full_box(b'iloc', version, body) + ispe((40, 30))
    return FTYP + full_box(b'meta', 0, meta)


BROKEN = {
    'an item in an idat box the file lacks': lambda: avif(LARGE, method=1),
    'an item built from other items': lambda: avif(LARGE, method=2),
    'an item in another file': lambda: avif(LARGE, reference=1),
    'an iloc of an unknown version': lambda: _iloc_of(bytes(16), version=3),
    'an iloc too short for its items': lambda: _iloc_of(b'\x44\x00\x00\x01'),
    'an infe too short for its item': lambda: avif(
        LARGE, entry=full_box(b'infe', 2, b'\x00\x01')
    ),
    'an extent past the end of the file': lambda: avif(
        LARGE, lambda start, length: [(start, length + 1)]
    ),
    'an extent to the end that begins past it': lambda: avif(
        LARGE, lambda start, length: [(start + length + 1, 0)]
    ),
    'extents that overlap': lambda: avif(
        LARGE + bytes(1000), lambda start, length: [(start, length)] * 2
    ),
    'more OBUs than any picture': lambda: avif(obu(15, b'') * (av1.MAX_UNITS + 1)),
}


@pytest.mark.parametrize('kind', sorted(BROKEN))
def test_av1_data_that_cannot_be_read_is_422(client, storage_path, pillow_opens, kind):
    assert_refused(client, storage_path, BROKEN[kind](), 422, 'Damaged image')
    assert pillow_opens == []
