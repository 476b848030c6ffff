"""Decoding untrusted image files: a few allowed formats, pixel budgets, small RGB out, errors that name the file.

Pillow opens dozens of formats (some with decoder CVEs) and only warns below 2x its bomb limit, so every real-data
path decodes through :func:`decode_image`. It checks the header size before decoding anything and reduces while
decoding (JPEG DCT scaling via ``draft``, then ``reduce``/resize) to what a CLIP needs, so a decoded image is at most
``side x 2*side`` pixels whatever the file: the memory of a batch follows from its length (:func:`rows_per_batch`).
"""

from __future__ import annotations

import io
import os

from PIL import ExifTags, Image

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF")
MAX_PIXELS = 50_000_000  # per image (header): ~7000 x 7000; far above any benchmark image, far below a bomb
MAX_ASPECT = 20  # longer side / shorter side: a 1 x 50M "image" would blow up when resized to a square
DECODE_SIDE = 448  # decoded short side at most this (2x CLIP's 224, above 336), long side at most twice it
VALIDATE_SIDE = 64  # the pre-flight check decodes every byte but keeps only this much
MAX_DATASET_PIXELS = 20_000_000_000  # pixels a dataset may make the decoder produce in its pre-flight check
BATCH_BYTES = 64 << 20  # decoded pixels held at once by a batched loader (validation, evaluation, previews)
MAX_BATCH_ROWS = 256
KEEP_MODES = ("RGB", "L", "RGBA", "LA", "I", "F")  # modes resized as they are; "1" goes to L, the rest to RGB
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


class BadImage(ValueError):
    """One image cannot be used; ``name`` says which file or row."""

    def __init__(self, name: str, why: str):
        super().__init__(f"{name}: {why}")
        self.name, self.why = name, why


def is_image_name(name: str) -> bool:
    """By extension, ignoring hidden and macOS junk (``.DS_Store``, ``._x.jpg``); content is checked on decode."""
    base = os.path.basename(name)
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def decoded_bytes(side: int = DECODE_SIDE) -> int:
    """The most bytes one decoded RGB image can hold at ``side`` (short side <= side, long side <= 2*side)."""
    return 2 * side * side * 3


def rows_per_batch(side: int = DECODE_SIDE, budget: int = BATCH_BYTES) -> int:
    """Batch length of a loader whose decoded images must fit in ``budget`` bytes: batches sized by bytes."""
    return max(1, min(MAX_BATCH_ROWS, budget // decoded_bytes(side)))


def target_size(w: int, h: int, side: int) -> tuple[int, int]:
    """(w, h) scaled down (never up) so that the short side is <= ``side`` and the long side <= ``2 * side``."""
    s = min(1.0, side / min(w, h), 2 * side / max(w, h))
    return max(1, round(w * s)), max(1, round(h * s))


def _reduced(im: Image.Image, side: int) -> Image.Image:
    """Decode ``im`` small: JPEG draft first (decodes at 1/2..1/8 scale), then box-reduce + bicubic to target."""
    target = target_size(*im.size, side)
    if target != im.size:
        im.draft(im.mode if im.mode in ("RGB", "L") else None, target)
    orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    im.load()
    decoded = im.size[0] * im.size[1]
    if im.mode not in KEEP_MODES:
        im = im.convert("L" if im.mode == "1" else "RGB")
    if im.size != target:
        im = im.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    if orientation in _TRANSPOSE:
        im = im.transpose(_TRANSPOSE[orientation])
    out = im.convert("RGB")
    out.info["decoded_pixels"] = decoded
    return out


def decode_image(src, name: str, max_pixels: int = MAX_PIXELS, side: int = DECODE_SIDE) -> Image.Image:
    """An upright RGB image (short side <= ``side``, long side <= 2x) from a path or bytes, or :class:`BadImage`.
    ``info["decoded_pixels"]`` is what the decoder produced (for a dataset's pixel budget)."""
    try:
        fp = io.BytesIO(src) if isinstance(src, (bytes, bytearray, memoryview)) else src
        with Image.open(fp, formats=ALLOWED_FORMATS) as im:
            w, h = im.size
            if w < 1 or h < 1 or w * h > max_pixels:
                raise BadImage(name, f"{w}x{h} pixels is outside the allowed 1..{max_pixels} pixels")
            if max(w, h) > MAX_ASPECT * min(w, h):
                raise BadImage(name, f"{w}x{h} is more elongated than {MAX_ASPECT}:1; crop it")
            return _reduced(im, int(side))
    except BadImage:
        raise
    except Image.UnidentifiedImageError:
        raise BadImage(name, f"not an image in an allowed format ({', '.join(ALLOWED_FORMATS)})") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise BadImage(name, f"cannot be decoded ({type(e).__name__}: {e})") from None
