"""Uploads of every kind a client can send: real-world images and hostile bytes."""

import struct
import zlib

import PIL.Image
import PIL.ImageCms
import pytest

from .images import (
    animation,
    close_to,
    decode,
    encode,
    gradient,
    half_transparent,
    png,
    solid,
    ycck_jpeg,
)

WHITE = (255, 255, 255)
RED = (255, 0, 0)
Transpose = PIL.Image.Transpose


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
