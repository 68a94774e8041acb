"""Image files made in the tests: encoders for the formats users upload."""

import io

import PIL.Image


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
