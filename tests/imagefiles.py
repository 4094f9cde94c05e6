"""Small image files, good, odd and broken, that the data tests write into tmp_path.

Every writer takes the target path and returns it, so a test reads as
``imagefiles.truncated_jpeg(cls / 'b.jpg')``.
"""

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Colours of the four quadrants of the 108x108 face crop in a fake CelebA photo, and of what
# lies outside it; a correct centred crop shows the quadrants in the output's corners.
QUADRANTS = {
    "top_left": (220, 30, 30),
    "top_right": (30, 200, 40),
    "bottom_left": (30, 60, 220),
    "bottom_right": (240, 240, 240),
}
OUTSIDE = (0, 0, 0)
CELEBA_SIZE = (178, 218)  # width, height of the aligned CelebA images
CELEBA_CROP = (35, 55, 143, 163)  # the centred 108x108 square inside them


def _pixels(size, channels, seed=0):
    """A smooth gradient plus noise: a non-constant picture that JPEG keeps recognisable."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    base = [
        (x * 255 // max(w - 1, 1)),
        (y * 255 // max(h - 1, 1)),
        ((x + y) * 127 // max(w + h - 2, 1)),
    ]
    a = np.stack(base[:channels] if channels <= 3 else base + [np.full_like(x, 255)], axis=-1)
    a = a + rng.integers(-10, 11, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def _parent(path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def rgb_image(path, size=(40, 40), seed=0, **save):
    """An ordinary RGB picture; the format follows the file extension."""
    path = _parent(path)
    Image.fromarray(_pixels(size, 3, seed)).save(path, **save)
    return path


def grayscale_png(path, size=(40, 40)):
    path = _parent(path)
    Image.fromarray(_pixels(size, 3)[..., 0], mode="L").save(path)
    return path


def palette_png(path, size=(40, 40)):
    """Mode 'P' with a transparent palette entry (the loader warns, then converts)."""
    path = _parent(path)
    im = Image.fromarray(_pixels(size, 3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    im.save(path, transparency=0)
    return path


def rgba_png(path, size=(40, 40)):
    path = _parent(path)
    a = _pixels(size, 3)
    alpha = np.full(a.shape[:2] + (1,), 128, np.uint8)
    Image.fromarray(np.concatenate([a, alpha], axis=-1), mode="RGBA").save(path)
    return path


def la_png(path, size=(40, 40)):
    path = _parent(path)
    Image.fromarray(_pixels(size, 3)[..., :1].repeat(2, axis=-1), mode="LA").save(path)
    return path


def cmyk_jpeg(path, size=(40, 40)):
    path = _parent(path)
    Image.fromarray(_pixels(size, 3)).convert("CMYK").save(path, quality=95)
    return path


def sixteen_bit_png(path, size=(40, 40)):
    """A 16-bit greyscale ramp over the full 0..65535 range (PIL mode 'I;16')."""
    path = _parent(path)
    w, h = size
    ramp = np.linspace(0, 65535, w * h).reshape(h, w).astype(np.uint16)
    Image.fromarray(ramp).save(path)
    return path


def flat_jpeg(path, size=(4000, 4000), colour=(90, 140, 200)):
    """A large flat-colour JPEG: big in pixels, tiny on disk and quick to decode."""
    path = _parent(path)
    Image.new("RGB", size, colour).save(path, quality=90)
    return path


def zero_bytes(path):
    path = _parent(path)
    path.write_bytes(b"")
    return path


def truncated_jpeg(path, size=(40, 40)):
    """The first half of a valid JPEG, as an interrupted download leaves it."""
    path = _parent(path)
    buf = io.BytesIO()
    Image.fromarray(_pixels(size, 3)).save(buf, format="JPEG", quality=95)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def truncated_png(path, size=(40, 40)):
    path = _parent(path)
    buf = io.BytesIO()
    Image.fromarray(_pixels(size, 3)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def text_as_jpg(path):
    """A text file wearing an image extension."""
    path = _parent(path)
    path.write_text("this is a note, not a picture\n")
    return path


def celeba_photo(index=1):
    """A fake aligned CelebA photo (178x218 RGB): black outside the centred 108x108 crop, four
    coloured quadrants inside it, and a face-like blob (skin ellipse, dark eyes) in the middle
    whose skin brightness encodes ``index`` (100 + 10 * index, for index up to 15)."""
    im = Image.new("RGB", CELEBA_SIZE, OUTSIDE)
    d = ImageDraw.Draw(im)
    left, t, r, b = CELEBA_CROP
    mx, my = (left + r) // 2, (t + b) // 2
    d.rectangle((left, t, mx - 1, my - 1), fill=QUADRANTS["top_left"])
    d.rectangle((mx, t, r - 1, my - 1), fill=QUADRANTS["top_right"])
    d.rectangle((left, my, mx - 1, b - 1), fill=QUADRANTS["bottom_left"])
    d.rectangle((mx, my, r - 1, b - 1), fill=QUADRANTS["bottom_right"])
    skin = 100 + 10 * index
    d.ellipse((mx - 38, my - 46, mx + 38, my + 46), fill=(skin, skin - 30, skin - 60))
    d.ellipse((mx - 22, my - 16, mx - 10, my - 8), fill=(20, 20, 20))
    d.ellipse((mx + 10, my - 16, mx + 22, my - 8), fill=(20, 20, 20))
    return im


def celeba_skin(index):
    """The skin colour ``celeba_photo(index)`` uses at the centre of the face."""
    skin = 100 + 10 * index
    return (skin, skin - 30, skin - 60)


def _jpeg_bytes(im):
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=98)
    return buf.getvalue()


def fake_celeba_zip(path, n=12, truncated=(13,), not_image=()):
    """A small stand-in for img_align_celeba.zip: ``img_align_celeba/000001.jpg`` ... n good
    photos, plus members numbered in ``truncated`` (half a JPEG) and ``not_image`` (text)."""
    path = _parent(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(1, n + 1):
            zf.writestr(f"img_align_celeba/{i:06d}.jpg", _jpeg_bytes(celeba_photo(i)))
        for i in truncated:
            data = _jpeg_bytes(celeba_photo(1))
            zf.writestr(f"img_align_celeba/{i:06d}.jpg", data[: len(data) // 2])
        for i in not_image:
            zf.writestr(f"img_align_celeba/{i:06d}.jpg", b"not a jpeg at all")
        zf.writestr("img_align_celeba/readme.txt", "not an image")
    return path


def extract_zip(zip_path, dest):
    """Extract a zip (the way a user unzips the download) and return ``dest``."""
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return Path(dest)


def corrupt_member_crc(zip_path, member):
    """Flip a byte inside a stored member's data, so reading it fails the zip's CRC check."""
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(member)
    raw = bytearray(Path(zip_path).read_bytes())
    # Local header: 30 bytes + name + extra, then the (stored, uncompressed) data.
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.file_size // 2] ^= 0xFF
    Path(zip_path).write_bytes(bytes(raw))
