"""The images the benchmarks upload and store, made here from a seed."""

from __future__ import annotations

import io
import math
import random

import PIL.Image
import PIL.ImageChops
import PIL.ImageDraw
import PIL.ImageFilter
import PIL.ImageStat

# The size of the images of filled storage directories (`bench.filling`).
SWATCH_SIZE = (640, 480)
_SWATCH_COLOURS = ['teal', 'darkorange', 'slateblue', 'olivedrab']


def encode(image: PIL.Image.Image, fmt: str, **params: int) -> bytes:
    """Return the bytes of image saved in fmt ('JPEG', 'PNG')."""
    output = io.BytesIO()
    image.save(output, fmt, **params)
    return output.getvalue()


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
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=_rgb(rng))
    scene = scene.filter(PIL.ImageFilter.GaussianBlur(3))
    grain = PIL.Image.frombytes('L', size, rng.randbytes(width * height))
    scene = PIL.Image.blend(scene, grain.convert('RGB'), 0.08)
    return encode(scene, 'JPEG', quality=90)


def swatch(number: int) -> bytes:
    """Return a 640x480 JPEG (quality 85), a different picture for each number."""
    image = PIL.Image.new(
        'RGB', SWATCH_SIZE, _SWATCH_COLOURS[number % len(_SWATCH_COLOURS)]
    )
    draw = PIL.ImageDraw.Draw(image)
    rng = random.Random(number)
    for _ in range(40):
        x, y = rng.randrange(SWATCH_SIZE[0]), rng.randrange(SWATCH_SIZE[1])
        draw.ellipse((x, y, x + 80, y + 60), fill=_rgb(rng))
    return encode(image, 'JPEG', quality=85)


def largest(pixels: int) -> bytes:
    """Return a 3:2 photo-like JPEG of at most `pixels` pixels: gradients, detail."""
    width = int((pixels * 3 / 2) ** 0.5)
    height = pixels // width
    small = (width // 16, height // 16)
    red = PIL.Image.linear_gradient('L').resize(small)
    green = red.transpose(PIL.Image.Transpose.ROTATE_90).resize(small)
    blue = PIL.Image.effect_noise(small, 64)
    picture = PIL.Image.merge('RGB', (red, green, blue)).resize((width, height))
    grain = PIL.Image.effect_noise((width, height), 24).convert('RGB')
    picture = PIL.ImageChops.add(picture, grain, scale=1.5)
    return encode(picture, 'JPEG', quality=85)


def small_png() -> bytes:
    """Return a 64x48 PNG of one colour: an upload that costs little."""
    return encode(PIL.Image.new('RGB', (64, 48), 'crimson'), 'PNG')


def ladder(size: tuple[int, int], minimum: int) -> list[tuple[int, int]]:
    """asgilook's thumbnail sizes: halvings while both sides reach minimum."""
    sizes = []
    factor = 2
    while size[0] // factor >= minimum and size[1] // factor >= minimum:
        sizes.append((size[0] // factor, size[1] // factor))
        factor *= 2
    return sizes


def decode(data: bytes) -> PIL.Image.Image:
    """Return the picture of an image file's bytes, as RGB."""
    with PIL.Image.open(io.BytesIO(data)) as image:
        return image.convert('RGB')


def psnr(image: PIL.Image.Image, reference: PIL.Image.Image) -> float:
    """Peak signal-to-noise ratio (dB) of an RGB image against reference."""
    difference = PIL.ImageChops.difference(image, reference)
    squared = PIL.ImageStat.Stat(difference).sum2
    mean = sum(squared) / (3 * image.width * image.height)
    return 10 * math.log10(255**2 / mean) if mean else math.inf


def _rgb(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)
