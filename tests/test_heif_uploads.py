"""HEIC and AVIF uploads: phone photos stored as JPEG; their bombs and cuts refused."""

import io
import struct

import PIL.Image
import pytest

from .images import (
    animation,
    close_to,
    declaring,
    decode,
    encode,
    gradient,
    half_transparent,
    heif,
    phone_photo,
)
from .refusals import assert_refused, upload

Transpose = PIL.Image.Transpose
WHITE = (255, 255, 255)

KINDS = {
    'HEIC': lambda: heif(gradient((320, 240))),
    'AVIF': lambda: encode(gradient((320, 240)), 'AVIF'),
    'animated AVIF': lambda: animation('AVIF', size=(320, 240)),
    'HEIC of a grid with EXIF': phone_photo,
}


def _stored(client, resp) -> PIL.Image.Image:
    assert resp.status_code == 201, resp.text
    picture = decode(client.simulate_get(resp.json['image']).content)
    assert (picture.format, picture.mode) == ('JPEG', 'RGB')
    assert list(picture.size) == resp.json['size']
    # Nothing of the camera's metadata: no EXIF, so no GPS position.
    assert not picture.getexif()
    return picture


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_a_heic_or_an_avif_is_stored_as_jpeg(client, kind):
    data = KINDS[kind]()

    resp = upload(client, data)

    picture = _stored(client, resp)
    assert resp.headers['location'] == resp.json['image']
    assert resp.json['delete_token']
    assert resp.json['thumbnails']
    thumbnail = client.simulate_get(resp.json['thumbnails'][0])
    assert thumbnail.status_code == 200
    assert decode(thumbnail.content).format == 'JPEG'
    assert picture.size == PIL.Image.open(io.BytesIO(data)).size


def test_an_animated_avif_is_stored_as_its_first_frame(client):
    picture = _stored(client, upload(client, animation('AVIF')))

    assert close_to(picture.getpixel((20, 15)), (255, 0, 0))


@pytest.mark.parametrize('fmt', ['HEIC', 'AVIF'])
def test_transparency_is_flattened_onto_white(client, fmt):
    image = half_transparent()
    data = heif(image) if fmt == 'HEIC' else encode(image, 'AVIF')

    picture = _stored(client, upload(client, data))

    assert close_to(picture.getpixel((8, 16)), (255, 0, 0), tolerance=40)
    assert close_to(picture.getpixel((40, 16)), WHITE)


@pytest.mark.parametrize('fmt', ['HEIC', 'AVIF'])
@pytest.mark.parametrize('orientation', [3, 6, 8])
def test_exif_orientation_is_turned_upright(client, fmt, orientation):
    upright = gradient((40, 64))
    recorded = upright.transpose(
        {3: Transpose.ROTATE_180, 6: Transpose.ROTATE_90, 8: Transpose.ROTATE_270}[
            orientation
        ]
    )
    exif = PIL.Image.Exif()
    exif[0x0112] = orientation
    if fmt == 'HEIC':
        data = heif(recorded, quality=95, info={'exif': exif.tobytes()})
    else:
        data = encode(recorded, 'AVIF', quality=95, exif=exif)

    picture = _stored(client, upload(client, data))

    assert picture.size == (40, 64)
    for point in [(10, 16), (30, 16), (10, 48), (30, 48)]:
        assert close_to(picture.getpixel(point), upright.getpixel(point), 40)


def test_a_phone_photo_is_stored_upright_without_its_metadata(client):
    # A phone held upright records its scene turned (EXIF orientation 6).
    upright = gradient((1024, 768)).transpose(Transpose.ROTATE_270)

    resp = upload(client, phone_photo(orientation=6))

    picture = _stored(client, resp)
    assert resp.json['size'] == [768, 1024]
    for point in [(192, 256), (576, 256), (192, 768), (576, 768)]:
        assert close_to(picture.getpixel(point), upright.getpixel(point), 40)


# Declared sizes over the limit, each where a decoder would read it.
BOMBS = {
    'HEIC 100000x100000': lambda: declaring(
        heif(gradient((40, 30))), b'ispe', (100_000, 100_000)
    ),
    'AVIF 100000x100000': lambda: declaring(
        encode(gradient((40, 30)), 'AVIF'), b'ispe', (100_000, 100_000)
    ),
    'HEIC of a grid whose tile is 60000x60000': lambda: declaring(
        phone_photo(), b'ispe', (60_000, 60_000), nth=-1
    ),
    # An image sequence's track header (version 1: 64-bit times), in 16.16
    # fixed point.
    'AVIF sequence whose track is 60000x60000': lambda: declaring(
        animation('AVIF'), b'tkhd', (60_000 << 16, 60_000 << 16), at=8 + 88
    ),
    'AVIF sequence whose sample entry is 65535x65535': lambda: declaring(
        animation('AVIF'), b'av01', (65535, 65535), nth=-1, at=8 + 24, layout='>2H'
    ),
    'AVIF with a version 0 track header of 60000x60000': lambda: _then(
        encode(gradient((40, 30)), 'AVIF'),
        _box(
            b'tkhd',
            bytes(76) + struct.pack('>2I', 60_000 << 16, 60_000 << 16),
        ),
    ),
}


@pytest.mark.parametrize('kind', sorted(BOMBS))
def test_a_bomb_is_refused_from_its_boxes_before_pillow_opens_it(
    client, storage_path, pillow_opens, kind
):
    resp = assert_refused(client, storage_path, BOMBS[kind](), 413, 'Image too large')

    assert '50000000 pixels' in resp.json['description']
    # Not a pixel decoded: the file never reached Pillow.
    assert pillow_opens == []


def test_a_heic_within_the_pixel_limit_reaches_pillow(client, pillow_opens):
    # What the test above proves needs a Pillow that is asked, for a good file.
    assert upload(client, heif(gradient((40, 30)))).status_code == 201
    assert len(pillow_opens) == 1


def _box(kind: bytes, body: bytes = b'') -> bytes:
    return struct.pack('>I4s', 8 + len(body), kind) + body


def _then(data: bytes, *boxes: bytes) -> bytes:
    """The file with boxes after its own (decoders pass over boxes they do not know)."""
    return data + b''.join(boxes)


def _nested(depth: int) -> bytes:
    box = _box(b'ispe', bytes(12))
    for _ in range(depth):
        box = _box(b'iprp', box)
    return box


def _heic() -> bytes:
    return heif(gradient((40, 30)))


# Boxes that are not whole, or build nothing a decoder could size.
DAMAGED = {
    'cut inside a box header': lambda: _then(_heic(), b'\x00\x00\x00'),
    'cut inside a 64-bit box size': lambda: _then(_heic(), b'\x00\x00\x00\x01free\x00'),
    'a box shorter than its header': lambda: _then(
        _heic(), struct.pack('>I4s', 4, b'free')
    ),
    'a box longer than the file': lambda: _then(
        _heic(), struct.pack('>I4s', 4096, b'free') + bytes(8)
    ),
    'an ispe too short for a size': lambda: _then(_heic(), _box(b'ispe', bytes(6))),
    'boxes nested past any picture': lambda: _then(_heic(), _nested(20)),
    'no size declared': lambda: (
        _box(b'ftyp', b'heic' + bytes(4) + b'mif1heic') + _box(b'mdat', bytes(64))
    ),
}


@pytest.mark.parametrize('kind', sorted(DAMAGED))
def test_a_heif_whose_boxes_are_broken_is_422(client, storage_path, kind):
    assert_refused(client, storage_path, DAMAGED[kind](), 422, 'Damaged image')


@pytest.mark.parametrize(
    'tail',
    [
        # A box of a 64-bit size, and one that runs to the end of the file.
        struct.pack('>I4sQ', 1, b'free', 24) + bytes(8),
        struct.pack('>I4s', 0, b'free') + bytes(40),
    ],
    ids=['64-bit size', 'to the end'],
)
def test_boxes_of_every_size_form_are_walked(client, tail):
    assert upload(client, _then(_heic(), tail)).status_code == 201


def test_an_mp4_video_is_no_image(client, storage_path):
    video = _box(b'ftyp', b'isom' + bytes(4) + b'isomiso2mp41') + _box(
        b'mdat', bytes(64)
    )

    resp = assert_refused(client, storage_path, video, 415, 'Not an image')

    assert 'AVIF, HEIC' in resp.json['description']


def test_a_heic_whose_coded_picture_is_larger_than_its_ispe_is_422(
    client, storage_path
):
    # libheif gives the HEVC decoder a limit from ispe and refuses a larger
    # SPS before allocating for it (3.8 MiB for a 6000x6000 picture that said
    # 100x100), so asgilook reads no SPS; unlike an AVIF's (test_coded_sizes).
    data = declaring(heif(PIL.Image.new('RGB', (640, 640))), b'ispe', (100, 100))

    assert_refused(client, storage_path, data, 422, 'Damaged image')
