"""The fast data path for the notebook's "Train" step: your get_dataloader, decoded once.

The learner's ``get_dataloader`` decodes, resizes and crops every image again in every epoch,
one batch at a time in the training process. For a 32x32 DCGAN that decoding costs about as
much as the training itself. Here the learner's own dataset, with its own transforms, runs
**once** over every image, on every core; the result is kept as one uint8 tensor (200,000
CelebA faces at 32x32 are 600 MB), cached on disk while the folder and the transforms are
unchanged, and ``FastLoader`` serves shuffled batches by indexing it, on the GPU when there is
one.

    train_loader, images = fast_loader(get_dataloader(batch_size, img_size, data_dir), device,
                                       hold_out=n_eval)

Batches are what ``get_dataloader`` gives: ``(images, labels)``, images float in [0, 1] of
shape (B, 3, S, S), pixel for pixel, so the learner's ``train`` runs unchanged on either loader.

Random transforms cannot be cached as fixed pixels. ``RandomHorizontalFlip`` (and
``RandomVerticalFlip``) placed after the resizing and cropping are applied per batch, on the
device, to the cached images. Any other random step, or a transform the kit cannot prove
deterministic (``Lambda``, your own class), makes ``fast_loader`` train with the learner's own
loader instead and say so in one line.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from helpers.files import atomic_write, check_positive_int, is_no_space, no_space_message
from helpers.imagefile import describe_read_error

__all__ = [
    "CACHE_FORMAT",
    "CACHE_PREFIX",
    "CACHE_VERSION",
    "DECODE_BATCH",
    "DETERMINISTIC",
    "EIGHT_BIT_MODES",
    "FLIPS",
    "POINTWISE",
    "POOL_MIN_IMAGES",
    "RANDOM",
    "Decoded",
    "FastLoader",
    "TransformPlan",
    "data_identity",
    "describe_images",
    "fast_loader",
    "forget_caches",
    "load_dataset",
    "plan_transform",
]

CACHE_VERSION = 3  # bump when the decoding below changes: old caches are then ignored
CACHE_FORMAT = "dcgan-face-kit images"  # what a cache file holds, with its key and checksum
CACHE_PREFIX = ".kit_images_"  # a hidden *file* in the data folder, next to helpers.data's
# .kit_check.json. Not a folder: ImageFolder would take a folder there for an empty class.
DECODE_BATCH = 256  # images per worker task while decoding
POOL_MIN_IMAGES = 512  # below this, starting worker processes costs more than it saves

# torchvision transforms whose output depends only on their input: safe to run once and cache.
DETERMINISTIC = {
    "Resize", "CenterCrop", "ToTensor", "PILToTensor", "ConvertImageDtype", "ToDtype",
    "ToImage", "ToPureTensor", "Normalize", "Grayscale", "Pad", "ToPILImage", "Identity",
}  # fmt: skip
# Steps that change pixel values but never move them: a flip before them equals a flip after.
POINTWISE = {
    "ToTensor", "PILToTensor", "ConvertImageDtype", "ToDtype", "ToImage", "ToPureTensor",
    "Normalize", "Grayscale", "ToPILImage", "Identity",
}  # fmt: skip
# Random torchvision steps besides the Random* ones, named as such in the notice.
RANDOM = {"ColorJitter", "GaussianBlur", "AutoAugment", "RandAugment", "TrivialAugmentWide",
          "AugMix", "ElasticTransform"}  # fmt: skip
FLIPS = {"RandomHorizontalFlip": -1, "RandomVerticalFlip": -2}  # class -> image dim it flips


def _name(step) -> str:
    """The class name of a torchvision transform, '' for anything else (Lambda counts as else)."""
    cls = type(step)
    return cls.__name__ if cls.__module__.startswith("torchvision.transforms") else ""


@dataclass
class TransformPlan:
    """How the fast path treats a dataset's transform (see ``plan_transform``).

    ``cached``: the deterministic part, run once per image. ``flips``: ``(dim, p)`` pairs the
    loader applies per batch. ``random``: why the learner's own loader must train instead
    ('' when the fast path can serve the batches).
    """

    cached: Any
    flips: tuple[tuple[int, float], ...] = ()
    random: str = ""

    def decoder(self) -> Callable[[Any], Any]:
        """The cached part, ending in uint8 pixels where that is exactly ToTensor's value x 255.

        ``ToTensor`` turns an 8-bit image into ``uint8 / 255``; stopping at the uint8 skips a
        float round trip per image and gives the same numbers as ``FastLoader``'s ``/ 255``.
        """
        steps = getattr(self.cached, "transforms", [self.cached])
        if _name(steps[-1]) != "ToTensor":
            return self.cached
        from torchvision import transforms

        return transforms.Compose([*steps[:-1], _EightBitToTensor(steps[-1])])


# PIL modes that ToTensor reads as uint8 and divides by 255 (not '1', 'I', 'I;16' or 'F').
EIGHT_BIT_MODES = {"L", "LA", "P", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}


class _EightBitToTensor:
    """ToTensor without the division for 8-bit images: uint8 (C, H, W), exactly ToTensor x 255."""

    def __init__(self, to_tensor):
        self.to_tensor = to_tensor

    def __call__(self, pic):
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor

        if isinstance(pic, Image.Image) and pic.mode in EIGHT_BIT_MODES:
            return pil_to_tensor(pic)
        return self.to_tensor(pic)  # other inputs: the float result, checked for exactness


def plan_transform(transform: object) -> TransformPlan:
    """Split a transform into what can be cached and what must be drawn anew every epoch.

    ``Compose([Resize(s), CenterCrop(s), RandomHorizontalFlip(), ToTensor()])`` ->
    cached ``Compose([Resize(s), CenterCrop(s), ToTensor()])``, flips ``((-1, 0.5),)``.
    """
    steps = []

    def flatten(t):
        if _name(t) == "Compose":
            for s in t.transforms:
                flatten(s)
        else:
            steps.append(t)

    if transform is not None:
        flatten(transform)
    kept: list[object] = []
    flips: list[tuple[int, float]] = []
    moved_after_flip: list[str] = []
    for step in steps:
        name = _name(step)
        if name in FLIPS:
            p = float(step.p)
            if p in (0.0, 1.0):  # never or always: a fixed step, cached as it is
                if p == 1.0:
                    kept.append(step)
                continue
            if any(dim == FLIPS[name] for dim, _ in flips):
                return TransformPlan(transform, random=f"two {name}s")
            flips.append((FLIPS[name], p))
            continue
        if name not in DETERMINISTIC:
            what = repr(step).replace("\n", " ")
            random = name.startswith("Random") or name in RANDOM
            why = "draws new pixels every epoch" if random else "cannot be proved deterministic"
            return TransformPlan(transform, random=f"{what} {why}")
        if flips and name not in POINTWISE:
            moved_after_flip.append(name)
        kept.append(step)
    if moved_after_flip:
        return TransformPlan(
            transform,
            random=f"a random flip comes before {moved_after_flip[0]}, which moves pixels",
        )
    if not kept:
        return TransformPlan(transform, random="no transform turns the images into tensors")
    from torchvision import transforms

    cached = kept[0] if len(kept) == 1 else transforms.Compose(kept)
    return TransformPlan(cached, tuple(flips))


def _describe(exc_or_text) -> str:
    return exc_or_text if isinstance(exc_or_text, str) else describe_read_error(exc_or_text)


def _fingerprint(dataset, transform, changes: bool = True) -> str:
    """A short hash of what the cache depends on: the folder (its resolved path), the transform,
    and every file's path, size, modification and status-change time and inode (file names are
    bytes on disk: Latin-1 names hash like any other). A file rewritten with its size and
    modification time put back still has a new status-change time, which no program can set.

    ``changes=False`` leaves out the times and inodes: the same files, copied elsewhere or
    touched, then give the same hash (what a checkpoint compares, see ``data_identity``).
    """
    loader = getattr(dataset, "loader", None)
    digest = hashlib.sha1(
        json.dumps(
            [
                CACHE_VERSION,
                type(dataset).__name__,
                getattr(loader, "__qualname__", ""),
                repr(transform),
                os.fsencode(Path(dataset.root).resolve()).decode("latin-1") if changes else "",
            ]
        ).encode()
    )
    root = str(dataset.root)
    for path, _ in dataset.samples:
        try:
            st = os.stat(path)  # follows the clean view's symlinks to the original files
            stamp = f"\0{st.st_size}"
            if changes:
                stamp += f"\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}"
        except OSError:
            stamp = "\0missing"
        digest.update(os.fsencode(os.path.relpath(path, root)) + stamp.encode() + b"\n")
    return digest.hexdigest()[:16]


def _checksum(images: torch.Tensor) -> str:
    """SHA-256 of a uint8 image tensor's shape and bytes."""
    hasher = hashlib.sha256(repr(tuple(images.shape)).encode())
    hasher.update(images.contiguous().numpy().data)  # the buffer itself: no copy
    return hasher.hexdigest()


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dcgan-face-kit"


def _cache_paths(root: Path, transform, fingerprint: str, cache_dir) -> list[Path]:
    """Where the cache may be, in the order tried: the data folder, then the user cache folder
    (for a read-only data folder). ``cache_dir`` given: only there."""
    tag = hashlib.sha1(repr(transform).encode()).hexdigest()[:8]
    name = f"{CACHE_PREFIX}{tag}_{fingerprint}.pt"
    # One name per source folder, so two data folders never share (or delete) a cache.
    where = hashlib.sha1(os.fsencode(root.resolve())).hexdigest()[:8]
    elsewhere = f"{os.fsencode(root.resolve().name).decode('ascii', 'replace')}-{where}{name}"
    if cache_dir is not None:
        return [Path(cache_dir) / elsewhere]
    return [root / name, _default_cache_dir() / elsewhere]


def forget_caches(root: str | os.PathLike[str], cache_dir: str | Path | None = None) -> int:
    """Delete every image cache of the data folder ``root`` (in it, and in the user cache
    folder), so the next ``fast_loader`` decodes every file again; returns how many were
    deleted. What ``python -m helpers data check --recheck`` does after re-opening every file."""
    root = Path(root)
    where = hashlib.sha1(os.fsencode(root.resolve())).hexdigest()[:8]
    elsewhere = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    found = list(root.glob(f"{CACHE_PREFIX}*.pt")) + list(
        elsewhere.glob(f"*-{where}{CACHE_PREFIX}*.pt")
    )
    removed = 0
    for path in found:
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def _remove_stale(path: Path) -> None:
    """Delete this folder's caches for the same transform that no longer match the files."""
    stem = path.name.rsplit("_", 1)[0]
    for old in path.parent.glob(f"{stem}_*.pt"):
        if old != path:
            # someone else's file, or a read-only folder: harmless to leave
            with contextlib.suppress(OSError):
                old.unlink()


def _to_uint8(x, eight_bit_ok=False):
    """(uint8 tensor, exact): exact when ``uint8.float() / 255`` is x (ToTensor's value).

    With ``eight_bit_ok`` a uint8 tensor comes from ``_EightBitToTensor`` and is exact by
    construction. Anything but a float (C, H, W) tensor gives (a description of it, False).
    """
    if eight_bit_ok and isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.dim() == 3:
        return x, True
    if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() == 3):
        what = f"{x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        return what, False
    u = (x * 255).round_().clamp_(0, 255).to(torch.uint8)
    return u, bool(torch.equal(u.float().div_(255), x.float()))


class _Decode(Dataset):
    """Item i of the learner's dataset (with the cached part of its transform) as uint8.

    Returns (uint8 tensor or None, exact, '' or why it failed). A failure is returned, not
    raised, so the learner sees one plain message naming the file instead of a traceback
    re-raised from a worker process.
    """

    def __init__(self, dataset):
        self.dataset = dataset
        transform = getattr(dataset, "transform", None)
        steps = getattr(transform, "transforms", [transform])
        self.eight_bit_ok = isinstance(steps[-1], _EightBitToTensor)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        try:
            u, exact = _to_uint8(self.dataset[i][0], self.eight_bit_ok)
            return u, exact, ""
        except Exception as exc:  # any decode failure: report the file
            samples = getattr(self.dataset, "samples", None)
            where = samples[i][0] if samples else f"item {i}"
            return None, False, f"{_shown(where)}: {describe_read_error(exc)}"


def _shown(path) -> str:
    """A path printable on any terminal: undecodable bytes shown as \\xNN."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def _collate(batch):
    """One stacked uint8 tensor per batch when the images agree in shape: a worker then sends
    one shared-memory block back instead of one per image."""
    us = [u for u, _, _ in batch]
    if all(isinstance(u, torch.Tensor) for u in us) and len({u.shape for u in us}) == 1:
        return torch.stack(us), [ok for _, ok, _ in batch], [why for _, _, why in batch]
    return us, [ok for _, ok, _ in batch], [why for _, _, why in batch]


def _decode_all(dataset, workers, progress, desc):
    """((N, C, H, W) uint8, all exact) from the dataset, decoded with `workers` processes."""
    from tqdm.auto import tqdm

    if workers is None:
        workers = os.cpu_count() or 1
    if len(dataset) < POOL_MIN_IMAGES:
        workers = 0
    batches = DataLoader(
        _Decode(dataset),
        batch_size=DECODE_BATCH,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
    )
    images, start, failed, exact, first = None, 0, [], True, 0
    with tqdm(total=len(dataset), desc=desc, unit="img", disable=not progress) as bar:
        for us, oks, whys in batches:
            for u, ok, why in zip(us, oks, whys):
                if why:
                    failed.append(why)
                elif not isinstance(u, torch.Tensor):
                    raise ValueError(
                        f"The transforms give a {u} for each image, not a float tensor "
                        f"(C, H, W) in [0, 1]: end them with transforms.ToTensor()."
                    )
                else:
                    if images is None:
                        images = torch.empty((len(dataset), *u.shape), dtype=torch.uint8)
                        first = start
                    if u.shape != images.shape[1:]:
                        raise ValueError(
                            f"The transforms give images of different sizes: "
                            f"{tuple(images.shape[1:])} for image {first} but {tuple(u.shape)} "
                            f"for image {start}, so they cannot be stacked into a batch. End "
                            f"the transform with CenterCrop(image_size) to make every image "
                            f"square."
                        )
                    images[start] = u
                    exact &= ok
                start += 1
            bar.update(len(oks))
    if failed:
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        raise ValueError(
            f"Could not read {len(failed)} image file(s): {'; '.join(failed[:3])}{more}. "
            f"Use the folder helpers.data.find_data_dir returns: it leaves unreadable files out."
        )
    if images is None:
        images = torch.empty(0, 3, 0, 0, dtype=torch.uint8)
    return images, exact


@dataclass
class Decoded:
    """What ``load_dataset`` made: the images and how ``fast_loader`` may serve them."""

    images: torch.Tensor  # uint8 (N, C, H, W); float value = images / 255
    flips: tuple[tuple[int, float], ...] = ()  # (dim, p): random flips to apply per batch
    random: str = ""  # why the learner's own loader must train ('' = the fast path can)
    cache: str = "off"  # 'hit', 'miss', 'off', or 'not saved'
    sha256: str = ""  # checksum of images (shape and bytes); '' when not computed
    path: Path | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # one-line notices for the learner


def _write_cache(images, paths, notes, key, sha) -> Path | None:
    """Save to the first writable place, with its key and checksum; on a full disk say so once
    and keep going without. Each writer has its own temporary file, renamed into place whole:
    two processes caching the same images at once both end with a good file."""
    needed = images.numel() + 4096
    content = {"format": CACHE_FORMAT, "key": key, "sha256": sha, "images": images}
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path, "wb") as f:
                torch.save(content, f)
        except Exception as exc:  # a full disk shows up as RuntimeError from torch's writer
            try:
                full = is_no_space(exc) or shutil.disk_usage(path.parent).free < needed
            except OSError:
                full = False
            if full:
                full_disk = no_space_message(path, needed)
                notes.append(
                    f"Fast loader: could not cache the images: {full_disk} to keep the cache. "
                    "Training goes on without the cache (the images are decoded again next time)."
                )
                return None
            continue  # read-only or not ours: try the user cache folder
        _remove_stale(path)
        return path
    notes.append(
        f"Fast loader: no writable place for the image cache ({paths[-1].parent}); training "
        "goes on without it (the images are decoded again next time)."
    )
    return None


def _read_cache(paths, n, key, first, notes):
    """(path, images, checksum) of the first cache that is whole and made from these files with this
    transform, else (None, None, ''). ``first`` is image 0 decoded now: the cache must hold it.
    A cache that fails a check adds one line to ``notes`` saying why it is rebuilt."""
    for path in paths:
        if not path.is_file():
            continue
        why = ""
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # cut short or damaged beyond reading
            content, why = None, "cannot be read (cut short or damaged)"
        if why or not isinstance(content, dict) or content.get("format") != CACHE_FORMAT:
            why = why or "has no checksum (made by an older kit, or not by the kit)"
            why = "has no checksum (made by an older kit, or not by the kit)"
        else:
            images = content.get("images")
            if content.get("key") != key:
                why = "was made from other files or another transform"
            elif not (
                isinstance(images, torch.Tensor)
                and images.dtype == torch.uint8
                and images.dim() == 4
                and images.shape[0] == n
            ):
                why = "does not hold one uint8 image per file"
            elif content.get("sha256") != _checksum(images):
                why = "is damaged (its checksum does not match its content)"
            elif first is not None and not torch.equal(images[0], first):
                why = "does not hold these images (image 0 differs)"
            else:
                return path, images, content["sha256"]
        notes.append(f"Fast loader: the image cache {path} {why}; decoding the images again.")
    return None, None, ""


def _first_image(view):
    """Image 0 through the cached part of the transform, as the cache stores it (or None)."""
    if len(view) == 0:
        return None
    u, exact, why = _Decode(view)[0]
    return u if not why and exact and isinstance(u, torch.Tensor) else None


def load_dataset(
    dataset: Any,
    cache: bool = True,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
) -> Decoded:
    """Every image of the learner's dataset through its own transform, once, as uint8.

    Serves the notebook's "Train" step (through ``fast_loader``). ``dataset`` is
    ``get_dataloader(...).dataset``: an ``ImageFolder`` with the learner's transform. Item i of
    the result, ``images[i].float() / 255``, equals ``dataset[i][0]`` bit for bit. Random flips
    are left out and listed in ``flips`` (``FastLoader`` draws them per batch); any other random
    step sets ``random`` (the images are then one draw of it, for evaluation only).

    Args:
        dataset: the learner's dataset (``ImageFolder(data_dir, transform=...)``).
        cache: keep the images in ``<data_dir>/.kit_images_<transform>_<files>.pt`` (or under
            ``~/.cache/dcgan-face-kit`` when the folder is read-only) and load them from there
            while the files and the transform are unchanged: the key covers the folder, the
            transform's description (the image size with it) and every file's path, size,
            modification and status-change time and inode. A cache is used only when its key,
            its SHA-256 checksum and its first image match; otherwise one note says why and
            the images are decoded again. ``forget_caches`` drops them all.
        progress: show a tqdm bar while decoding.
        cache_dir: keep the cache there instead.
        workers: decoding processes (default: one per core).
    """
    start = time.perf_counter()
    if workers is not None:
        check_positive_int(workers, "workers", minimum=0)
    plan = plan_transform(getattr(dataset, "transform", None))
    folder = hasattr(dataset, "samples") and hasattr(dataset, "root")
    if not folder and not plan.random:
        plan.random = (
            f"a {type(dataset).__name__} is not an ImageFolder, so its files cannot be checked "
            "for changes"
        )
    notes: list[str] = []
    root = Path(dataset.root) if folder else None
    desc = f"Decoding {root or type(dataset).__name__} once"
    if plan.random:  # one draw of the full transform, for evaluation; never cached
        images, _ = _decode_all(dataset, workers, progress, desc)
        return Decoded(images, random=plan.random, seconds=time.perf_counter() - start)

    assert root is not None  # not an ImageFolder: plan.random was set above
    key = _fingerprint(dataset, plan.cached) if cache else ""
    paths = _cache_paths(root, plan.cached, key, cache_dir) if cache else []
    view = copy.copy(dataset)  # the learner's dataset, flips left for the loader
    view.transform = plan.decoder()
    if any(p.is_file() for p in paths):
        where, images, sha = _read_cache(paths, len(dataset), key, _first_image(view), notes)
        if images is not None:
            return Decoded(
                images,
                plan.flips,
                cache="hit",
                sha256=sha,
                path=where,
                seconds=time.perf_counter() - start,
                notes=notes,
            )

    images, exact = _decode_all(view, workers, progress, desc)
    if not exact:
        return Decoded(
            images,
            random="the transforms give values that are not 8-bit pixels in [0, 1] "
            "(ToTensor's output), so they cannot be stored as images",
            seconds=time.perf_counter() - start,
        )
    sha = _checksum(images)
    where = _write_cache(images, paths, notes, key, sha) if cache else None
    state = "off" if not cache else ("miss" if where else "not saved")
    return Decoded(
        images,
        plan.flips,
        cache=state,
        sha256=sha,
        path=where,
        seconds=time.perf_counter() - start,
        notes=notes,
    )


class FastLoader:
    """Shuffled batches from an in-memory uint8 image tensor; a drop-in for a DataLoader.

    Iterating yields ``(images, labels)``: images float32 in [0, 1], shape (B, C, S, S), on
    ``device``; labels ``zeros(B)`` long (ImageFolder's class 0), so the notebook's ``train``
    works unchanged. ``len(loader)`` is the number of batches per epoch. Each pass draws a
    fresh permutation (from ``seed`` when given, else from torch's global generator, so
    ``torch.manual_seed`` makes runs repeatable). ``flips``: ``(dim, p)`` pairs from
    ``load_dataset``; each image of each batch is flipped along ``dim`` with probability p.

    On a GPU the whole uint8 set is copied to the device once, and each batch is an index into
    it plus a uint8 -> float conversion there: no host-to-device copy per step. On the CPU it
    indexes the tensor in place. ``channels_last=True`` returns batches in that memory format
    (pair it with ``helpers.gpu.prepare_models`` on CUDA).
    """

    def __init__(
        self,
        images_uint8: torch.Tensor,
        batch_size: int,
        device: torch.device | str,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int | None = None,
        channels_last: bool = False,
        flips: Iterable[tuple[int, float]] = (),
    ) -> None:
        if (
            not isinstance(images_uint8, torch.Tensor)
            or images_uint8.dtype != torch.uint8
            or images_uint8.dim() != 4
        ):
            got = (
                f"{images_uint8.dtype} tensor of shape {tuple(images_uint8.shape)}"
                if isinstance(images_uint8, torch.Tensor)
                else type(images_uint8).__name__
            )
            raise ValueError(
                f"FastLoader needs the uint8 (N, C, S, S) tensor that "
                f"load_dataset returns; got a {got}."
            )
        check_positive_int(batch_size, "batch_size")
        n = images_uint8.shape[0]
        if drop_last and batch_size > n:
            raise ValueError(
                f"batch_size {batch_size} is larger than the {n} training images, so with "
                f"drop_last=True there would be no batch at all. Use a smaller batch_size or "
                f"more images."
            )
        self.device = torch.device(device)
        # One copy to the accelerator now instead of one per batch later.
        self.images = images_uint8 if self.device.type == "cpu" else images_uint8.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.channels_last, self.flips = channels_last, tuple(flips)
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        # which data this is, for a checkpoint's run record: set by fast_loader
        self.data_identity: dict[str, Any] | None = None

    @property
    def n_images(self) -> int:
        """Number of images the loader draws from."""
        return self.images.shape[0]

    def __len__(self) -> int:
        n, b = self.n_images, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.n_images
        if self.shuffle:
            # Drawn on the CPU, so a seed gives the same order on every device; moved once
            # per epoch (N int64s), not per batch.
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            batch = self.images[index]
            for dim, p in self.flips:  # the learner's random flips, drawn per image
                flip = torch.rand(len(index), generator=self.generator) < p
                if self.device.type == "cuda":  # pageable memory would make the host wait
                    flip = flip.pin_memory().to(self.device, non_blocking=True)
                flip = flip.to(self.device).view(-1, 1, 1, 1)
                batch = torch.where(flip, batch.flip(dim), batch)
            batch = batch.float().div_(255)  # the same division ToTensor does
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            yield batch, torch.zeros(len(index), dtype=torch.long, device=self.device)


def describe_images(
    folder: str | os.PathLike[str], images: torch.Tensor, hold_out: int, sha256: str = ""
) -> dict[str, Any]:
    """The ``data_identity`` of a loader over ``images[:-hold_out]`` (uint8 (N, C, H, W)) read
    from ``folder``; ``sha256`` is ``Decoded.sha256`` when known (else it is computed)."""
    return {
        "folder": _shown(Path(folder).resolve()),
        "images": images.shape[0] - hold_out,
        "held out": hold_out,
        "image size": "x".join(str(s) for s in images.shape[1:]),
        "fingerprint": (sha256 or _checksum(images))[:16],
    }


def data_identity(loader: Any) -> dict[str, Any] | None:
    """Which data a training loader serves, for a checkpoint's run record (``describe_run``).

    ``{"folder": resolved path, "images": N, "image size": "3x32x32" or None, "fingerprint":
    16 hex digits}``. For ``fast_loader``'s loaders the fingerprint is a hash of the decoded
    images themselves (so a moved or copied folder is still the same data); for a DataLoader
    over an ``ImageFolder`` (or a ``Subset`` of one), a hash of the transform and of each
    file's path and size. None when the loader says nothing about its data.
    """
    known = getattr(loader, "data_identity", None)
    if isinstance(known, dict):
        return known
    dataset = getattr(loader, "dataset", None)
    n = None
    with contextlib.suppress(TypeError):
        n = len(dataset)  # type: ignore[arg-type]  # a dataset without a length: None
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    root = getattr(dataset, "root", None)
    if root is None or not hasattr(dataset, "samples"):
        return None
    transform = getattr(dataset, "transform", None)
    return {
        "folder": _shown(Path(root).resolve()),
        "images": n,
        "image size": None,
        "fingerprint": _fingerprint(dataset, transform, changes=False),
    }


def _too_few(n, hold_out, batch_size, where) -> str:
    left = max(n - hold_out, 0)
    return (
        f"Found {n:,} images in {where}; {hold_out:,} of them are held out to evaluate G "
        f"(n_eval), which leaves {left:,} to train on: fewer than one batch of {batch_size}. "
        f"Use at least {hold_out + batch_size:,} images (a prepare-celeba --limit run makes only "
        f"that many), or lower n_eval or batch_size in the hyperparameters cell."
    )


def fast_loader(
    loader: DataLoader[Any],
    device: torch.device | str,
    hold_out: int = 0,
    channels_last: bool | None = None,
    seed: int | None = None,
    progress: bool = True,
    cache: bool = True,
    workers: int | None = None,
) -> tuple[DataLoader[Any] | FastLoader, torch.Tensor]:
    """The learner's DataLoader, made fast: ``(train_loader, images)``.

    Serves the notebook's "Train" step. ``loader`` is ``get_dataloader(batch_size, img_size,
    data_dir)``; its dataset and transforms are decoded once (``load_dataset``). The last
    ``hold_out`` images are kept out of ``train_loader``, which yields ``(B, 3, S, S)`` float
    batches in [0, 1] on ``device`` (a ``FastLoader``; the learner's own loader over the
    other images when a transform is random). ``images`` is all N images, uint8 on the CPU.
    Prints one line: how many images, whether the cache was used, and the seconds it took;
    and one more when the learner's loader has to train or the cache could not be saved.
    """
    batch_size = getattr(loader, "batch_size", None)
    if not isinstance(batch_size, int) or not hasattr(loader, "dataset"):
        raise TypeError(
            f"fast_loader needs the DataLoader your get_dataloader returns (it reads its dataset "
            f"and batch_size); got a {type(loader).__name__}."
        )
    dataset = loader.dataset
    hold_out = check_positive_int(hold_out, "hold_out (n_eval)", minimum=0)
    device = torch.device(device)
    decoded = load_dataset(dataset, cache=cache, progress=progress, workers=workers)
    images = decoded.images
    n = images.shape[0]
    where = getattr(dataset, "root", type(dataset).__name__)
    if n - hold_out < batch_size:
        raise ValueError(_too_few(n, hold_out, batch_size, where))
    if channels_last is None:
        channels_last = device.type == "cuda"
    for note in decoded.notes:
        print(note)
    train_loader: DataLoader[Any] | FastLoader
    if decoded.random:
        train_loader = DataLoader(
            Subset(dataset, range(n - hold_out)),
            batch_size=batch_size,
            shuffle=True,
            num_workers=loader.num_workers,
            drop_last=True,
        )
        train_loader.data_identity = data_identity(train_loader)
        print(
            f"Fast loader: off, because {decoded.random}. Training uses your get_dataloader's "
            f"own loader, which decodes every image again in every epoch (slower)."
        )
        return train_loader, images
    train_loader = FastLoader(
        images[: n - hold_out],
        batch_size,
        device,
        seed=seed,
        channels_last=channels_last,
        flips=decoded.flips,
    )
    train_loader.data_identity = describe_images(where, images, hold_out, decoded.sha256)
    shape = "x".join(str(s) for s in images.shape[1:])
    how = {
        "hit": "loaded from the cache",
        "miss": "decoded once and cached",
        "off": "decoded once",
    }.get(decoded.cache, "decoded once (not cached)")
    flips = "".join(
        f", random {'horizontal' if d == -1 else 'vertical'} flips (p={p:g}) per batch"
        for d, p in decoded.flips
    )
    print(
        f"Fast loader: {n - hold_out:,} training images of {shape} (+{hold_out:,} held out) "
        f"from {_shown(where)}, {how} in {decoded.seconds:.1f} s; {len(train_loader):,} "
        f"batches of {batch_size} per epoch on {train_loader.device}{flips}"
    )
    return train_loader, images
