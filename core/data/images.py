"""Decoding untrusted image files: a few allowed formats, a pixel cap, RGB out, errors that name the file.

Pillow opens dozens of formats (some with decoder CVEs) and only warns below 2x its bomb limit, so every real-data
path decodes through :func:`decode_image`, which checks the header size before decoding anything.
"""

from __future__ import annotations

import io
import os

from PIL import Image, ImageOps

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF")
MAX_PIXELS = 50_000_000  # ~7000 x 7000; far above any benchmark image, far below a decompression bomb


class BadImage(ValueError):
    """One image cannot be used; ``name`` says which file or row."""

    def __init__(self, name: str, why: str):
        super().__init__(f"{name}: {why}")
        self.name, self.why = name, why


def is_image_name(name: str) -> bool:
    """By extension, ignoring hidden and macOS junk (``.DS_Store``, ``._x.jpg``); content is checked on decode."""
    base = os.path.basename(name)
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def decode_image(src, name: str, max_pixels: int = MAX_PIXELS, draft: int | None = None) -> Image.Image:
    """An upright RGB image from a path or bytes, or :class:`BadImage`. ``draft`` lets JPEG decode at low size."""
    try:
        fp = io.BytesIO(src) if isinstance(src, (bytes, bytearray, memoryview)) else src
        with Image.open(fp, formats=ALLOWED_FORMATS) as im:
            w, h = im.size
            if w < 1 or h < 1 or w * h > max_pixels:
                raise BadImage(name, f"{w}x{h} pixels is outside the allowed 1..{max_pixels} pixels")
            if draft:
                im.draft("RGB", (draft, draft))
            im.load()
            im = ImageOps.exif_transpose(im)
            return im.convert("RGB")
    except BadImage:
        raise
    except Image.UnidentifiedImageError:
        raise BadImage(name, f"not an image in an allowed format ({', '.join(ALLOWED_FORMATS)})") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise BadImage(name, f"cannot be decoded ({type(e).__name__}: {e})") from None
