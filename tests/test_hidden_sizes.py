"""Hidden sizes: pictures larger than their first header says, sides no JPEG
holds, and JPEGs that claim more than their bytes hold; all refused before a
pixel is decoded."""

import functools
import pathlib
import struct
import subprocess
import sys
import zlib

import PIL.Image
import pytest

from .images import (
    decode,
    encode,
    gradient,
    icon,
    png,
    solid,
)
from .refusals import assert_refused, upload

ROOT = pathlib.Path(__file__).parents[1]


# Hidden sizes: the header a reader looks at first says 16x16; the picture
# that would be decoded is far larger.


@functools.cache
def _bilevel_png(width: int, height: int) -> bytes:
    """A 1-bit PNG of zeros: a byte a pixel once decoded, ~1/8000 compressed."""
    row = bytes(1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b''.join(compressor.compress(row) for _ in range(height))
    idat += compressor.flush()
    ihdr = struct.pack('>2I5B', width, height, 1, 0, 0, 0, 0)
    return png([(b'IHDR', ihdr), (b'IDAT', idat), (b'IEND', b'')])


def _dib(width: int, height: int) -> bytes:
    """A 32-bit DIB header: its height counts the colours and the mask."""
    return struct.pack('<I2i2H6I', 40, width, 2 * height, 1, 32, 0, 0, 0, 0, 0, 0)


def _gif(width: int, height: int, at=(0, 0)) -> bytes:
    """A GIF of a 16x16 screen whose first frame is width x height at `at`."""
    screen = b'GIF89a' + struct.pack('<2H3B', 16, 16, 0, 0, 0)
    frame = b',' + struct.pack('<4HB', *at, width, height, 0x80) + bytes(6)
    return screen + frame + b'\x02\x02\x44\x01\x00;'


def _apng(width: int, height: int) -> bytes:
    """An APNG of a 16x16 canvas whose first frame says width x height."""
    ihdr = struct.pack('>2I5B', 16, 16, 8, 0, 0, 0, 0)
    fctl = struct.pack('>5I2H2B', 0, width, height, 0, 0, 1, 10, 0, 0)
    idat = zlib.compress(bytes(17 * 16))
    chunks = [(b'IHDR', ihdr), (b'acTL', struct.pack('>2I', 1, 0)), (b'fcTL', fctl)]
    return png([*chunks, (b'IDAT', idat), (b'IEND', b'')])


@functools.cache
def _tiled_tiff(
    tile, tile_type: int = 4, size=(16, 16), next_page: int = 0, bits_at: int = 0
) -> bytes:
    """A deflated RGB TIFF of one tile of zeros, with a tile of that size.

    libtiff decodes a tile whole, whatever the size of the image.
    """
    width, height = size
    compressor = zlib.compressobj(9)
    row = bytes(3 * tile[0])
    data = b''.join(compressor.compress(row) for _ in range(tile[1]))
    data += compressor.flush()
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, bits_at or 8 + 2 + 11 * 12 + 4),  # bits per sample: after the IFD
        (259, 3, 1, 8),  # deflate
        (262, 3, 1, 2),  # RGB
        (277, 3, 1, 3),
        (284, 3, 1, 1),
        (322, tile_type, 1, tile[0]),
        (323, 4, 1, tile[1]),
        (324, 4, 1, 8 + 2 + 11 * 12 + 4 + 6),
        (325, 4, 1, len(data)),
    ]
    ifd = struct.pack('<H', len(entries)) + b''.join(
        struct.pack('<HHII', *entry) for entry in entries
    )
    after = struct.pack('<I', next_page)
    return b'II*\x00' + struct.pack('<I', 8) + ifd + after + b'\x08\x00' * 3 + data


HIDDEN = {
    'ICO of a 20000x20000 PNG': lambda: icon(_bilevel_png(20000, 20000)),
    'ICO of a 20000x20000 bitmap': lambda: icon(_dib(20000, 20000)),
    'GIF of a 20000x20000 frame': lambda: _gif(20000, 20000),
    'GIF of a frame at 30000,30000': lambda: _gif(1, 1, at=(30000, 30000)),
    'APNG of a 20000x20000 frame': lambda: _apng(20000, 20000),
    'TIFF of 8192x8192 tiles': lambda: _tiled_tiff((8192, 8192)),
}


@pytest.mark.parametrize('kind', sorted(HIDDEN))
def test_a_hidden_size_is_refused_before_decoding(client, storage_path, kind):
    resp = assert_refused(client, storage_path, HIDDEN[kind](), 413, 'Image too large')

    assert '50000000 pixels' in resp.json['description']


def test_a_tiff_tile_larger_than_its_image_is_422(client, storage_path):
    assert_refused(
        client, storage_path, _tiled_tiff((4096, 4096)), 422, 'Damaged image'
    )


def test_a_tiff_tile_of_no_size_is_422(client, storage_path):
    # A tile width written as text.
    data = _tiled_tiff((0x41, 16), tile_type=2)

    assert_refused(client, storage_path, data, 422, 'Damaged image')


def test_a_tiff_whose_values_lie_beyond_its_end_is_422(client, storage_path):
    data = _tiled_tiff((16, 16), bits_at=10**6)

    assert_refused(client, storage_path, data, 422, 'Damaged image')


def test_a_tiff_whose_pages_loop_is_stored_as_its_first(client):
    # Its one page says the next page is itself.
    resp = upload(client, _tiled_tiff((16, 16), next_page=8))

    assert resp.status_code == 201
    assert resp.json['size'] == [16, 16]


def test_the_walk_of_a_tiffs_pages_is_bounded(client):
    # After its first page, 100 000 empty ones, then one that is cut.
    data = bytearray(_tiled_tiff((16, 16), next_page=1000))
    data += bytes(1000 - len(data))
    pages = 100_000
    for page in range(1, pages + 1):
        data += struct.pack('<HI', 0, 1000 + 6 * page)
    data += struct.pack('<H', 5)

    resp = upload(client, bytes(data))

    assert resp.status_code == 201
    assert resp.json['size'] == [16, 16]


def test_a_tiff_tile_that_rounds_the_image_up_is_stored(client):
    resp = upload(client, _tiled_tiff((16, 32), size=(10, 20)))

    assert resp.status_code == 201
    assert resp.json['size'] == [10, 20]


# Peak memory of one upload, in a process of its own, after a small one.
_MEASURE = """
import resource, sys, tempfile
import falcon.testing
from asgilook.app import create_served_app
from asgilook.storage.files import TEMPORARY_PREFIX
from tests.fakes import make_config

control, body = (open(path, 'rb').read() for path in sys.argv[1:3])
with tempfile.TemporaryDirectory() as storage:
    config = make_config(storage)
    config.render_processes = 0
    client = falcon.testing.TestClient(create_served_app(config))
    assert client.simulate_post('/images', body=control).status_code == 201
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    status = client.simulate_post('/images', body=body).status_code
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(status, (after - before) / 1024)
"""


def _grown_by(tmp_path, body: bytes) -> tuple[int, float]:
    """Upload body after a small PNG; its status and the MiB peak RSS grew by."""
    control = tmp_path / 'control.png'
    control.write_bytes(encode(gradient(), 'PNG'))
    bomb = tmp_path / 'bomb'
    bomb.write_bytes(body)
    measured = subprocess.run(
        [sys.executable, '-c', _MEASURE, str(control), str(bomb)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    status, grown = measured.stdout.split()
    return int(status), float(grown)


@pytest.mark.parametrize(
    'body',
    [
        # 48 KiB that decode to 400 MB (+330 MB of RSS before the check).
        lambda: icon(_bilevel_png(20000, 20000)),
        # 190 KiB whose one tile decodes to 200 MB.
        lambda: _tiled_tiff((8192, 8192)),
    ],
    ids=['ICO', 'TIFF'],
)
def test_a_hidden_size_bomb_takes_no_memory(tmp_path, body):
    status, grown = _grown_by(tmp_path, body())

    assert status == 413
    assert grown < 100, f'{grown:.1f} MiB'


# Sides longer than libjpeg writes: it fails with "broken data stream".

LONG = {
    'PNG 70000x1': lambda: encode(solid('L', 0, (70000, 1)), 'PNG'),
    'PNG 1x70000': lambda: encode(solid('L', 0, (1, 70000)), 'PNG'),
    'PNG 65536x2': lambda: encode(solid('L', 0, (65536, 2)), 'PNG'),
    'PNG 65501x1': lambda: encode(solid('L', 0, (65501, 1)), 'PNG'),
    'GIF 65535x1': lambda: encode(solid('L', 0, (65535, 1)), 'GIF'),
    'TIFF 1x70000': lambda: encode(solid('L', 0, (1, 70000)), 'TIFF'),
    'BMP 70000x1': lambda: encode(solid('L', 0, (70000, 1)), 'BMP'),
}


@pytest.mark.parametrize('kind', sorted(LONG))
def test_a_side_longer_than_a_jpeg_holds_is_413(client, storage_path, kind):
    resp = assert_refused(client, storage_path, LONG[kind](), 413, 'Image too large')

    assert 'longest side a JPEG can hold is 65500 pixels' in resp.json['description']


@pytest.mark.parametrize('size', [(65500, 1), (1, 65500)])
def test_the_longest_side_a_jpeg_holds_is_stored(client, size):
    resp = upload(client, encode(solid('L', 0, size), 'PNG'))

    assert resp.status_code == 201
    assert decode(client.simulate_get(resp.json['image']).content).size == size


def _claiming(data: bytes, size: tuple[int, int]) -> bytes:
    """A JPEG whose frame header says size, whatever its scan holds."""
    data = bytearray(data)
    frame = data.index(b'\xff\xc0')
    data[frame + 5 : frame + 9] = struct.pack('>HH', size[1], size[0])
    return bytes(data)


@pytest.mark.parametrize('size', [(7000, 7000), (1000, 1000)])
def test_a_jpeg_that_claims_more_than_its_bytes_hold_is_422(client, storage_path, size):
    # 16x16 of scan data: the decoder would make up the rest, grey.
    small = encode(gradient((16, 16)), 'JPEG')

    resp = assert_refused(
        client, storage_path, _claiming(small, size), 422, 'Damaged image'
    )

    assert 'truncated or corrupt' in resp.json['description']


@pytest.mark.parametrize('mode', ['RGB', 'L'])
def test_the_smallest_honest_jpeg_of_a_size_is_stored(client, mode):
    # One colour, the lowest quality: the fewest bytes a JPEG of 4000x4000
    # can take, still six times what the check asks of it.
    body = encode(PIL.Image.new(mode, (4000, 4000)), 'JPEG', quality=1)

    resp = upload(client, body)

    assert resp.status_code == 201
    assert resp.json['size'] == [4000, 4000]
