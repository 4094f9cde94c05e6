"""Reading and checking one image file: shared by helpers.data, helpers.celeba and
helpers.fastdata (notebook step "Get the data").

- ``check_image_file``: can ImageFolder's default loader use this file, and if not, why not.
- ``describe_read_error``: a read error as a short reason a learner can act on.
- ``to_8bit`` / ``eight_bit``: an 8-bit copy of a 16-bit or floating-point image (scaled, not
  clipped), as a file or as a PIL image.
- ``DataFolderError``: the data cannot be used as it is; the message says what to do.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from helpers.files import is_no_space

__all__ = [
    "HIGH_BIT_MODES",
    "DataFolderError",
    "DataFolderNotFoundError",
    "check_image_file",
    "describe_read_error",
    "eight_bit",
    "format_from_name",
    "to_8bit",
]

# Modes whose values go past 255 (or, for 'F', are floats): ImageFolder's loader
# (img.convert('RGB')) clips them, so a 16-bit photo would train as an almost white square and a
# float image in [0, 1] as a black one. They get an 8-bit copy in the clean view.
HIGH_BIT_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;16S", "I;32", "I;32B"}


class DataFolderError(ValueError):
    """The data folder cannot be used as it is; the message says what is wrong and how to fix it."""


class DataFolderNotFoundError(DataFolderError, FileNotFoundError):
    """The data folder does not exist (catchable as DataFolderError or FileNotFoundError)."""


def format_from_name(path: str | os.PathLike) -> str:
    """'JPEG', 'PNG', ... guessed from the file extension ('image' when unknown)."""
    ext = os.path.splitext(str(path))[1].lower()
    return {
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".png": "PNG",
        ".bmp": "BMP",
        ".webp": "WEBP",
        ".tif": "TIFF",
        ".tiff": "TIFF",
        ".ppm": "PPM",
        ".pgm": "PGM",
    }.get(ext, "image")


def describe_read_error(exc: BaseException, fmt: str = "image") -> str:
    """Turn a PIL/zip read error into a short reason a learner can act on.

    ``fmt`` is the format PIL reported (or guessed from the name), e.g. 'JPEG'. A full disk is
    never called a damaged file: callers that write check ``is_no_space`` first.
    """
    text = str(exc)
    low = text.lower()
    if is_no_space(exc):
        return "no space left on device"
    if isinstance(exc, Image.DecompressionBombError):
        return "too large: PIL refuses it as a possible decompression bomb"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (PIL cannot read it)"
    if isinstance(exc, PermissionError):
        return "cannot be opened (permission denied)"
    if isinstance(exc, FileNotFoundError):
        return "missing (a broken link?)"
    if "truncated" in low or isinstance(exc, EOFError):
        return f"truncated {fmt}"
    if "crc" in low:
        return f"damaged {fmt} (checksum mismatch)"
    short = text if len(text) <= 60 else text[:57] + "..."
    return f"damaged {fmt} ({type(exc).__name__}: {short})"


def check_image_file(path: str | os.PathLike) -> tuple[str, str]:
    """Say whether ImageFolder's default loader can use one file.

    Returns ``('ok', '')``, ``('convert', why)`` for an image the loader would silently spoil
    (16-bit and float modes: ``convert('RGB')`` clips them to white or black), or
    ``('bad', why)`` with a short reason such as ``'empty file'`` or ``'truncated JPEG'``.
    Opens the file with PIL twice: ``verify()`` (structure and checksums) then ``load()`` +
    ``convert('RGB')`` (the full decode the loader will do). Images above PIL's
    decompression-bomb limit are refused before any pixels are decoded.
    """
    fmt = format_from_name(path)
    try:
        if os.path.getsize(path) == 0:
            return "bad", "empty file"
        with warnings.catch_warnings():
            # Palette-transparency and large-image warnings are the loader's business; the
            # verdict here is only whether the decode succeeds.
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                fmt = im.format or fmt
                im.verify()
            with Image.open(path) as im:
                im.load()
                mode = im.mode
                im.convert("RGB")
    except Exception as exc:  # any failure to decode means the loader would fail too
        return "bad", describe_read_error(exc, fmt)
    if mode == "F":
        return "convert", "F (floating-point) image: an 8-bit copy scaled from its range is used"
    if mode in HIGH_BIT_MODES:
        return "convert", f"{mode} (high bit depth) image: an 8-bit copy is used"
    return "ok", ""


def _full_scale(mode: str, top: float) -> float:
    """The value that becomes 255 in the 8-bit copy."""
    if mode.startswith("I;16"):
        return 65535.0
    if mode == "F" and top <= 1.0:
        return 1.0  # float images usually hold [0, 1]: scaled by 255, not clipped to black
    if top <= 255:
        return 255.0
    return 65535.0 if top <= 65535 else float(top)


def eight_bit(im: Image.Image) -> Image.Image:
    """An 8-bit greyscale ('L') copy of a high-bit-depth or float PIL image, scaled, not clipped.

    16-bit images map 0..65535 to 0..255; float images holding [0, 1] map that range to 0..255.
    Other modes are returned as they are.
    """
    import numpy as np

    if im.mode not in HIGH_BIT_MODES:
        return im
    a = np.asarray(im.convert("F") if im.mode not in ("I", "F") else im, dtype=np.float64)
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    top = _full_scale(im.mode, float(a.max()) if a.size else 0.0)
    a8 = np.clip(np.round(a / top * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(a8, mode="L")


def to_8bit(path: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Write an 8-bit greyscale copy of a high-bit-depth or float image (``eight_bit``) to
    ``dest``, atomically."""
    from helpers.files import atomic_write

    dest = Path(dest)
    with Image.open(path) as im:
        small = eight_bit(im)
        with atomic_write(dest, "wb") as f:
            small.save(f, format=Image.registered_extensions().get(dest.suffix.lower(), "PNG"))
