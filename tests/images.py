"""Image files made in the tests: encoders for the formats users upload."""

import io
import os
import pathlib
import random
import struct
import uuid
import zlib

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFilter
import pillow_heif

from asgilook.catalog.record import file_name
from asgilook.storage.files import TEMPORARY_DIRECTORY, TEMPORARY_PREFIX


def encode(image: PIL.Image.Image, fmt: str, **params) -> bytes:
    output = io.BytesIO()
    image.save(output, fmt, **params)
    return output.getvalue()


def decode(data: bytes) -> PIL.Image.Image:
    image = PIL.Image.open(io.BytesIO(data))
    image.load()
    return image


def gradient(size=(320, 200)) -> PIL.Image.Image:
    """An RGB picture with a distinct colour in each quadrant."""
    width, height = size
    image = PIL.Image.new('RGB', size)
    quadrants = {
        (0, 0): (220, 30, 30),
        (1, 0): (30, 200, 30),
        (0, 1): (30, 30, 220),
        (1, 1): (240, 240, 240),
    }
    for (qx, qy), colour in quadrants.items():
        box = (
            qx * width // 2,
            qy * height // 2,
            (qx + 1) * width // 2,
            (qy + 1) * height // 2,
        )
        image.paste(colour, box)
    return image


def close_to(actual, expected, tolerance=24) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def solid(mode: str, colour, size=(48, 32)) -> PIL.Image.Image:
    return PIL.Image.new(mode, size, colour)


def half_transparent(mode: str = 'RGBA', size=(48, 32)) -> PIL.Image.Image:
    """Left half opaque red, right half fully transparent (black underneath)."""
    image = PIL.Image.new('RGBA', size, (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, size[0] // 2, size[1]))
    return image.convert(mode)


def animation(fmt: str, colours=('red', 'lime', 'blue'), size=(40, 30)) -> bytes:
    frames = [PIL.Image.new('RGB', size, colour) for colour in colours]
    output = io.BytesIO()
    frames[0].save(
        output, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0
    )
    return output.getvalue()


def ycck_jpeg(rgb, size=(32, 32)) -> bytes:
    """A YCCK JPEG (Adobe transform 2) whose colour reads as rgb.

    Pillow writes CMYK JPEGs inverted, with an Adobe marker of transform 0;
    the components are chosen so that, read as YCCK, they give the CMYK of rgb.
    """
    cmy = tuple(255 - value for value in rgb)
    ycc = PIL.Image.new('RGB', size, cmy).convert('YCbCr').getpixel((0, 0))
    stored = PIL.Image.new('CMYK', size, (*(255 - value for value in ycc), 0))
    data = bytearray(encode(stored, 'JPEG', quality=100))
    adobe = data.index(b'Adobe')
    data[adobe + 11] = 2  # the transform byte of the APP14 segment
    return bytes(data)


def stored_file(storage_path, image_id: str) -> pathlib.Path:
    """The one file in the storage directory that holds an image."""
    (path,) = pathlib.Path(storage_path).glob(f'{image_id}.*.jpeg')
    return path


def image_files(storage_path) -> list[str]:
    """The images and files on their way in or out of a storage directory.

    Not the hidden files asgilook keeps for itself (its catalog, its service
    key), which exist whatever was uploaded.
    """
    incoming = pathlib.Path(storage_path) / TEMPORARY_DIRECTORY
    waiting = os.listdir(incoming) if incoming.is_dir() else []
    return sorted(
        [
            *(
                name
                for name in os.listdir(storage_path)
                if not name.startswith('.') or name.startswith(TEMPORARY_PREFIX)
            ),
            *(f'{TEMPORARY_DIRECTORY}/{name}' for name in waiting),
        ]
    )


def photo(size: tuple[int, int] = (1920, 1080), seed: int = 1) -> bytes:
    """Return a JPEG (quality 90) of a photo-like scene: light, edges, grain."""
    rng = random.Random(seed)
    width, height = size
    sky = PIL.Image.linear_gradient('L').resize(size).convert('RGB')
    scene = PIL.Image.merge(
        'RGB',
        [
            band.point(lambda v, k=k: int(v * k))
            for band, k in zip(sky.split(), (0.55, 0.75, 1.0), strict=True)
        ],
    )
    draw = PIL.ImageDraw.Draw(scene)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randrange(20, height // 4)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    scene = scene.filter(PIL.ImageFilter.GaussianBlur(3))
    grain = PIL.Image.frombytes('L', size, rng.randbytes(width * height))
    scene = PIL.Image.blend(scene, grain.convert('RGB'), 0.08)
    output = io.BytesIO()
    scene.save(output, 'JPEG', quality=90)
    return output.getvalue()


def png(chunks) -> bytes:
    """A PNG made of (kind, data) chunks, each with its right CRC."""
    body = b''.join(
        struct.pack('>I', len(data))
        + kind
        + data
        + struct.pack('>I', zlib.crc32(kind + data))
        for kind, data in chunks
    )
    return b'\x89PNG\r\n\x1a\n' + body


def store_by_hand(storage_path, data: bytes, size: tuple[int, int]) -> str:
    """Write bytes into the storage directory under a valid image name; its id."""
    image_id = str(uuid.uuid4())
    name = file_name(image_id, size, len(data))
    (pathlib.Path(storage_path) / name).write_bytes(data)
    return image_id


def noisy(size=(160, 120)) -> PIL.Image.Image:
    """A photo-like picture: a cut lands in its data, not in a flat run."""
    return decode(photo((160, 120))).resize(size)


def save_all(fmt: str, **params) -> bytes:
    first = noisy()
    rest = [first.rotate(90), first.rotate(180)]
    output = io.BytesIO()
    first.save(output, fmt, save_all=True, append_images=rest, **params)
    return output.getvalue()


def icon(frame: bytes, bpp: int = 32) -> bytes:
    """An ICO whose one entry says 16x16 and holds frame (a PNG or a DIB)."""
    entry = struct.pack('<4B2H2I', 16, 16, 0, 0, 1, bpp, len(frame), 22)
    return struct.pack('<3H', 0, 1, 1) + entry + frame


def heif(image: PIL.Image.Image, **params) -> bytes:
    """A HEIC file (HEVC-coded HEIF) of image, written by pillow-heif."""
    heif_file = pillow_heif.from_pillow(image)
    heif_file.info.update(params.pop('info', {}))
    output = io.BytesIO()
    heif_file.save(output, quality=params.pop('quality', 80), **params)
    return output.getvalue()


def phone_photo(orientation: int = 6) -> bytes:
    """A HEIC as a phone writes it: a grid of 256-pixel tiles, with EXIF.

    The camera's own orientation tag says how to turn it upright; pillow-heif
    writes that as the file's rotation (irot), and the tag as 1.
    """
    exif = PIL.Image.Exif()
    exif[0x010F] = 'Apple'
    exif[0x0110] = 'iPhone 15'
    exif[0x0112] = orientation
    exif.get_ifd(0x8825)[2] = (51.0, 28.0, 38.0)  # GPSLatitude
    before = pillow_heif.options.GRID_TILE_SIZE
    pillow_heif.options.GRID_TILE_SIZE = 256
    try:
        return heif(gradient((1024, 768)), info={'exif': exif.tobytes()})
    finally:
        pillow_heif.options.GRID_TILE_SIZE = before


def boxes_of(data: bytes, kind: bytes) -> list[int]:
    """Where each box of a kind begins in an ISO base media file (HEIF, AVIF)."""
    found, position = [], data.find(kind)
    while position >= 0:
        found.append(position - 4)
        position = data.find(kind, position + 1)
    return found


def declaring(
    data: bytes, kind: bytes, sides, nth: int = 0, at: int = 12, layout: str = '>2I'
) -> bytes:
    """The file with the nth box of a kind declaring sides, at `at` in the box."""
    patched = bytearray(data)
    position = boxes_of(data, kind)[nth] + at
    packed = struct.pack(layout, *sides)
    patched[position : position + len(packed)] = packed
    return bytes(patched)
