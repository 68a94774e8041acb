"""A photo-like test picture: smooth light, edges and grain, as cameras make."""

import io
import random

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFilter


def photo(size: tuple[int, int] = (1920, 1080), seed: int = 1) -> bytes:
    """Return a JPEG (quality 90) of a deterministic photo-like scene."""
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
    grain = PIL.Image.effect_noise(size, 24).convert('RGB')
    scene = PIL.Image.blend(scene, grain, 0.12)
    output = io.BytesIO()
    scene.save(output, 'JPEG', quality=90)
    return output.getvalue()
