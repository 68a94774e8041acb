"""A decoded upload's colours made storable: 8-bit RGB on white, a fitting profile."""

from __future__ import annotations

import io
from typing import cast

import PIL.Image
import PIL.ImageCms

_HIGH_BIT_DEPTH = frozenset({'I', 'F', 'I;16', 'I;16L', 'I;16B', 'I;16N'})
_ALPHA = frozenset({'RGBA', 'RGBa', 'LA', 'La', 'PA'})


def to_rgb(image: PIL.Image.Image) -> tuple[PIL.Image.Image, bytes | None]:
    """Return the image as RGB on white, and the colour profile to embed."""
    icc_profile = image.info.get('icc_profile')
    if image.mode in _HIGH_BIT_DEPTH:
        image = _to_8bit(image)

    # Each conversion is a full copy of the picture: make only those needed.
    if image.mode in _ALPHA or 'transparency' in image.info:
        rgba = image if image.mode == 'RGBA' else image.convert('RGBA')
        rgb = PIL.Image.new('RGB', rgba.size, 'white')
        rgb.paste(rgba, mask=rgba.getchannel('A'))
    else:
        rgb = image if image.mode == 'RGB' else image.convert('RGB')
    # A profile describes the colours it came with; only an RGB one still fits
    # them once they are RGB (a CMYK or grey profile would now mislead).
    return rgb, icc_profile if _is_rgb_profile(icc_profile) else None


def _to_8bit(image: PIL.Image.Image) -> PIL.Image.Image:
    """Scale 16-bit, 32-bit and floating-point greys to 8 bits."""
    if image.mode.startswith('I;16'):
        return image.convert('I').point(lambda value: value / 256).convert('L')
    # These modes have one band: one (lowest, highest) pair, not one a band.
    low, high = cast(tuple[float, float], image.getextrema())
    if image.mode == 'F' and low >= 0 and high <= 1:
        scaled = image.point(lambda value: value * 255)
    elif low >= 0 and high <= 255:
        scaled = image
    elif low >= 0 and high <= 65535:
        scaled = image.point(lambda value: value / 256)
    else:
        # Values of no known range: stretch what is there over 0-255.
        scale = 255 / (high - low) if high > low else 0
        scaled = image.point(lambda value: (value - low) * scale)
    return scaled.convert('L')


def _is_rgb_profile(icc_profile: bytes | None) -> bool:
    if not icc_profile:
        return False
    try:
        profile = PIL.ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    except (PIL.ImageCms.PyCMSError, OSError, ValueError):
        return False
    return profile.profile.xcolor_space.strip() == 'RGB'
