"""Hostile images: formats outside the allow-list, and stored files that are not
what their name says."""

import asyncio
import concurrent.futures
import io
import random
import struct
import warnings

import falcon.testing
import PIL.Image
import pytest

from asgilook import errors
from asgilook.app import create_served_app
from asgilook.imaging import convert, renderers

from .fakes import make_config
from .images import (
    animation,
    decode,
    encode,
    gradient,
    heif,
    phone_photo,
    photo,
    save_all,
    store_by_hand,
)
from .refusals import assert_refused, upload

# The formats of the README, each as Pillow reads it: (bytes, format, size).
ALLOWED = {
    'JPEG': lambda: encode(gradient((40, 30)), 'JPEG'),
    'MPO': lambda: save_all('MPO'),
    'PNG': lambda: encode(gradient((40, 30)), 'PNG'),
    'APNG': lambda: animation('PNG'),
    'GIF': lambda: encode(gradient((40, 30)), 'GIF'),
    'animated GIF': lambda: animation('GIF'),
    'WebP': lambda: encode(gradient((40, 30)), 'WEBP'),
    'animated WebP': lambda: animation('WEBP'),
    'TIFF': lambda: encode(gradient((40, 30)), 'TIFF'),
    'multi-page TIFF': lambda: save_all('TIFF'),
    'multi-page BigTIFF': lambda: save_all('TIFF', big_tiff=True),
    'BMP': lambda: encode(gradient((40, 30)), 'BMP'),
    'ICO': lambda: encode(gradient((32, 32)), 'ICO', sizes=[(32, 32)]),
    'ICO of a bitmap': lambda: encode(
        gradient((32, 32)), 'ICO', sizes=[(32, 32)], bitmap_format='bmp'
    ),
    'AVIF': lambda: encode(gradient((40, 30)), 'AVIF'),
    'animated AVIF': lambda: animation('AVIF'),
    'HEIC': lambda: heif(gradient((40, 30))),
    'HEIC of a phone': phone_photo,
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

    assert (
        'JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF, BMP or ICO' in resp.json['description']
    )


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
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
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
    client = falcon.testing.TestClient(create_served_app(make_config(storage_path)))

    resp = client.simulate_get(f'/thumbnails/{image_id}/320x240.jpeg')

    assert resp.status_code == 200
    assert decode(resp.content).size == (320, 240)


def test_resize_renders_a_jpeg_with_a_restart_and_fill_before_its_frame(tmp_path):
    path = tmp_path / 'stored.jpeg'
    path.write_bytes(_before_frame(b'\xff\xd0\xff'))

    assert decode(convert.resize(path, (320, 240), 90)).size == (320, 240)


@pytest.mark.parametrize('kind', sorted(STORED))
def test_resize_refuses_what_a_file_does_not_hold(tmp_path, kind):
    # The render on its own, whatever the catalog lists.
    data, named = STORED[kind]()
    path = tmp_path / 'stored.jpeg'
    path.write_bytes(data)

    with pytest.raises(errors.StoredImageError):
        convert.resize(path, (named[0] // 2, named[1] // 2), 90)


async def test_a_render_process_sends_the_refusal_back(tmp_path):
    path = tmp_path / 'stored.jpeg'
    path.write_bytes(_jpeg())
    with concurrent.futures.ThreadPoolExecutor(1) as threads:
        processes = renderers.RenderProcesses(1, threads)
        try:
            with pytest.raises(errors.StoredImageError, match='no'):
                await processes.resize(path, (32000, 24000), 90)
        finally:
            await processes.close()
