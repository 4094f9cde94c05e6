"""Turn the official CelebA download into the notebook's training folder (step "Get the data").

CelebA's ``img_align_celeba.zip`` holds 202,599 aligned 178x218 JPEGs in ``img_align_celeba/``.
``prepare_celeba`` crops the face out of each, resizes it to 64x64 and writes
``processed_celeba_small/celeba/000001.jpg ...``: the layout of Udacity's processed_celeba_small,
which ``helpers.data.find_data_dir`` and ``ImageFolder`` read directly.

    python -m helpers data prepare-celeba img_align_celeba.zip
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

from PIL import Image

from helpers.imagefile import DataFolderError, describe_read_error

# The aligned images put the eyes at the same place in every photo and the face in the middle.
# A centred 108x108 square (of 178x218) keeps brows to chin and drops most hair and background;
# it is the crop most DCGAN-on-CelebA code uses (e.g. the well-known DCGAN-tensorflow), and a
# 138 crop would spend a third of each 64x64 image on hair and background.
CROP = 108
JPEG_QUALITY = 95       # high enough that JPEG blocks do not become something the GAN learns
CLASS_NAME = 'celeba'   # the single ImageFolder class folder, as in Udacity's zip
_JPEG = re.compile(r'.*\.jpe?g$', re.IGNORECASE)
_CHUNK = 64             # images per task sent to a worker: amortises the inter-process hop


def _is_listed_image(name: str) -> bool:
    parts = name.replace('\\', '/').split('/')
    # Skip macOS debris (__MACOSX/, ._000001.jpg) that zips made on a Mac carry along.
    return bool(_JPEG.match(parts[-1])) and not any(p.startswith('.') or p == '__MACOSX'
                                                     for p in parts)


def list_celeba_images(source: str | os.PathLike) -> tuple[str, list[str]]:
    """Find the CelebA JPEGs in ``source``.

    Returns ``('zip', member names)`` for a zip, or ``('folder', file paths)`` for a folder
    holding the JPEGs or an ``img_align_celeba/`` folder; both sorted by file name. Raises
    ``FileNotFoundError`` for a missing source and ``DataFolderError`` when it holds no JPEGs.
    """
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(
            f'{source} does not exist (looked in {src.absolute()}). Download img_align_celeba.zip '
            "from the CelebA page (see README 'Real CelebA') and pass its path.")
    if src.is_file():
        try:
            with zipfile.ZipFile(src) as zf:
                names = [n for n in zf.namelist() if _is_listed_image(n)]
        except zipfile.BadZipFile:
            raise DataFolderError(
                f'{source} is not a readable zip file (damaged or incomplete download?). '
                'Download img_align_celeba.zip again, or pass the folder it was extracted to.'
            ) from None
        # Prefer the official folder when the zip holds other JPEGs too.
        official = [n for n in names if '/img_align_celeba/' in '/' + n]
        names = official or names
        kind = 'zip'
    else:
        folder = src / 'img_align_celeba' if (src / 'img_align_celeba').is_dir() else src
        names = [str(p) for p in folder.iterdir() if p.is_file() and _is_listed_image(p.name)]
        kind = 'folder'
    if not names:
        raise DataFolderError(
            f'No JPEG images found in {source}. Expected the official img_align_celeba.zip '
            '(img_align_celeba/000001.jpg ...) or the folder it was extracted to.')
    names.sort(key=lambda n: (os.path.basename(n), n))
    return kind, names


def crop_box(width: int, height: int, crop: int = CROP) -> tuple[int, int, int, int]:
    """The centred square (left, top, right, bottom) kept from a ``width`` x ``height`` photo.

    178x218 (aligned CelebA) -> (35, 55, 143, 163). Smaller photos keep their largest centred square.
    """
    side = min(crop, width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _out_name(name: str) -> str:
    return os.path.splitext(os.path.basename(name))[0] + '.jpg'


class _Job:
    """Converts one source image; each worker process holds one, with its own open zip."""

    def __init__(self, kind: str, source: str, out_dir: str, size: int):
        self.kind, self.source, self.out_dir, self.size = kind, source, Path(out_dir), size
        self._zip = None

    def _read(self, name: str) -> bytes:
        if self.kind == 'folder':
            return Path(name).read_bytes()
        if self._zip is None:  # opened lazily, in the worker: zip handles must not be shared
            self._zip = zipfile.ZipFile(self.source)
        return self._zip.read(name)

    def __call__(self, name: str) -> tuple[str, str]:
        """Write one output image; returns (output name, '' or the reason it failed)."""
        out_name = _out_name(name)
        try:
            data = self._read(name)
        except Exception as exc:  # bad CRC, broken deflate stream, unreadable file
            return out_name, f'damaged in the {"zip" if self.kind == "zip" else "folder"} ' \
                             f'({describe_read_error(exc, "JPEG")})'
        if not data:
            return out_name, 'empty file'
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()  # decode fully now, so a truncated file fails here, not half-written
                rgb = im.convert('RGB')
            # Crop and resize in one LANCZOS pass: sharp 64x64 faces without aliasing.
            small = rgb.resize((self.size, self.size), Image.Resampling.LANCZOS,
                               box=crop_box(*rgb.size))
            dest = self.out_dir / out_name
            # Write under a hidden temporary name, then rename: an interrupted run never leaves
            # half a JPEG that a rerun would take as finished.
            tmp = self.out_dir / f'.{out_name}.{os.getpid()}.tmp'
            small.save(tmp, format='JPEG', quality=JPEG_QUALITY)
            os.replace(tmp, dest)
        except Exception as exc:
            return out_name, describe_read_error(exc, 'JPEG')
        return out_name, ''

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None


_WORKER_JOB: _Job | None = None


def _init_worker(kind: str, source: str, out_dir: str, size: int) -> None:
    global _WORKER_JOB
    _WORKER_JOB = _Job(kind, source, out_dir, size)


def _run_chunk(names: list[str]) -> list[tuple[str, str]]:
    return [_WORKER_JOB(n) for n in names]


def format_summary(summary: dict) -> str:
    """'written 1,000, skipped 0 (already done), failed 2: 000017.jpg (truncated JPEG), ...'"""
    text = (f"written {summary['written']:,}, skipped {summary['skipped']:,} (already done), "
            f"failed {summary['failed']:,}")
    if summary['failed_files']:
        shown = [f'{n} ({why})' for n, why in summary['failed_files'][:5]]
        more = ', ...' if summary['failed'] > 5 else ''
        text += ': ' + ', '.join(shown) + more
    return text


def prepare_celeba(source: str | os.PathLike, out: str | os.PathLike = 'processed_celeba_small',
                   size: int = 64, limit: int | None = None, workers: int | None = None,
                   progress: bool = True) -> dict:
    """Write ``out/celeba/NNNNNN.jpg``: ``size`` x ``size`` RGB face crops of CelebA.

    ``source`` is the official ``img_align_celeba.zip`` (read member by member, never extracted)
    or the folder it was extracted to. Each image is centre-cropped to 108x108 (``crop_box``),
    resized with LANCZOS and saved as JPEG quality 95 under its original number. ``limit``
    keeps the first N in name order; ``workers`` processes share the work (default: all cores).
    Images already in ``out/celeba`` are skipped, so a rerun finishes an interrupted run.
    Unreadable images are counted, never fatal.

    Returns ``{'written': int, 'skipped': int, 'failed': int, 'failed_files': [(name, reason)]}``
    and, with ``progress``, shows a tqdm bar and prints that summary.
    Serves the notebook step "Get the data" (README 'Real CelebA').
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f'size must be a whole number of pixels, at least 8 (64 is the DCGAN '
                         f'size); got {size!r}.')
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f'limit must be a whole number of images, at least 1; got {limit!r}.')
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f'workers must be at least 1 (or None for one per CPU core); '
                         f'got {workers!r}.')
    kind, names = list_celeba_images(source)
    if limit is not None:
        names = names[:limit]

    out_dir = Path(out) / CLASS_NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    done = set()
    for p in out_dir.iterdir():
        if p.name.startswith('.') and p.name.endswith('.tmp'):
            p.unlink(missing_ok=True)  # our leftovers from an interrupted run
        else:
            done.add(p.name)
    todo = [n for n in names if _out_name(n) not in done]
    summary = {'written': 0, 'skipped': len(names) - len(todo), 'failed': 0, 'failed_files': []}

    from tqdm.auto import tqdm
    if workers is None:  # a pool pays off only once there are a few chunks to share
        workers = (os.cpu_count() or 1) if len(todo) >= 2 * _CHUNK else 1
    n_workers = max(1, min(workers, len(todo)))
    step = max(1, min(_CHUNK, len(todo) // n_workers))
    chunks = [todo[i:i + step] for i in range(0, len(todo), step)]
    args = (kind, str(source), str(out_dir), size)
    pool = None
    if n_workers > 1:
        import multiprocessing
        pool = multiprocessing.Pool(n_workers, initializer=_init_worker, initargs=args)
        chunk_results = pool.imap_unordered(_run_chunk, chunks)
    else:
        job = _Job(*args)
        chunk_results = ([job(n)] for n in todo)
    try:
        with tqdm(total=len(todo), desc='Preparing CelebA', unit='img',
                  disable=not progress) as bar:
            for chunk in chunk_results:
                for out_name, why in chunk:
                    if why:
                        summary['failed'] += 1
                        summary['failed_files'].append((out_name, why))
                    else:
                        summary['written'] += 1
                bar.update(len(chunk))
    finally:
        if pool is None:
            job.close()
        else:
            # On Ctrl-C stop the workers at once; finished images are kept (each was renamed
            # into place whole), so a rerun carries on from there.
            pool.terminate()
            pool.join()
    summary['failed_files'].sort()
    if progress:
        print(f'{out_dir}: {format_summary(summary)}')
    return summary
