"""Turn the official CelebA download into the notebook's training folder (step "Get the data").

CelebA's ``img_align_celeba.zip`` holds 202,599 aligned 178x218 JPEGs in ``img_align_celeba/``.
``prepare_celeba`` crops the face out of each, resizes it to 64x64 and writes
``processed_celeba_small/celeba/000001.jpg ...``: the layout of Udacity's processed_celeba_small,
which ``helpers.data.find_data_dir`` and ``ImageFolder`` read directly.

    python -m helpers data prepare-celeba img_align_celeba.zip
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from helpers.files import (
    NoSpaceError,
    NotWritableError,
    atomic_write,
    check_positive_int,
    check_writable_folder,
    is_no_space,
    no_space_message,
    write_text_atomic,
)
from helpers.imagefile import DataFolderError, describe_read_error, eight_bit

__all__ = [
    "ALIGNED_SIZE",
    "CLASS_NAME",
    "CROP",
    "JPEG_QUALITY",
    "NO_SPACE",
    "SETTINGS_FILE",
    "crop_box",
    "format_summary",
    "is_aligned_size",
    "list_celeba_images",
    "prepare_celeba",
]

# What _Job returns for one image: (output name, '' or why it failed, odd source size or None)
_Result = tuple[str, str, tuple[int, int] | None]

# The aligned images put the eyes at the same place in every photo and the face in the middle.
# A centred 108x108 square (of 178x218) keeps brows to chin and drops most hair and background;
# it is the crop most DCGAN-on-CelebA code uses (e.g. the well-known DCGAN-tensorflow), and a
# 138 crop would spend a third of each 64x64 image on hair and background.
CROP = 108
ALIGNED_SIZE = (178, 218)  # width, height of the aligned images; the crop scales with the width
JPEG_QUALITY = 95  # high enough that JPEG blocks do not become something the GAN learns
CLASS_NAME = "celeba"  # the single ImageFolder class folder, as in Udacity's zip
_JPEG = re.compile(r".*\.jpe?g$", re.IGNORECASE)
NO_SPACE = "no space left on device"  # a _Job result that stops the run: not the image's fault
_CHUNK = 64  # images per task sent to a worker: amortises the inter-process hop
# In OUT: the settings the images were made with. ImageFolder lists only folders there.
SETTINGS_FILE = ".kit_prepare.json"


def _is_listed_image(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    # Skip macOS debris (__MACOSX/, ._000001.jpg) that zips made on a Mac carry along.
    return bool(_JPEG.match(parts[-1])) and not any(
        p.startswith(".") or p == "__MACOSX" for p in parts
    )


def list_celeba_images(source: str | os.PathLike) -> tuple[str, list[str]]:
    """Find the CelebA JPEGs in ``source``.

    Returns ``('zip', member names)`` for a zip, or ``('folder', file paths)`` for a folder
    holding the JPEGs or an ``img_align_celeba/`` folder; both sorted by file name. Raises
    ``FileNotFoundError`` for a missing source and ``DataFolderError`` when it holds no JPEGs.
    """
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(
            f"{source} does not exist (looked in {src.absolute()}). Download img_align_celeba.zip "
            "from the CelebA page (see 'Real CelebA' in README.md or docs/data.md) and pass "
            "its path."
        )
    if src.is_file():
        try:
            with zipfile.ZipFile(src) as zf:
                names = [n for n in zf.namelist() if _is_listed_image(n)]
        except zipfile.BadZipFile:
            raise DataFolderError(
                f"{source} is not a readable zip file (damaged or incomplete download?). "
                "Download img_align_celeba.zip again, or pass the folder it was extracted to."
            ) from None
        # Prefer the official folder when the zip holds other JPEGs too.
        official = [n for n in names if "/img_align_celeba/" in "/" + n]
        names = official or names
        kind = "zip"
    else:
        folder = src / "img_align_celeba" if (src / "img_align_celeba").is_dir() else src
        names = [str(p) for p in folder.iterdir() if p.is_file() and _is_listed_image(p.name)]
        kind = "folder"
    if not names:
        raise DataFolderError(
            f"No JPEG images found in {source}. Expected the official img_align_celeba.zip "
            "(img_align_celeba/000001.jpg ...) or the folder it was extracted to."
        )
    names.sort(key=lambda n: (os.path.basename(n), n))
    return kind, names


def crop_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The centred square (left, top, right, bottom) kept from a ``width`` x ``height`` photo.

    The square's side is 108/178 of the width, as on the full-size aligned images, so any copy of
    a photo at another scale gives the same picture: 178x218 -> (35, 55, 143, 163), the half-size
    89x109 -> (17.5, 27.5, 71.5, 81.5). Never larger than the photo's shorter side.
    """
    side = min(width * CROP / ALIGNED_SIZE[0], width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def is_aligned_size(width: int, height: int) -> bool:
    """True for the aligned CelebA proportions (178x218, or a scaled copy such as 89x109)."""
    return abs(height * ALIGNED_SIZE[0] - width * ALIGNED_SIZE[1]) <= ALIGNED_SIZE[0]


def _out_name(name: str) -> str:
    return os.path.splitext(os.path.basename(name))[0] + ".jpg"


class _Job:
    """Converts one source image; each worker process holds one, with its own open zip."""

    def __init__(self, kind: str, source: str, out_dir: str, size: int):
        self.kind, self.source, self.out_dir, self.size = kind, source, Path(out_dir), size
        self._zip: zipfile.ZipFile | None = None

    def _read(self, name: str) -> bytes:
        if self.kind == "folder":
            return Path(name).read_bytes()
        if self._zip is None:  # opened lazily, in the worker: zip handles must not be shared
            self._zip = zipfile.ZipFile(self.source)
        return self._zip.read(name)

    def __call__(self, name: str) -> tuple[str, str, tuple[int, int] | None]:
        """Write one output image; returns (output name, '' or the reason it failed, the source
        size when it is not the aligned CelebA proportions, else None)."""
        out_name = _out_name(name)
        try:
            data = self._read(name)
        except Exception as exc:  # bad CRC, broken deflate stream, unreadable file
            return (
                out_name,
                f"damaged in the {'zip' if self.kind == 'zip' else 'folder'} "
                f"({describe_read_error(exc, 'JPEG')})",
                None,
            )
        if not data:
            return out_name, "empty file", None
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()  # decode fully now, so a truncated file fails here, not half-written
                # 16-bit and float images: convert('RGB') would clip them to white
                rgb = eight_bit(im).convert("RGB")
            # Crop and resize in one LANCZOS pass: sharp 64x64 faces without aliasing.
            small = rgb.resize(
                (self.size, self.size), Image.Resampling.LANCZOS, box=crop_box(*rgb.size)
            )
        except Exception as exc:
            return out_name, describe_read_error(exc, "JPEG"), None
        odd = None if is_aligned_size(*rgb.size) else rgb.size
        try:
            # A hidden temporary name, then a rename: an interrupted run never leaves half a
            # JPEG that a rerun would take as finished.
            with atomic_write(self.out_dir / out_name, "wb") as f:
                small.save(f, format="JPEG", quality=JPEG_QUALITY)
        except OSError as exc:  # the output folder, not the image: a full disk stops the run
            if is_no_space(exc):
                return out_name, NO_SPACE, odd
            return out_name, f"cannot be written ({exc.strerror or exc})", odd
        return out_name, "", odd

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None


_WORKER_JOB: _Job | None = None


def _init_worker(kind: str, source: str, out_dir: str, size: int) -> None:
    global _WORKER_JOB
    _WORKER_JOB = _Job(kind, source, out_dir, size)


def _run_chunk(names: list[str]) -> list[tuple[str, str, tuple[int, int] | None]]:
    assert _WORKER_JOB is not None  # _init_worker made it when the pool started this worker
    return [_WORKER_JOB(n) for n in names]


def format_summary(summary: dict[str, Any]) -> str:
    """'written 1,000, skipped 0 (already done), failed 2: 000017.jpg (truncated JPEG), ...'"""
    text = (
        f"written {summary['written']:,}, skipped {summary['skipped']:,} (already done), "
        f"failed {summary['failed']:,}"
    )
    if summary["failed_files"]:
        shown = [f"{n} ({why})" for n, why in summary["failed_files"][:5]]
        more = ", ..." if summary["failed"] > 5 else ""
        text += ": " + ", ".join(shown) + more
    return text


def _remove_temp_files(out_dir: Path) -> None:
    """Our hidden temporary files (.NAME.XXXX.tmp) from an interrupted or failed run."""
    for p in out_dir.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)


def _check_writable(out_dir: Path, shown: str) -> None:
    """Fail before any work when the output folder cannot be made or written."""
    try:
        check_writable_folder(out_dir, "--out")
    except NoSpaceError:
        raise NoSpaceError(no_space_message(out_dir, 2**20)) from None
    except NotWritableError as exc:
        raise DataFolderError(str(exc).replace(str(out_dir), shown, 1)) from None


def _check_settings(out_dir: Path, size: int, shown: str) -> None:
    """Refuse to add ``size`` images to a folder of another size (a mix would not train), and
    record the size the first time."""
    marker = out_dir.parent / SETTINGS_FILE
    try:
        made = json.loads(marker.read_text()).get("size")
    except (OSError, ValueError, AttributeError):
        made = None
    if made is None:  # an older run, or a folder of someone else's images: look at one
        first = next((p for p in sorted(out_dir.glob("*.jpg")) if p.is_file()), None)
        if first is not None:
            with contextlib.suppress(OSError, ValueError), Image.open(first) as im:
                made = im.size[0] if im.size[0] == im.size[1] else None
    if made is not None and made != size:
        raise DataFolderError(
            f"{shown}/{CLASS_NAME} holds {made}x{made} images from an earlier run; adding "
            f"{size}x{size} ones would mix two sizes. Use another --out for --size {size}, or "
            f"delete {shown}/{CLASS_NAME} and run again (or rerun with --size {made})."
        )
    if made is None:
        write_text_atomic(marker, json.dumps({"size": size, "crop": CROP}) + "\n")


def _default_out() -> Path:
    """The notebook's data folder, in the kit's folder: where the notebook looks, from any
    working directory (the notebook works from the kit's folder)."""
    from helpers import KIT_DIR

    return KIT_DIR / "processed_celeba_small"


def _bytes_per_image(out_dir: Path, size: int) -> int:
    """Average size of the JPEGs already in out_dir (a 64x64 face is about 3 KB)."""
    sizes = [p.stat().st_size for _, p in zip(range(200), out_dir.glob("*.jpg"))]
    return int(sum(sizes) / len(sizes)) if sizes else size * size


def _odd_size_warning(odd: list[tuple[str, tuple[int, int]]]) -> str:
    name, (w, h) = odd[0]
    return (
        f"Warning: {len(odd):,} image(s) are not in the aligned CelebA proportions "
        f"(178x218, or a scaled copy such as 89x109), e.g. {name} is {w}x{h}. They were "
        f"cropped the same way (a centred square 108/178 of the width): check that their "
        f"faces are framed as you expect."
    )


def prepare_celeba(
    source: str | os.PathLike,
    out: str | os.PathLike | None = None,
    size: int = 64,
    limit: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out/celeba/NNNNNN.jpg``: ``size`` x ``size`` RGB face crops of CelebA.

    ``source`` is the official ``img_align_celeba.zip`` (read member by member, never extracted)
    or the folder it was extracted to; ``out`` defaults to the kit's own
    ``processed_celeba_small`` (where the notebook looks, whatever the working directory). Each
    image is centre-cropped to a square 108/178 of its
    width (108x108 of the 178x218 originals, 54x54 of a half-size copy; ``crop_box``), resized
    with LANCZOS and saved as JPEG quality 95 under its original number. ``limit`` keeps the
    first N in name order; ``workers`` processes share the work (default: all cores). Images
    already in ``out/celeba`` are skipped, so a rerun finishes an interrupted run; a rerun with
    another ``size`` is refused with ``DataFolderError`` (it would mix sizes). 16-bit and float
    images are scaled to 8 bits, never clipped to white. Unreadable
    images are counted, never fatal; images of other proportions get one warning. A full disk
    stops the run with ``NoSpaceError`` ("No space left on device while writing OUT/celeba; free
    N MB and rerun"); the
    images written so far are kept and no temporary file is left.

    Returns ``{'written': int, 'skipped': int, 'failed': int, 'failed_files': [(name, reason)],
    'odd_sizes': [(name, (width, height))]}`` and, with ``progress``, shows a tqdm bar and prints
    that summary. Serves the notebook step "Get the data" (docs/data.md, 'Real CelebA').
    """
    check_positive_int(size, "size (pixels; 64 is the DCGAN size)", minimum=8)
    if limit is not None:
        check_positive_int(limit, "limit (images)")
    if workers is not None:
        check_positive_int(workers, "workers (or None for one per CPU core)")
    kind, names = list_celeba_images(source)
    if limit is not None:
        names = names[:limit]

    out = _default_out() if out is None else Path(out)
    if out.exists() and not out.is_dir():
        raise DataFolderError(
            f"--out {out} is a file, not a folder: choose a folder (it is made if missing)."
        )
    out_dir = out / CLASS_NAME
    _check_writable(out_dir, str(out))
    _check_settings(out_dir, size, str(out))
    _remove_temp_files(out_dir)  # our leftovers from an interrupted run
    done = {p.name for p in out_dir.iterdir()}
    todo = [n for n in names if _out_name(n) not in done]
    summary: dict[str, Any] = {
        "written": 0,
        "skipped": len(names) - len(todo),
        "failed": 0,
        "failed_files": [],
        "odd_sizes": [],
    }

    from tqdm.auto import tqdm

    if workers is None:  # a pool pays off only once there are a few chunks to share
        workers = (os.cpu_count() or 1) if len(todo) >= 2 * _CHUNK else 1
    n_workers = max(1, min(workers, len(todo)))
    step = max(1, min(_CHUNK, len(todo) // n_workers))
    chunks = [todo[i : i + step] for i in range(0, len(todo), step)]
    args = (kind, str(source), str(out_dir), size)
    pool = None
    chunk_results: Iterator[list[_Result]]
    if n_workers > 1:
        import multiprocessing

        pool = multiprocessing.Pool(n_workers, initializer=_init_worker, initargs=args)
        chunk_results = pool.imap_unordered(_run_chunk, chunks)
    else:
        job = _Job(*args)
        chunk_results = ([job(n)] for n in todo)
    full = False
    try:
        with tqdm(
            total=len(todo), desc="Preparing CelebA", unit="img", disable=not progress
        ) as bar:
            for chunk in chunk_results:
                for out_name, why, odd in chunk:
                    if odd:
                        summary["odd_sizes"].append((out_name, odd))
                    if why == NO_SPACE:
                        full = True
                    elif why:
                        summary["failed"] += 1
                        summary["failed_files"].append((out_name, why))
                    else:
                        summary["written"] += 1
                bar.update(len(chunk))
                if full:
                    break
    finally:
        if pool is None:
            job.close()
        else:
            # On Ctrl-C (or a full disk) stop the workers at once; finished images are kept
            # (each was renamed into place whole), so a rerun carries on from there.
            pool.terminate()
            pool.join()
        _remove_temp_files(out_dir)  # what the stopped workers were writing
    if full:
        left = len(todo) - summary["written"] - summary["failed"]
        needed = left * _bytes_per_image(out_dir, size)
        raise NoSpaceError(
            f"{no_space_message(out_dir, needed)} (the {left:,} images still to do; or use --out "
            f"on another disk). Run the same command again: the "
            f"{summary['written'] + summary['skipped']:,} images already written are kept."
        )
    summary["failed_files"].sort()
    summary["odd_sizes"].sort()
    if progress:
        print(f"{out_dir}: {format_summary(summary)}")
        if summary["odd_sizes"]:
            print(_odd_size_warning(summary["odd_sizes"]))
    return summary
