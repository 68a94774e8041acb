"""Uploads of every kind a client can send: real-world images and hostile bytes."""

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
    ycck_jpeg,
)

WHITE = (255, 255, 255)
RED = (255, 0, 0)
Transpose = PIL.Image.Transpose


@pytest.fixture
def storage(storage_path):
    """The names in the storage directory, to compare before and after."""
    return lambda: image_files(storage_path)


def upload(client, body):
    return client.simulate_post('/images', body=body)


def stored(client, image):
    """The stored JPEG of an image object, decoded, checked to be plain RGB JPEG."""
    resp = client.simulate_get(image['image'])
    assert resp.status_code == 200
    picture = decode(resp.content)
    assert (picture.format, picture.mode) == ('JPEG', 'RGB')
    assert not picture.info.get('progressive')
    assert list(picture.size) == image['size']
    return picture


def assert_refused(client, storage, body, status, title):
    before = storage()
    listed = client.simulate_get('/images').json

    resp = upload(client, body)

    assert resp.status_code == status
    assert resp.json['title'] == title
    assert resp.json['description']
    assert storage() == before
    assert client.simulate_get('/images').json == listed
    return resp


# How a camera held in each EXIF orientation records an upright scene.
RECORDED = {
    2: Transpose.FLIP_LEFT_RIGHT,
    3: Transpose.ROTATE_180,
    4: Transpose.FLIP_TOP_BOTTOM,
    5: Transpose.TRANSPOSE,
    6: Transpose.ROTATE_90,
    7: Transpose.TRANSVERSE,
    8: Transpose.ROTATE_270,
}


@pytest.mark.parametrize('orientation', sorted(RECORDED))
def test_exif_orientation_is_turned_upright(client, orientation):
    upright = gradient((40, 64))
    exif = PIL.Image.Exif()
    exif[0x0112] = orientation
    recorded = upright.transpose(RECORDED[orientation])

    resp = upload(client, encode(recorded, 'JPEG', quality=95, exif=exif))

    assert resp.status_code == 201
    assert resp.json['size'] == [40, 64]
    picture = stored(client, resp.json)
    for point in [(10, 16), (30, 16), (10, 48), (30, 48)]:
        assert close_to(picture.getpixel(point), upright.getpixel(point))
    assert 0x0112 not in picture.getexif()


def _with_app13(jpeg: bytes, payload: bytes) -> bytes:
    segment = b'\xff\xed' + struct.pack('>H', len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def test_metadata_is_dropped_and_the_colour_profile_kept(client):
    exif = PIL.Image.Exif()
    exif[0x010F] = 'ACME-CAMERA-MAKER'
    exif[0xA431] = 'SERIAL-0123456789'
    exif.get_ifd(0x8825)[2] = (51.0, 28.0, 38.0)  # GPSLatitude
    srgb = PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile('sRGB')).tobytes()
    jpeg = encode(
        gradient(),
        'JPEG',
        exif=exif,
        icc_profile=srgb,
        comment=b'COMMENT-FROM-EDITOR',
        xmp=b'<x:xmpmeta>XMP-CREATOR-TOOL</x:xmpmeta>',
    )
    jpeg = _with_app13(jpeg, b'Photoshop 3.0\x008BIM\x04\x04IPTC-BYLINE')

    resp = upload(client, jpeg)

    assert resp.status_code == 201
    raw = client.simulate_get(resp.json['image']).content
    for secret in (
        b'ACME-CAMERA-MAKER',
        b'SERIAL-0123456789',
        b'COMMENT-FROM-EDITOR',
        b'XMP-CREATOR-TOOL',
        b'IPTC-BYLINE',
        b'Exif\x00\x00',
    ):
        assert secret not in raw
    picture = stored(client, resp.json)
    assert not picture.getexif()
    assert picture.info.get('icc_profile') == srgb


def test_a_grey_profile_is_not_kept_on_rgb(client):
    grey = PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile('LAB')).tobytes()
    data = encode(solid('L', 90), 'JPEG', icc_profile=grey)

    picture = stored(client, upload(client, data).json)

    assert 'icc_profile' not in picture.info
    assert close_to(picture.getpixel((10, 10)), (90, 90, 90), 4)


def test_a_damaged_profile_is_dropped(client):
    data = encode(gradient(), 'JPEG', icc_profile=b'not a colour profile')

    picture = stored(client, upload(client, data).json)

    assert 'icc_profile' not in picture.info


def test_damaged_exif_keeps_the_picture(client):
    data = bytearray(
        encode(gradient(), 'JPEG', exif=b'Exif\x00\x00MM\x00*' + b'\xff' * 8)
    )

    resp = upload(client, bytes(data))

    assert resp.status_code == 201
    assert resp.json['size'] == [320, 200]


def _palette_with_transparent_half(size=(48, 32)) -> PIL.Image.Image:
    image = PIL.Image.new('P', size, 0)
    image.putpalette([255, 0, 0, 0, 0, 0])
    image.paste(1, (size[0] // 2, 0, size[0], size[1]))
    return image


TRANSPARENT = {
    'RGBA PNG': (lambda: encode(half_transparent('RGBA'), 'PNG'), RED),
    'LA PNG': (lambda: encode(half_transparent('LA'), 'PNG'), (76, 76, 76)),
    'RGBA WebP': (lambda: encode(half_transparent('RGBA'), 'WEBP', lossless=True), RED),
    'RGBA TIFF': (lambda: encode(half_transparent('RGBA'), 'TIFF'), RED),
    'palette PNG': (
        lambda: encode(_palette_with_transparent_half(), 'PNG', transparency=1),
        RED,
    ),
    'palette GIF': (
        lambda: encode(_palette_with_transparent_half(), 'GIF', transparency=1),
        RED,
    ),
    'RGB PNG with tRNS': (
        lambda: encode(half_transparent('RGB'), 'PNG', transparency=(0, 0, 0)),
        RED,
    ),
    'grey PNG with tRNS': (
        lambda: encode(half_transparent('L'), 'PNG', transparency=0),
        (76, 76, 76),
    ),
}


@pytest.mark.parametrize('kind', sorted(TRANSPARENT))
def test_transparency_is_flattened_onto_white(client, kind):
    make, opaque = TRANSPARENT[kind]

    resp = upload(client, make())

    assert resp.status_code == 201
    picture = stored(client, resp.json)
    assert close_to(picture.getpixel((6, 16)), opaque)
    assert close_to(picture.getpixel((42, 16)), WHITE)


@pytest.mark.parametrize('fmt', ['GIF', 'WEBP', 'PNG'])
def test_an_animation_is_stored_as_its_first_frame(client, fmt):
    resp = upload(client, animation(fmt))

    assert resp.status_code == 201
    assert resp.json['size'] == [40, 30]
    assert close_to(stored(client, resp.json).getpixel((20, 15)), RED)


def _gradient_f(size=(64, 16), low=-1000.0, high=1000.0) -> PIL.Image.Image:
    image = PIL.Image.new('F', size)
    for x in range(size[0]):
        value = low + (high - low) * x / (size[0] - 1)
        image.paste(value, (x, 0, x + 1, size[1]))
    return image


MODES = {
    'CMYK JPEG': (lambda: encode(solid('CMYK', (0, 255, 255, 0)), 'JPEG'), RED),
    'YCCK JPEG': (lambda: ycck_jpeg((30, 200, 90)), (30, 200, 90)),
    '16-bit grey PNG': (lambda: encode(solid('I;16', 32768), 'PNG'), (128,) * 3),
    '16-bit RGB PNG': (lambda: _png_rgb16((65535, 32768, 0)), (255, 128, 0)),
    'grey JPEG': (lambda: encode(solid('L', 100), 'JPEG'), (100,) * 3),
    '1-bit PNG': (lambda: encode(solid('1', 1), 'PNG'), WHITE),
    '1-bit BMP': (lambda: encode(solid('1', 0), 'BMP'), (0, 0, 0)),
    'palette BMP': (
        lambda: encode(solid('RGB', (0, 0, 255)).convert('P'), 'BMP'),
        (0, 0, 255),
    ),
    'int32 TIFF, 8-bit values': (lambda: encode(solid('I', 200), 'TIFF'), (200,) * 3),
    'int32 TIFF, 16-bit values': (
        lambda: encode(solid('I', 40000), 'TIFF'),
        (156,) * 3,
    ),
    'float TIFF, 0 to 1': (lambda: encode(solid('F', 0.5), 'TIFF'), (127,) * 3),
    'float TIFF, constant out of range': (
        lambda: encode(solid('F', -7.0), 'TIFF'),
        (0, 0, 0),
    ),
    'RGB TIFF': (lambda: encode(solid('RGB', (10, 120, 240)), 'TIFF'), (10, 120, 240)),
    'ICO': (lambda: encode(solid('RGB', (200, 50, 0)), 'ICO'), (200, 50, 0)),
}


def _png_rgb16(rgb, size=(48, 32)) -> bytes:
    """A 16-bit-per-channel RGB PNG, written chunk by chunk."""
    width, height = size
    row = b'\x00' + struct.pack('>3H', *rgb) * width
    return png(
        [
            (b'IHDR', struct.pack('>2I5B', width, height, 16, 2, 0, 0, 0)),
            (b'IDAT', zlib.compress(row * height)),
            (b'IEND', b''),
        ]
    )


@pytest.mark.parametrize('kind', sorted(MODES))
def test_every_mode_is_stored_with_its_colours(client, kind):
    make, colour = MODES[kind]

    resp = upload(client, make())

    assert resp.status_code == 201
    picture = stored(client, resp.json)
    width, height = picture.size
    assert close_to(picture.getpixel((width // 2, height // 2)), colour, 6)


def test_floats_of_any_range_are_stretched(client):
    picture = stored(client, upload(client, encode(_gradient_f(), 'TIFF')).json)

    assert picture.getpixel((0, 8))[0] <= 4
    assert 120 <= picture.getpixel((32, 8))[0] <= 135
    assert picture.getpixel((63, 8))[0] >= 251


def test_a_single_pixel_is_an_image_without_thumbnails(client):
    resp = upload(client, encode(solid('RGB', (1, 2, 3), (1, 1)), 'PNG'))

    assert resp.status_code == 201
    assert resp.json['size'] == [1, 1]
    assert resp.json['thumbnails'] == []


def test_an_image_at_the_pixel_limit_is_accepted(client, config):
    config.max_image_pixels = 300 * 200

    resp = upload(client, encode(gradient((300, 200)), 'PNG'))

    assert resp.status_code == 201


@pytest.mark.parametrize(
    'body',
    [
        b'hello, world',
        b'<!DOCTYPE html><html><body>not a picture</body></html>',
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
        b'%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n',
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
