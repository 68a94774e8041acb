"""Hostile images: formats outside the allow-list, hidden sizes, sides no JPEG
holds, damaged files, and stored files that are not what their name says."""

import asyncio
import concurrent.futures
import functools
import io
import pathlib
import random
import struct
import subprocess
import sys
import warnings
import zlib

import falcon.testing
import PIL.Image
import pytest

from asgilook import imaging, renderers
from asgilook.app import create_app
from asgilook.files import TEMPORARY_PREFIX

from .fakes import make_config
from .images import (
    animation,
    decode,
    encode,
    gradient,
    image_files,
    photo,
    png,
    solid,
    store_by_hand,
)

ROOT = pathlib.Path(__file__).parents[1]


def upload(client, body):
    return client.simulate_post('/images', body=body)


def assert_refused(client, storage_path, body, status, title):
    """The upload gets status and title, and leaves nothing behind."""
    resp = upload(client, body)

    assert resp.status_code == status, resp.text
    assert resp.json['title'] == title
    assert resp.json['description']
    assert _images_and_spools(storage_path) == []
    assert client.simulate_get('/images').json == []
    return resp


def _images_and_spools(storage_path) -> list[str]:
    return [
        name
        for name in image_files(storage_path)
        if name.endswith('.jpeg') or name.startswith(TEMPORARY_PREFIX)
    ]


def _noisy(size=(160, 120)) -> PIL.Image.Image:
    """A photo-like picture: a cut lands in its data, not in a flat run."""
    return decode(photo((160, 120))).resize(size)


def _save_all(fmt: str, **params) -> bytes:
    first = _noisy()
    rest = [first.rotate(90), first.rotate(180)]
    output = io.BytesIO()
    first.save(output, fmt, save_all=True, append_images=rest, **params)
    return output.getvalue()


# The formats of the README, each as Pillow reads it: (bytes, format, size).
ALLOWED = {
    'JPEG': lambda: encode(gradient((40, 30)), 'JPEG'),
    'MPO': lambda: _save_all('MPO'),
    'PNG': lambda: encode(gradient((40, 30)), 'PNG'),
    'APNG': lambda: animation('PNG'),
    'GIF': lambda: encode(gradient((40, 30)), 'GIF'),
    'animated GIF': lambda: animation('GIF'),
    'WebP': lambda: encode(gradient((40, 30)), 'WEBP'),
    'animated WebP': lambda: animation('WEBP'),
    'TIFF': lambda: encode(gradient((40, 30)), 'TIFF'),
    'multi-page TIFF': lambda: _save_all('TIFF'),
    'multi-page BigTIFF': lambda: _save_all('TIFF', big_tiff=True),
    'BMP': lambda: encode(gradient((40, 30)), 'BMP'),
    'ICO': lambda: encode(gradient((32, 32)), 'ICO', sizes=[(32, 32)]),
    'ICO of a bitmap': lambda: encode(
        gradient((32, 32)), 'ICO', sizes=[(32, 32)], bitmap_format='bmp'
    ),
}


@pytest.mark.parametrize('kind', sorted(ALLOWED))
def test_every_format_of_the_allow_list_is_stored(client, kind):
    data = ALLOWED[kind]()
    expected = PIL.Image.open(io.BytesIO(data)).size

    resp = upload(client, data)

    assert resp.status_code == 201, resp.text
    assert resp.json['size'] == list(expected)
    stored = decode(client.simulate_get(resp.json['image']).content)
    assert (stored.format, stored.size) == ('JPEG', expected)


def _foreign(fmt: str, mode: str, size=(48, 32)) -> bytes:
    return encode(gradient(size).convert(mode), fmt)


def _psd(size=(48, 32)) -> bytes:
    """A Photoshop file: an RGB picture, no layers, raw data."""
    width, height = size
    header = b'8BPS' + struct.pack('>H6xHIIHH', 1, 3, height, width, 8, 3)
    sections = struct.pack('>3IH', 0, 0, 0, 0)
    return header + sections + bytes(3 * width * height)


def _cur() -> bytes:
    """A Windows cursor: an icon whose header says type 2."""
    icon = encode(gradient((32, 32)), 'ICO', sizes=[(32, 32)], bitmap_format='bmp')
    data = bytearray(icon)
    data[2] = 2
    return bytes(data)


# Formats Pillow reads and asgilook does not: (bytes, the format Pillow sees).
FOREIGN = {
    'PPM': (lambda: _foreign('PPM', 'RGB'), 'PPM'),
    'PBM': (lambda: _foreign('PPM', '1'), 'PPM'),
    'PGM': (lambda: _foreign('PPM', 'L'), 'PPM'),
    'TGA': (lambda: _foreign('TGA', 'RGB'), 'TGA'),
    'PCX': (lambda: _foreign('PCX', 'RGB'), 'PCX'),
    'SGI': (lambda: _foreign('SGI', 'RGB'), 'SGI'),
    'IM': (lambda: _foreign('IM', 'RGB'), 'IM'),
    'QOI': (lambda: _foreign('QOI', 'RGB'), 'QOI'),
    'DDS': (lambda: _foreign('DDS', 'RGBA'), 'DDS'),
    'EPS': (lambda: _foreign('EPS', 'RGB'), 'EPS'),
    'ICNS': (lambda: _foreign('ICNS', 'RGBA', (32, 32)), 'ICNS'),
    'BLP': (lambda: _foreign('BLP', 'P'), 'BLP'),
    'SPIDER': (lambda: _foreign('SPIDER', 'F'), 'SPIDER'),
    'XBM': (lambda: _foreign('XBM', '1'), 'XBM'),
    'MSP': (lambda: _foreign('MSP', '1'), 'MSP'),
    'DIB': (lambda: _foreign('DIB', 'RGB'), 'DIB'),
    'JPEG 2000': (lambda: _foreign('JPEG2000', 'RGB'), 'JPEG2000'),
    'AVIF': (lambda: _foreign('AVIF', 'RGB'), 'AVIF'),
    'PSD': (_psd, 'PSD'),
    'CUR': (_cur, 'CUR'),
}


@pytest.mark.parametrize('kind', sorted(FOREIGN))
def test_a_format_outside_the_allow_list_is_415(client, storage_path, kind):
    make, fmt = FOREIGN[kind]
    with warnings.catch_warnings():
        # Pillow warns that it will stop reading some of these (IM).
        warnings.simplefilter('ignore', DeprecationWarning)
        data = make()
        # Pillow itself reads these bytes: only the allow-list keeps them out.
        assert PIL.Image.open(io.BytesIO(data)).format == fmt

    resp = assert_refused(client, storage_path, data, 415, 'Not an image')

    assert 'JPEG, PNG, GIF, WebP, TIFF, BMP or ICO' in resp.json['description']


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


def _icon(frame: bytes, bpp: int = 32) -> bytes:
    """An ICO whose one entry says 16x16 and holds frame (a PNG or a DIB)."""
    entry = struct.pack('<4B2H2I', 16, 16, 0, 0, 1, bpp, len(frame), 22)
    return struct.pack('<3H', 0, 1, 1) + entry + frame


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
    'ICO of a 20000x20000 PNG': lambda: _icon(_bilevel_png(20000, 20000)),
    'ICO of a 20000x20000 bitmap': lambda: _icon(_dib(20000, 20000)),
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
from asgilook.app import create_app
from asgilook.files import TEMPORARY_PREFIX
from tests.fakes import make_config

control, body = (open(path, 'rb').read() for path in sys.argv[1:3])
with tempfile.TemporaryDirectory() as storage:
    config = make_config(storage)
    config.render_processes = 0
    client = falcon.testing.TestClient(create_app(config))
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
        lambda: _icon(_bilevel_png(20000, 20000)),
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


# Damage: the structure of the file says it is not whole.


def _chunk(data: bytes, kind: bytes, nth: int = 0) -> tuple[int, int]:
    """The offset and data length of the nth chunk of a kind in a PNG."""
    position = -1
    for _ in range(nth + 1):
        position = data.index(kind, position + 1) - 4
    return position, struct.unpack_from('>I', data, position)[0]


def _flip_crc(data: bytes, kind: bytes, nth: int = 0) -> bytes:
    position, length = _chunk(data, kind, nth)
    damaged = bytearray(data)
    damaged[position + 8 + length] ^= 0x01
    return bytes(damaged)


def _png_text_after_idat() -> bytes:
    ihdr = struct.pack('>2I5B', 4, 4, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(5 * 4))
    text = b'Comment\x00written last'
    return png([(b'IHDR', ihdr), (b'IDAT', idat), (b'tEXt', text), (b'IEND', b'')])


def _noisy_png() -> bytes:
    # Small IDAT chunks, as many encoders write them: cuts between chunks.
    data = encode(_noisy(), 'PNG')
    position, length = _chunk(data, b'IDAT')
    body = data[position + 8 : position + 8 + length]
    idats = [(b'IDAT', body[i : i + 4096]) for i in range(0, len(body), 4096)]
    ihdr = data[16:29]
    return png([(b'IHDR', ihdr), *idats, (b'IEND', b'')])


def _unknown_compression(**params) -> bytes:
    data = bytearray(encode(_noisy(), 'TIFF', **params))
    entry = data.index(b'\x03\x01\x03\x00')  # tag 259, SHORT, little-endian
    value = entry + (12 if params.get('big_tiff') else 8)
    data[value : value + 2] = struct.pack('<H', 12345)
    return bytes(data)


DAMAGE = {
    'bad IDAT checksum': lambda: _flip_crc(_noisy_png(), b'IDAT'),
    'bad checksum of the last IDAT': lambda: _flip_crc(_noisy_png(), b'IDAT', 5),
    'bad checksum after IDAT': lambda: _flip_crc(_png_text_after_idat(), b'tEXt'),
    'cut before IEND': lambda: _noisy_png()[:-12],
    'cut inside IEND': lambda: _noisy_png()[:-3],
    'cut between two IDATs': lambda: _noisy_png()[
        : _chunk(_noisy_png(), b'IDAT', 3)[0]
    ],
    'cut inside an IDAT': lambda: _noisy_png()[
        : _chunk(_noisy_png(), b'IDAT', 3)[0] + 99
    ],
    'cut inside a chunk header': lambda: _noisy_png()[:-14],
    'APNG cut in its second frame': lambda: animation('PNG')[:-60],
    'APNG with a bad fdAT checksum': lambda: _flip_crc(animation('PNG'), b'fdAT'),
    'ICO of a PNG cut before IEND': lambda: _icon(_noisy_png()[:-12]),
    'GIF cut before its trailer': lambda: encode(_noisy(), 'GIF')[:-1],
    'animated GIF cut in a later frame': lambda: _save_all('GIF')[:-200],
    'GIF cut in an extension': lambda: animation('GIF')[:25],
    'BigTIFF cut in its header': lambda: encode(_noisy(), 'TIFF', big_tiff=True)[:12],
    'BigTIFF of an unknown compression': lambda: _unknown_compression(big_tiff=True),
}


@pytest.mark.parametrize('kind', sorted(DAMAGE))
def test_a_damaged_file_is_422(client, storage_path, kind):
    assert_refused(client, storage_path, DAMAGE[kind](), 422, 'Damaged image')


def test_a_stray_byte_between_gif_blocks_is_passed_over(client):
    data = animation('GIF')

    resp = upload(client, data[:-1] + b'\x00' + data[-1:])

    assert resp.status_code == 201
    assert resp.json['size'] == [40, 30]


TRUNCATED = {
    'JPEG': lambda: encode(_noisy(), 'JPEG'),
    'progressive JPEG': lambda: encode(_noisy(), 'JPEG', progressive=True),
    'PNG': lambda: encode(_noisy(), 'PNG'),
    'APNG': lambda: _save_all('PNG'),
    'GIF': lambda: encode(_noisy(), 'GIF'),
    'animated GIF': lambda: _save_all('GIF'),
    'WebP': lambda: encode(_noisy(), 'WEBP'),
    'lossless WebP': lambda: encode(_noisy(), 'WEBP', lossless=True),
    'animated WebP': lambda: _save_all('WEBP'),
    'TIFF': lambda: encode(_noisy(), 'TIFF'),
    'LZW TIFF': lambda: encode(_noisy(), 'TIFF', compression='tiff_lzw'),
    # Pillow reads the first page only: a cut in the last went unseen.
    'multi-page TIFF': lambda: _save_all('TIFF'),
    'multi-page BigTIFF': lambda: _save_all('TIFF', big_tiff=True),
    'BMP': lambda: encode(_noisy(), 'BMP'),
    'ICO': lambda: encode(_noisy((64, 64)), 'ICO', sizes=[(64, 64)]),
    'ICO of a bitmap': lambda: encode(
        _noisy((64, 64)), 'ICO', sizes=[(64, 64)], bitmap_format='bmp'
    ),
}


@pytest.mark.parametrize('cut', [0.3, 0.6, 0.99])
@pytest.mark.parametrize('kind', sorted(TRUNCATED))
def test_a_truncated_file_is_422(client, storage_path, kind, cut):
    data = TRUNCATED[kind]()

    assert_refused(
        client, storage_path, data[: int(len(data) * cut)], 422, 'Damaged image'
    )


def test_a_spooled_upload_is_checked_whole(client, storage_path):
    # Over 1 MiB: it waits in a file, which is read mapped.
    noise = PIL.Image.frombytes('RGB', (700, 700), bytes(range(256)) * 5742 + bytes(48))
    data = encode(noise, 'PNG', compress_level=0)
    assert len(data) > 1024 * 1024

    assert_refused(client, storage_path, _flip_crc(data, b'IDAT'), 422, 'Damaged image')
    assert upload(client, data).status_code == 201


def test_an_empty_spooled_file_is_no_image(tmp_path):
    path = tmp_path / 'empty'
    path.write_bytes(b'')

    with open(path, 'rb') as source, pytest.raises(imaging.InvalidImageError):
        imaging.to_jpeg(source, 1000, 90)


# Stored files: a name is no proof of what the file holds.


def _jpeg(size=(640, 480)) -> bytes:
    return photo(size, seed=5)


def _frame_patched(size, marker=0xC0) -> bytes:
    """A real 640x480 JPEG whose frame header says size, and coding marker."""
    data = bytearray(_jpeg())
    frame = data.index(b'\xff\xc0')
    data[frame + 1] = marker
    data[frame + 5 : frame + 9] = struct.pack('>2H', size[1], size[0])
    return bytes(data)


def _scan_of_noise() -> bytes:
    """A whole JPEG whose scan is bytes the decoder stops at (seed 0 does)."""
    data = _jpeg()
    scan = data.index(b'\xff\xda')
    return data[: scan + 14] + random.Random(0).randbytes(20000) + b'\xff\xd9'


def _before_frame(inserted: bytes) -> bytes:
    data = _jpeg()
    frame = data.index(b'\xff\xc0')
    return data[:frame] + inserted + data[frame:]


# (bytes, the size in the name): none holds a picture of that size.
STORED = {
    'garbage': lambda: (b'not a JPEG at all ' * 100, (640, 480)),
    'JPEG cut at 60%': lambda: (_jpeg()[: len(_jpeg()) * 6 // 10], (640, 480)),
    'JPEG cut before its end': lambda: (_jpeg()[:-2], (640, 480)),
    'PNG under a JPEG name': lambda: (encode(gradient((640, 480)), 'PNG'), (640, 480)),
    'JPEG named 20000x15000': lambda: (_jpeg(), (20000, 15000)),
    'JPEG named twice its size': lambda: (_jpeg(), (1280, 960)),
    # Whole JPEGs whose frame header agrees with their name:
    'JPEG of a scan of noise': lambda: (_scan_of_noise(), (640, 480)),
    '90 KiB saying 20000x15000': lambda: (
        _frame_patched((20000, 15000)),
        (20000, 15000),
    ),
    'arithmetic-coded JPEG': lambda: (_frame_patched((640, 480), 0xC9), (640, 480)),
    'JPEG with bytes before its frame': lambda: (
        _before_frame(b'\x00\x00'),
        (640, 480),
    ),
}


@pytest.mark.parametrize('render_processes', [0, None], ids=['threads', 'processes'])
@pytest.mark.parametrize('kind', sorted(STORED))
async def test_a_stored_file_that_is_not_its_image_is_404(
    storage_path, kind, render_processes
):
    data, named = STORED[kind]()
    image_id = store_by_hand(storage_path, data, named)
    config = make_config(storage_path)
    if render_processes is not None:
        config.render_processes = render_processes
    async with falcon.testing.ASGIConductor(create_app(config)) as conductor:
        listed = (await conductor.simulate_get('/images')).json
        uris = [uri for image in listed for uri in image['thumbnails']]
        uris = uris or [f'/thumbnails/{image_id}/{named[0] // 2}x{named[1] // 2}.jpeg']
        for uri in uris[:2]:
            # Never a hang: 10000x7500 would be decoded from 90 KiB.
            resp = await asyncio.wait_for(conductor.simulate_get(uri), 30)

            assert resp.status_code == 404, resp.text
            assert resp.json['title'] == 'No such image'
            assert resp.json['description']


def test_a_real_jpeg_renders_under_a_true_name(storage_path):
    data = _jpeg()
    image_id = store_by_hand(storage_path, data, (640, 480))
    client = falcon.testing.TestClient(create_app(make_config(storage_path)))

    resp = client.simulate_get(f'/thumbnails/{image_id}/320x240.jpeg')

    assert resp.status_code == 200
    assert decode(resp.content).size == (320, 240)


def test_resize_renders_a_jpeg_with_a_restart_and_fill_before_its_frame(tmp_path):
    path = tmp_path / 'stored.jpeg'
    path.write_bytes(_before_frame(b'\xff\xd0\xff'))

    assert decode(imaging.resize(path, (320, 240), 90)).size == (320, 240)


@pytest.mark.parametrize('kind', sorted(STORED))
def test_resize_refuses_what_a_file_does_not_hold(tmp_path, kind):
    # The render on its own, whatever the catalog lists.
    data, named = STORED[kind]()
    path = tmp_path / 'stored.jpeg'
    path.write_bytes(data)

    with pytest.raises(imaging.StoredImageError):
        imaging.resize(path, (named[0] // 2, named[1] // 2), 90)


async def test_a_render_process_sends_the_refusal_back(tmp_path):
    path = tmp_path / 'stored.jpeg'
    path.write_bytes(_jpeg())
    with concurrent.futures.ThreadPoolExecutor(1) as threads:
        processes = renderers.RenderProcesses(1, threads)
        try:
            with pytest.raises(imaging.StoredImageError, match='no'):
                await processes.resize(path, (32000, 24000), 90)
        finally:
            await processes.close()


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
