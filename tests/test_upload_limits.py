"""Uploads that are no image, damaged or too large: refused, nothing kept."""

import os
import pathlib
import random
import struct
import zlib

import falcon.testing
import hypothesis
import hypothesis.strategies as st
import PIL.Image
import PIL.ImageCms
import pytest

from asgilook.app import create_served_app
from asgilook.storage.files import TEMPORARY_DIRECTORY

from .asgi import post_chunked
from .fakes import as_listed, make_config, owner
from .images import (
    animation,
    close_to,
    decode,
    encode,
    gradient,
    half_transparent,
    image_files,
    png,
    solid,
)
from .test_uploads import assert_refused, upload


@pytest.mark.parametrize(
    'body',
    [
        b'hello, world',
        b'<!DOCTYPE html><html><body>not a picture</body></html>',
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
        b'%PDF-1.4\n1 0 obj << /Type /SqliteCatalog >> endobj\ntrailer << >>\n%%EOF\n',
        bytes(range(256)) * 4,
        b'\x00',
    ],
    ids=['text', 'html', 'svg', 'pdf', 'random', 'one-byte'],
)
def test_bytes_of_no_image_format_are_415(client, storage, body):
    resp = assert_refused(client, storage, body, 415, 'Not an image')

    assert 'JPEG, PNG' in resp.json['description']


def _png_with_header(width, height, rest=b'') -> bytes:
    ihdr = struct.pack('>2I5B', width, height, 8, 2, 0, 0, 0)
    return png([(b'IHDR', ihdr)]) + rest


def _png_bomb(width, height) -> bytes:
    """A valid PNG header and a few KiB of zeros that claim width x height pixels."""
    ihdr = struct.pack('>2I5B', width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b'\x00' * 1_000_000, 9)
    return png([(b'IHDR', ihdr), (b'IDAT', idat), (b'IEND', b'')])


def _bad_crc(png: bytes) -> bytes:
    data = bytearray(png)
    data[29] ^= 0xFF  # the last byte of the IHDR chunk's CRC
    return bytes(data)


DAMAGED = {
    'truncated JPEG': lambda: encode(gradient(), 'JPEG')[:600],
    'truncated PNG': lambda: encode(gradient(), 'PNG')[:300],
    'truncated GIF': lambda: encode(gradient(), 'GIF')[:200],
    'PNG with a bad CRC': lambda: _bad_crc(encode(gradient(), 'PNG')),
    'PNG header then garbage': lambda: _png_with_header(64, 64, b'\x13\x37' * 200),
    'JPEG header then garbage': lambda: b'\xff\xd8\xff\xe0' + b'\x5a' * 300,
    'GIF header only': lambda: b'GIF89a',
    'WebP header then garbage': lambda: b'RIFF\x00\x01\x00\x00WEBPVP8 ' + b'\x01' * 64,
    'BMP header then garbage': lambda: b'BM' + b'\x00' * 60,
}


@pytest.mark.parametrize('kind', sorted(DAMAGED))
def test_a_damaged_image_is_422(client, storage, kind):
    assert_refused(client, storage, DAMAGED[kind](), 422, 'Damaged image')


def _gif_claiming(width, height) -> bytes:
    data = bytearray(encode(solid('P', 1, (16, 16)), 'GIF'))
    data[6:10] = struct.pack('<2H', width, height)  # the logical screen
    descriptor = data.index(b'\x2c', 13)  # the first image descriptor
    data[descriptor + 5 : descriptor + 9] = struct.pack('<2H', width, height)
    return bytes(data)


def _jpeg_claiming(width, height) -> bytes:
    data = bytearray(encode(gradient((16, 16)), 'JPEG'))
    sof = data.index(b'\xff\xc0')
    data[sof + 5 : sof + 9] = struct.pack('>2H', height, width)
    return bytes(data)


BOMBS = {
    'PNG 100000x100000': lambda: _png_bomb(100_000, 100_000),
    'PNG 7072x7072': lambda: _png_bomb(7072, 7072),
    'JPEG 65000x65000': lambda: _jpeg_claiming(65000, 65000),
    'GIF 65535x65535': lambda: _gif_claiming(65535, 65535),
}


@pytest.mark.parametrize('kind', sorted(BOMBS))
def test_a_decompression_bomb_is_refused_from_its_header(client, storage, kind):
    resp = assert_refused(client, storage, BOMBS[kind](), 413, 'Image too large')

    assert '50000000 pixels' in resp.json['description']


def test_the_pixel_limit_is_configurable(client, config, storage):
    config.max_image_pixels = 300 * 200 - 1

    resp = assert_refused(
        client, storage, encode(gradient((300, 200)), 'PNG'), 413, 'Image too large'
    )

    assert '300x200' in resp.json['description']


def test_a_body_over_the_limit_is_413(client, config, storage, png_image):
    config.max_upload_size = 1000
    assert len(png_image) > 1000

    resp = assert_refused(client, storage, png_image, 413, 'Upload too large')

    assert '1000 bytes' in resp.json['description']


def test_a_declared_length_over_the_limit_is_refused_unread(config, storage):
    config.max_upload_size = 1000
    app = create_served_app(config)
    chunks = [b'\x89PNG\r\n\x1a\n'] + [b'\x00' * 512] * 10
    before = storage()

    status, body, pulled = falcon.async_to_sync(
        post_chunked, app, '/images', chunks, [('Content-Length', '5128')]
    )

    assert status == 413
    assert body['title'] == 'Upload too large'
    # Falcon waits for the first body event before it routes; no more is read.
    assert pulled <= 1
    assert storage() == before


def test_a_chunked_body_is_read_only_up_to_the_limit(config, storage):
    config.max_upload_size = 4096
    app = create_served_app(config)
    chunks = [b'\x89PNG\r\n\x1a\n'] + [b'\x00' * 1024] * 100
    before = storage()

    status, body, pulled = falcon.async_to_sync(post_chunked, app, '/images', chunks)

    assert status == 413
    assert body['title'] == 'Upload too large'
    assert pulled <= 6
    assert storage() == before


def test_a_body_at_the_limit_is_accepted(client, config):
    data = encode(gradient(), 'PNG')
    config.max_upload_size = len(data)

    assert upload(client, data).status_code == 201


VALID = {
    'PNG': encode(gradient((40, 30)), 'PNG'),
    'JPEG': encode(gradient((40, 30)), 'JPEG', exif=PIL.Image.Exif()),
    'GIF': animation('GIF'),
    'WEBP': encode(half_transparent('RGBA'), 'WEBP'),
    'TIFF': encode(gradient((40, 30)), 'TIFF'),
    'BMP': encode(gradient((40, 30)), 'BMP'),
}


@st.composite
def mutated(draw):
    data = bytearray(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(['truncate', 'flip', 'splice', 'delete']))
        if operation == 'truncate':
            del data[position:]
        elif operation == 'flip' and position < len(data):
            data[position] ^= draw(st.integers(1, 255))
        elif operation == 'splice':
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        else:
            del data[position : position + draw(st.integers(1, 64))]
    return bytes(data)


@pytest.fixture(scope='module')
def fuzzed(tmp_path_factory):
    """One service for every example: a new one each would cost more than it."""
    storage_path = tmp_path_factory.mktemp('fuzz')
    client = falcon.testing.TestClient(create_served_app(make_config(storage_path)))
    return client, storage_path


@hypothesis.settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
@hypothesis.given(body=mutated())
def test_mutated_images_never_fail_the_server(fuzzed, body):
    client, storage_path = fuzzed

    resp = upload(client, body)

    assert resp.status_code < 500
    if resp.status_code == 201:
        assert [name.split('.')[0] for name in image_files(storage_path)] == [
            resp.json['id']
        ]
        assert client.simulate_get('/images').json == [as_listed(resp.json)]
        picture = decode(client.simulate_get(resp.json['image']).content)
        assert list(picture.size) == resp.json['size']
        # The next example starts from an empty store again.
        assert (
            client.simulate_delete(
                resp.json['image'], headers=owner(resp.json)
            ).status_code
            == 204
        )
    else:
        assert 400 <= resp.status_code < 500
        assert set(resp.json) == {'title', 'description'}
    assert image_files(storage_path) == []
    assert client.simulate_get('/images').json == []


def _noise_png(size) -> bytes:
    """A PNG that barely compresses: megabytes for a modest picture."""
    noise = random.Random(3).randbytes(size[0] * size[1] * 3)
    image = PIL.Image.frombytes('RGB', size, noise)
    return encode(image, 'PNG'), image


@pytest.mark.parametrize('pieces', [12, 2], ids=['small-chunks', 'halves'])
def test_a_large_upload_waits_on_disk_and_is_stored_whole(config, pieces):
    body, original = _noise_png((1000, 1000))
    # Over 2 MiB: halves each fill the in-memory part; small chunks leave a tail.
    assert len(body) > 2 * 1024 * 1024
    chunk = -(-len(body) // pieces)
    app = create_served_app(config)
    chunks = [body[start : start + chunk] for start in range(0, len(body), chunk)]

    status, image, _ = falcon.async_to_sync(post_chunked, app, '/images', chunks)

    assert status == 201
    assert image['size'] == [1000, 1000]
    stored = decode(falcon.testing.TestClient(app).simulate_get(image['image']).content)
    assert close_to(
        stored.resize((10, 10)).getpixel((5, 5)),
        original.resize((10, 10)).getpixel((5, 5)),
        40,
    )
    assert [name.split('.')[0] for name in image_files(config.storage_path)] == [
        image['id']
    ]
    assert os.listdir(pathlib.Path(config.storage_path) / TEMPORARY_DIRECTORY) == []


def test_a_large_upload_over_the_limit_leaves_no_spool(config, storage):
    body, _ = _noise_png((1000, 1000))
    config.max_upload_size = len(body) - 1
    app = create_served_app(config)
    chunks = [
        body[start : start + 512 * 1024] for start in range(0, len(body), 512 * 1024)
    ]
    before = storage()

    status, error, _ = falcon.async_to_sync(post_chunked, app, '/images', chunks)

    assert status == 413
    assert error['title'] == 'Upload too large'
    assert storage() == before
