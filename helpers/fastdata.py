"""The fast data path for the notebook's "Train" step.

The learner's ``get_dataloader`` decodes, resizes and crops every image again in every epoch,
one batch at a time in the training process. For a 32x32 DCGAN that decoding costs about as
much as the training itself. Here the same transforms run **once**, on every core, and the
result is kept as one uint8 tensor (200,000 CelebA faces at 32x32 are 600 MB), cached on disk
and reused while the image folder is unchanged. ``FastLoader`` then serves shuffled batches
by indexing that tensor, on the GPU when there is one.

    loader = fast_dataloader(data_dir, img_size, batch_size, device)
    losses, samples = train(D, G, d_optimizer, g_optimizer, loader, n_epochs, z_size, device)

Batches are what ``get_dataloader`` gives: ``(images, labels)``, images float in [0, 1] of
shape (B, 3, S, S), so the learner's ``train`` runs unchanged on either loader.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from helpers.imagefile import describe_read_error

CACHE_VERSION = 1          # bump when the decoding below changes: old caches are then ignored
CACHE_PREFIX = '.kit_images_'  # a hidden *file* in the data folder, next to helpers.data's
# .kit_check.json. Not a folder: ImageFolder would take a folder there for an empty class.
DECODE_BATCH = 256         # images per worker task while decoding
POOL_MIN_IMAGES = 512      # below this, starting worker processes costs more than it saves


def learner_transform(image_size):
    """The notebook's get_dataloader transform without ToTensor: PIL image -> uint8 (3, S, S).

    ``transforms.PILToTensor`` keeps the 0..255 values that ``ToTensor`` divides by 255, so
    ``FastLoader``'s ``x.float() / 255`` gives exactly the learner's pixels.
    """
    return transforms.Compose([
        transforms.Resize(image_size),      # shorter side -> image_size, keeps the aspect ratio
        transforms.CenterCrop(image_size),  # then the central square
        transforms.PILToTensor(),           # (3, S, S) uint8
    ])


def _list_images(data_dir):
    """ImageFolder's own file listing of data_dir, as a list of paths (class order, sorted)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"The data folder {root} does not exist or is not a folder. Pass the folder that "
            f"helpers.data.find_data_dir returned (the one get_dataloader reads).")
    try:
        folder = datasets.ImageFolder(str(root))
    except (FileNotFoundError, OSError) as err:
        raise FileNotFoundError(
            f"ImageFolder finds no usable images in {root} ({err}). It expects "
            f"{root}/<class>/<image>; run python -m helpers.data check {root} to see why.") from err
    return [path for path, _ in folder.samples], folder.loader


def _fingerprint(paths, root, image_size):
    """A short hash of what the cache depends on: file names, sizes, modification times, size."""
    digest = hashlib.sha1(json.dumps([CACHE_VERSION, image_size]).encode())
    for path in paths:
        st = os.stat(path)  # follows the clean view's symlinks to the original files
        rel = os.path.relpath(path, root)
        digest.update(f'{rel}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())
    return digest.hexdigest()[:16]


def _default_cache_dir():
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'dcgan-face-kit'


def _cache_path(root, image_size, fingerprint, cache_dir):
    """Where the cache goes: the data folder itself, or cache_dir for a read-only folder."""
    name = f'{CACHE_PREFIX}{image_size}px_{fingerprint}.pt'
    if cache_dir is None and os.access(root, os.W_OK):
        return root / name
    folder = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    # One name per source folder, so two data folders never share (or delete) a cache.
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    return folder / f'{root.resolve().name}-{tag}{name}'


def _remove_stale(path, image_size):
    """Delete this folder's caches for the same image size that no longer match the files."""
    stem = path.name.rsplit(f'{CACHE_PREFIX}{image_size}px_', 1)[0]
    for old in path.parent.glob(f'{stem}{CACHE_PREFIX}{image_size}px_*.pt'):
        if old != path:
            old.unlink(missing_ok=True)


class _Decode(Dataset):
    """Decode + transform one image; returns (uint8 tensor, '' or why it failed).

    A failure is returned, not raised, so the learner sees one plain message naming the file
    instead of a traceback re-raised from a worker process.
    """

    def __init__(self, paths, loader, image_size):
        self.paths, self.loader, self.image_size = paths, loader, image_size
        self.transform = learner_transform(image_size)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            return self.transform(self.loader(self.paths[i])), ''
        except Exception as exc:  # any decode failure: report the file, keep the batch shape
            blank = torch.zeros(3, self.image_size, self.image_size, dtype=torch.uint8)
            return blank, f'{self.paths[i]}: {describe_read_error(exc)}'


def _decode_all(paths, loader, image_size, workers, progress, desc):
    """(N, 3, S, S) uint8 from the image files, decoded with `workers` processes."""
    from tqdm.auto import tqdm
    images = torch.empty(len(paths), 3, image_size, image_size, dtype=torch.uint8)
    if workers is None:
        workers = os.cpu_count() or 1
    if len(paths) < POOL_MIN_IMAGES:
        workers = 0
    batches = DataLoader(_Decode(paths, loader, image_size), batch_size=DECODE_BATCH,
                         shuffle=False, num_workers=workers)
    start, failed = 0, []
    with tqdm(total=len(paths), desc=desc, unit='img', disable=not progress) as bar:
        for batch, errors in batches:
            images[start:start + len(batch)] = batch
            failed += [e for e in errors if e]
            start += len(batch)
            bar.update(len(batch))
    if failed:
        more = f' (and {len(failed) - 3} more)' if len(failed) > 3 else ''
        raise ValueError(
            f"Could not read {len(failed)} image file(s): {'; '.join(failed[:3])}{more}. "
            f"Use the folder helpers.data.find_data_dir returns: it leaves unreadable files out.")
    return images


def _load(data_dir, image_size, limit=None, cache=True, progress=True, cache_dir=None,
          workers=None):
    """load_image_tensor, also returning {'n', 'cache', 'path', 'seconds'} for the summary line."""
    start = time.perf_counter()
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a whole number of pixels, e.g. 32; got {image_size!r}.")
    root = Path(data_dir)
    paths, loader = _list_images(root)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1 (or None for all images); got {limit!r}.")
        paths = paths[:limit]
    info = {'n': len(paths), 'cache': 'off', 'path': None}

    path = None
    if cache:
        path = _cache_path(root, image_size, _fingerprint(paths, root, image_size), cache_dir)
        info['path'] = path
        if path.is_file():
            try:
                images = torch.load(path, map_location='cpu', weights_only=True)
                if (isinstance(images, torch.Tensor) and images.dtype == torch.uint8
                        and tuple(images.shape) == (len(paths), 3, image_size, image_size)):
                    info.update(cache='hit', seconds=time.perf_counter() - start)
                    return images, info
            except Exception:  # a cache cut short or damaged: decode again and rewrite it
                pass
        info['cache'] = 'miss'

    images = _decode_all(paths, loader, image_size, workers, progress,
                         desc=f'Decoding {root} once at {image_size}x{image_size}')
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f'.tmp{os.getpid()}')
            torch.save(images, tmp)
            os.replace(tmp, path)  # never leave half a cache under the real name
            _remove_stale(path, image_size)
        except OSError:  # nowhere writable: still works, just decodes again next time
            info['cache'] = 'miss (not saved)'
    info['seconds'] = time.perf_counter() - start
    return images, info


def load_image_tensor(data_dir, image_size, limit=None, cache=True, progress=True):
    """Every image of data_dir, decoded once, as a uint8 tensor (N, 3, S, S) in [0, 255].

    Serves the notebook's "Train" step (through ``fast_dataloader``). Each image gets exactly
    the transforms of the notebook's ``get_dataloader`` (``Resize(S)``, ``CenterCrop(S)``), so
    ``images.float() / 255`` equals its ``ToTensor`` output. The files are those
    ``torchvision.datasets.ImageFolder(data_dir)`` lists, in its order; pass the folder
    ``helpers.data.find_data_dir`` returned, so unreadable files are already left out.
    Decoding uses one worker process per core and shows a tqdm bar (``progress``).

    Args:
        data_dir: the ImageFolder root (``<data_dir>/<class>/<image>``).
        image_size: side S of the square output, e.g. 32.
        limit: use only the first ``limit`` images (None: all).
        cache: keep the result in ``<data_dir>/.kit_images_<S>px_<fingerprint>.pt`` (or under
            ``~/.cache/dcgan-face-kit`` when the folder is read-only) and load it from there
            while the files are unchanged: the fingerprint covers every file's path, size and
            modification time, so editing, adding or removing an image means decoding again.
        progress: show the progress bar while decoding.
    """
    return _load(data_dir, image_size, limit=limit, cache=cache, progress=progress)[0]


class FastLoader:
    """Shuffled batches from an in-memory uint8 image tensor; a drop-in for a DataLoader.

    Iterating yields ``(images, labels)``: images float32 in [0, 1], shape (B, 3, S, S), on
    ``device``; labels ``zeros(B)`` long (ImageFolder's class 0), so the notebook's ``train``
    works unchanged. ``len(loader)`` is the number of batches per epoch. Each pass draws a
    fresh permutation (from ``seed`` when given, else from torch's global generator, so
    ``torch.manual_seed`` makes runs repeatable).

    On a GPU the whole uint8 set is copied to the device once, and each batch is an index into
    it plus a uint8 -> float conversion there: no host-to-device copy per step. On the CPU it
    indexes the tensor in place. ``channels_last=True`` returns batches in that memory format
    (pair it with ``helpers.gpu.prepare_models`` on CUDA).
    """

    def __init__(self, images_uint8, batch_size, device, shuffle=True, drop_last=True, seed=None,
                 channels_last=False):
        if not isinstance(images_uint8, torch.Tensor) or images_uint8.dtype != torch.uint8 \
                or images_uint8.dim() != 4 or images_uint8.shape[1] != 3:
            got = (f'{images_uint8.dtype} tensor of shape {tuple(images_uint8.shape)}'
                   if isinstance(images_uint8, torch.Tensor) else type(images_uint8).__name__)
            raise ValueError(f"FastLoader needs the uint8 (N, 3, S, S) tensor that "
                             f"load_image_tensor returns; got a {got}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")
        n = images_uint8.shape[0]
        if drop_last and batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the {n} images, so with "
                             f"drop_last=True there would be no batch at all. Use a smaller "
                             f"batch_size or more images.")
        self.device = torch.device(device)
        # One copy to the accelerator now instead of one per batch later.
        self.images = images_uint8 if self.device.type == 'cpu' else images_uint8.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    @property
    def n_images(self):
        """Number of images the loader draws from."""
        return self.images.shape[0]

    def __len__(self):
        n, b = self.n_images, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n = self.n_images
        if self.shuffle:
            # Drawn on the CPU, so a seed gives the same order on every device; moved once
            # per epoch (N int64s), not per batch.
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            batch = self.images[index].float().div_(255)  # the same division ToTensor does
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            yield batch, torch.zeros(len(index), dtype=torch.long, device=self.device)


def fast_dataloader(data_dir, image_size, batch_size, device, limit=None, progress=True,
                    **loader_options):
    """``load_image_tensor`` + ``FastLoader`` in one call, for the notebook's "Train" step.

    Prints one line: how many images, whether the cache was used, and the seconds it took.
    ``loader_options`` go to ``FastLoader`` (``shuffle``, ``drop_last``, ``seed``,
    ``channels_last``). Returns the FastLoader: batches (B, 3, S, S) float in [0, 1] on device.
    """
    images, info = _load(data_dir, image_size, limit=limit, progress=progress)
    loader = FastLoader(images, batch_size, device, **loader_options)
    cache = {'hit': 'loaded from the cache', 'miss': 'decoded once and cached'}.get(
        info['cache'], f"decoded (cache {info['cache']})")
    print(f"Fast loader: {info['n']:,} images of {image_size}x{image_size} from {data_dir}, "
          f"{cache} in {info['seconds']:.1f} s; {len(loader):,} batches of {batch_size} per "
          f"epoch on {loader.device}")
    return loader
