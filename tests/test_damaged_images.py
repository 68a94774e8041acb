"""Damaged images: files cut short or failing their checksums are 422."""

import struct
import zlib

import PIL.Image
import pytest

from asgilook import errors
from asgilook.imaging import convert

from .images import (
    animation,
    encode,
    heif,
    icon,
    noisy,
    phone_photo,
    png,
    save_all,
)
from .refusals import assert_refused, upload

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
    data = encode(noisy(), 'PNG')
    position, length = _chunk(data, b'IDAT')
    body = data[position + 8 : position + 8 + length]
    idats = [(b'IDAT', body[i : i + 4096]) for i in range(0, len(body), 4096)]
    ihdr = data[16:29]
    return png([(b'IHDR', ihdr), *idats, (b'IEND', b'')])


def _unknown_compression(**params) -> bytes:
    data = bytearray(encode(noisy(), 'TIFF', **params))
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
    'ICO of a PNG cut before IEND': lambda: icon(_noisy_png()[:-12]),
    'GIF cut in its header': lambda: encode(noisy(), 'GIF')[:12],
    'GIF cut before its trailer': lambda: encode(noisy(), 'GIF')[:-1],
    'animated GIF cut in a later frame': lambda: save_all('GIF')[:-200],
    'GIF cut in an extension': lambda: animation('GIF')[:25],
    'BigTIFF cut in its header': lambda: encode(noisy(), 'TIFF', big_tiff=True)[:12],
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
    'JPEG': lambda: encode(noisy(), 'JPEG'),
    'progressive JPEG': lambda: encode(noisy(), 'JPEG', progressive=True),
    'PNG': lambda: encode(noisy(), 'PNG'),
    'APNG': lambda: save_all('PNG'),
    'GIF': lambda: encode(noisy(), 'GIF'),
    'animated GIF': lambda: save_all('GIF'),
    'WebP': lambda: encode(noisy(), 'WEBP'),
    'lossless WebP': lambda: encode(noisy(), 'WEBP', lossless=True),
    'animated WebP': lambda: save_all('WEBP'),
    'TIFF': lambda: encode(noisy(), 'TIFF'),
    'LZW TIFF': lambda: encode(noisy(), 'TIFF', compression='tiff_lzw'),
    # Pillow reads the first page only: a cut in the last went unseen.
    'multi-page TIFF': lambda: save_all('TIFF'),
    'multi-page BigTIFF': lambda: save_all('TIFF', big_tiff=True),
    'BMP': lambda: encode(noisy(), 'BMP'),
    'ICO': lambda: encode(noisy((64, 64)), 'ICO', sizes=[(64, 64)]),
    'ICO of a bitmap': lambda: encode(
        noisy((64, 64)), 'ICO', sizes=[(64, 64)], bitmap_format='bmp'
    ),
    'AVIF': lambda: encode(noisy(), 'AVIF'),
    'animated AVIF': lambda: save_all('AVIF'),
    'HEIC': lambda: heif(noisy()),
    'HEIC of a phone': phone_photo,
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

    with open(path, 'rb') as source, pytest.raises(errors.InvalidImageError):
        convert.to_jpeg(source, 1000, 90)
