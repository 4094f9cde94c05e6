"""Sample-quality numbers for generated faces that need no pretrained network.

Serves the notebook's "Evaluate your generator" step:

- ``sliced_wasserstein_distance``: the multi-scale sliced Wasserstein distance (SWD) of
  Karras et al., 2018, "Progressive Growing of GANs" (section 5, appendix D). It compares the
  *distributions* of small 7x7 patches of a Laplacian pyramid, so it sees both image quality
  (are the patches face-like at every scale?) and variety (do they cover what the real patches
  cover?). Lower is better; read it against the real-vs-real floor (two halves of the real data).
- ``nearest_neighbour_distance`` and ``memorisation_report``: is the generator copying its
  training images instead of making new faces?
- ``verdict``: what the numbers say, in a few sentences, starting with whether G has learned to
  draw faces at all (a verdict on memorisation means nothing before that).

Everything is plain torch, vectorised, on the device of the images you pass, and
deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DESCRIPTORS_PER_IMAGE",
    "DIRECTIONS",
    "MIN_IMAGES_FOR_SWD",
    "MIN_RESOLUTION",
    "NEAR_COPY_EXCESS",
    "NEAR_COPY_FACTOR",
    "NN_BATCH_SIZE",
    "NOT_LEARNED_SPREAD",
    "NOT_LEARNED_SWD_FACTOR",
    "PATCH_SIZE",
    "REPEATS",
    "SWD_SCALE",
    "Training",
    "laplacian_pyramid",
    "memorisation_report",
    "nearest_neighbour_distance",
    "sliced_wasserstein_distance",
    "spread",
    "verdict",
]

# Training images: one tensor (M, 3, H, W), or batches of them (a DataLoader of (images, labels))
Training = torch.Tensor | Iterable[torch.Tensor | Sequence[torch.Tensor]]

# ---------------------------------------------------------------------------------------------
# Defaults, with where they come from (Karras et al. 2018, section 5 / appendix D, and the
# authors' metrics/sliced_wasserstein.py in tkarras/progressive_growing_of_gans).
PATCH_SIZE = 7  # 7x7 pixel neighbourhoods
DESCRIPTORS_PER_IMAGE = 128  # patches drawn per image per pyramid level
DIRECTIONS = 512  # random projection directions in total (paper: 512 projections)
REPEATS = 4  # the directions are drawn in 4 batches (authors' code: 4 x 128)
MIN_RESOLUTION = 16  # the pyramid stops at 16x16
SWD_SCALE = 1e3  # the paper reports SWD x 10^3
MIN_IMAGES_FOR_SWD = 2  # needed for a per-channel std; use hundreds for a stable number

# Memorisation: a generated image is a "near copy" when it is closer to its nearest training
# image than NEAR_COPY_FACTOR x the median distance from a real held-out image to its nearest
# training image. The report flags memorisation when the share of near copies among generated
# images exceeds the share among real held-out images by more than NEAR_COPY_EXCESS.
NEAR_COPY_FACTOR = 0.5
NEAR_COPY_EXCESS = 0.05
NN_BATCH_SIZE = 1024  # training images compared at once (bounds memory)

# Has G learned at all? Trained runs of the notebook score 2 to 3.6 times the real floor
# (docs/performance.md); one quick-mode epoch scores about 7 times it, with grey, nearly equal
# images. Beyond NOT_LEARNED_SWD_FACTOR x the floor, or with images that vary less than
# NOT_LEARNED_SPREAD x as much as real ones, the verdict says G has not learned yet.
NOT_LEARNED_SWD_FACTOR = 5.0
NOT_LEARNED_SPREAD = 0.25

# 5x5 binomial kernel, the classic Burt-Adelson pyramid filter (same as OpenCV's pyrDown/pyrUp).
_BINOMIAL_1D = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


# ---------------------------------------------------------------------------------------------
# Input checks shared by the public functions


def _as_float_images(images, name):
    """Check a batch of RGB images and return it as float32; uint8 becomes [-1, 1]."""
    if not isinstance(images, torch.Tensor):
        try:
            images = torch.as_tensor(images)
        except Exception:
            raise ValueError(
                f"{name} must be a torch tensor of images shaped (N, 3, H, W); "
                f"got {type(images).__name__}."
            ) from None
    if images.dim() != 4:
        hint = " For a single image use images.unsqueeze(0)." if images.dim() == 3 else ""
        raise ValueError(
            f"{name} must have 4 dimensions (N, 3, H, W); got shape {tuple(images.shape)}.{hint}"
        )
    if images.shape[1] != 3:
        hint = ""
        if images.shape[-1] == 3:
            hint = " It looks channels-last; use images.permute(0, 3, 1, 2)."
        elif images.shape[1] == 1:
            hint = " For greyscale images use images.expand(-1, 3, -1, -1)."
        raise ValueError(
            f"{name} must have 3 colour channels in dimension 1 (N, 3, H, W); got "
            f"shape {tuple(images.shape)}.{hint}"
        )
    if images.dtype == torch.uint8:
        # uint8 pictures are [0, 255]; bring them to the generator's range [-1, 1].
        return images.float() / 127.5 - 1.0
    if not images.is_floating_point():
        raise ValueError(
            f"{name} must be float images in [-1, 1] or uint8 images in [0, 255]; "
            f"got dtype {images.dtype}."
        )
    images = images.detach().float()
    if not torch.isfinite(images).all():
        raise ValueError(
            f"{name} contains NaN or infinite values; check the generator's output "
            f"(a diverged training run produces NaNs)."
        )
    return images


def _check_range(images, name):
    """Distances in pixel space only make sense when both sets share the range [-1, 1]."""
    low, high = images.min().item(), images.max().item()
    if low < -1.01 or high > 1.01:
        raise ValueError(
            f"{name} should be in [-1, 1] (the generator's tanh range); found values "
            f"from {low:.3g} to {high:.3g}. Images in [0, 1] become [-1, 1] with "
            f"x * 2 - 1; uint8 images can be passed as they are."
        )


# ---------------------------------------------------------------------------------------------
# Laplacian pyramid


def _blur(images, kernel_scale=1.0):
    """Depthwise 5x5 binomial blur with mirror borders; (N, C, H, W) -> same shape."""
    channels = images.shape[1]
    k1 = _BINOMIAL_1D.to(device=images.device, dtype=images.dtype)
    kernel = (torch.outer(k1, k1) * kernel_scale).expand(channels, 1, 5, 5)
    # 'reflect' mirrors without repeating the edge pixel, like scipy's mode='mirror'.
    padded = F.pad(images, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, kernel, groups=channels)


def _pyramid_down(images):
    """Blur, then keep every second pixel: (N, C, H, W) -> (N, C, H/2, W/2)."""
    return _blur(images)[:, :, ::2, ::2]


def _pyramid_up(images):
    """Insert zeros between pixels, then blur (x4 to keep brightness).

    (N, C, h, w) -> (N, C, 2h, 2w).
    """
    n, c, h, w = images.shape
    upsampled = images.new_zeros(n, c, 2 * h, 2 * w)
    upsampled[:, :, ::2, ::2] = images
    return _blur(upsampled, kernel_scale=4.0)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Split images into `levels` frequency bands, finest first.

    Serves the notebook's "Evaluate your generator" step (used by ``sliced_wasserstein_distance``).

    Args:
        images: (N, C, H, W) float tensor (any range; the pyramid is linear). H and W must be
            divisible by 2 ** (levels - 1).
        levels: number of levels, >= 1.

    Returns:
        A list of `levels` float tensors, finest first: element i has shape
        (N, C, H / 2**i, W / 2**i). Elements 0 .. levels-2 are band-pass details (image minus
        its blurred, upsampled half-size version); the last element is the blurred low-pass
        image itself. Adding the bands back up, coarsest to finest, gives the input exactly.
    """
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be a whole number >= 1; got {levels!r}.")
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor shaped (N, C, H, W); got {shape}.")
    height, width = images.shape[-2:]
    factor = 2 ** (levels - 1)
    if height % factor or width % factor:
        raise ValueError(
            f"A {levels}-level pyramid halves the image {levels - 1} times, so height "
            f"and width must be divisible by {factor}; got {height}x{width}."
        )
    if levels > 1 and min(height, width) // (factor // 2) < 3:
        raise ValueError(f"{height}x{width} images are too small for a {levels}-level pyramid.")
    images = images.float() if not images.is_floating_point() else images
    pyramid = [images]
    for _ in range(levels - 1):
        smaller = _pyramid_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - _pyramid_up(smaller)  # keep only the detail lost by halving
        pyramid.append(smaller)
    return pyramid


# ---------------------------------------------------------------------------------------------
# Sliced Wasserstein distance


def _patch_positions(num_images, per_image, size, patch_size, generator):
    """Random top-left corners, (num_images, per_image) each for y and x, on the CPU."""
    high = size - patch_size + 1
    ys = torch.randint(0, high, (num_images, per_image), generator=generator)
    xs = torch.randint(0, high, (num_images, per_image), generator=generator)
    return ys, xs


def _descriptors(level, ys, xs, patch_size):
    """Cut patches out of one pyramid level and normalise them per colour channel.

    level: (N, 3, h, w); ys, xs: (N, D) top-left corners. Returns (N * D, 3 * patch_size**2).
    """
    n = level.shape[0]
    ys, xs = ys[:n].to(level.device), xs[:n].to(level.device)
    offsets = torch.arange(patch_size, device=level.device)
    rows = (ys[:, :, None] + offsets)[:, :, :, None]  # (N, D, p, 1)
    cols = (xs[:, :, None] + offsets)[:, :, None, :]  # (N, D, 1, p)
    image_index = torch.arange(n, device=level.device)[:, None, None, None]
    patches = level.permute(0, 2, 3, 1)[image_index, rows, cols]  # (N, D, p, p, 3)
    patches = patches.reshape(-1, patch_size, patch_size, 3)
    # Each set is normalised with its own per-channel statistics, as in the authors' code:
    # the SWD compares the *shape* of the patch distributions at each scale.
    mean = patches.mean(dim=(0, 1, 2), keepdim=True)
    std = patches.std(dim=(0, 1, 2), keepdim=True, correction=0).clamp_min(1e-12)
    patches = (patches - mean) / std
    return patches.permute(0, 3, 1, 2).reshape(patches.shape[0], -1)


def _sort_rows(values):
    """Sort each row ascending. On the CPU numpy's vectorised sort is about 3x faster than
    torch.sort, and sorting is most of the SWD's run time; the result is identical."""
    if values.device.type == "cpu":
        return torch.from_numpy(np.sort(values.numpy(), axis=1))
    return torch.sort(values, dim=1).values


def _sliced_wasserstein(a, b, directions, repeats, generator):
    """Mean 1-D Wasserstein-1 distance between two equal-sized point sets over random directions.

    a, b: (M, dim) descriptors. Returns a Python float.
    """
    per_repeat = [len(chunk) for chunk in torch.arange(directions).tensor_split(repeats)]
    results = []
    for count in per_repeat:
        dirs = torch.randn(a.shape[1], count, generator=generator)
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(a.device)
        # (count, M): sorting each projection pairs the i-th smallest of a with the i-th of b,
        # which is the optimal transport plan in one dimension.
        proj_a = _sort_rows(dirs.T @ a.T)
        proj_b = _sort_rows(dirs.T @ b.T)
        results.append((proj_a - proj_b).abs().mean())
    return torch.stack(results).mean().item()


def sliced_wasserstein_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    descriptors_per_image: int = DESCRIPTORS_PER_IMAGE,
    patch_size: int = PATCH_SIZE,
    directions: int = DIRECTIONS,
    repeats: int = REPEATS,
    min_resolution: int = MIN_RESOLUTION,
    seed: int = 0,
) -> dict[str, Any]:
    """Multi-scale sliced Wasserstein distance (SWD x 10^3) between two sets of images.

    Serves the notebook's "Evaluate your generator" step. Method of Karras et al. 2018
    (section 5, appendix D): build a Laplacian pyramid from full resolution down to
    `min_resolution` (32x32 images -> levels 32 and 16; 64x64 -> 64, 32, 16), cut
    `descriptors_per_image` random 7x7 patches per image per level, normalise each level's
    patches per colour channel (mean 0, std 1, each set with its own statistics), and measure
    the sliced Wasserstein distance between the real and fake patch sets with `directions`
    random unit directions (drawn in `repeats` batches, as the authors do: 4 x 128 = 512).

    Lower is better. 0 means identical patch statistics; two independent samples of the *same*
    data do not reach 0 (sampling noise), so compare with the real-vs-real floor, e.g.
    ``sliced_wasserstein_distance(real[:500], real[500:1000])``, using the same number of images.
    Because each set is normalised by its own channel statistics, a global brightness/contrast
    shift of a whole set is not seen (look at the pictures too); for the same reason rescaling a
    set (say [0, 1] instead of [-1, 1]) does not change the number.

    Args:
        real, fake: (N, 3, H, W) float tensors in [-1, 1] (the generator's tanh range), or uint8
            tensors in [0, 255]. Same H and W, square, H >= min_resolution; N may differ (the
            larger set's patches are subsampled to the smaller count), at least 2 each.
            Computed on real's device.
        descriptors_per_image: patches per image per level (paper: 128).
        patch_size: side of the square patches (paper: 7).
        directions: random projection directions in total (paper: 512).
        repeats: batches the directions are drawn in (authors: 4); the result is their mean.
        min_resolution: coarsest pyramid level (paper: 16).
        seed: seeds the patch positions and directions; the same seed gives the same number
            (on one torch version: its random streams may change between releases).
            Both sets use the same patch positions (image i of each), so
            SWD(x, x) == 0 and SWD(a, b) == SWD(b, a).

    Returns:
        {'levels': {resolution: swd_x1e3, ...} finest first, 'average': mean over levels}.
        Memory: about N x descriptors_per_image x 3 x patch_size**2 x 4 bytes per set
        (75 MB per 1,000 images with the defaults).
    """
    real = _as_float_images(real, "real")
    fake = _as_float_images(fake, "fake").to(real.device)
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            f"real and fake images must have the same size; got real "
            f"{tuple(real.shape[1:])} and fake {tuple(fake.shape[1:])}. Resize one "
            f"set (e.g. torchvision.transforms.Resize) before comparing."
        )
    for name, images in (("real", real), ("fake", fake)):
        if images.shape[0] < MIN_IMAGES_FOR_SWD:
            raise ValueError(
                f"{name} has {images.shape[0]} image(s); the SWD needs at least "
                f"{MIN_IMAGES_FOR_SWD} per set (hundreds for a stable number)."
            )
    for name, value, lowest in (
        ("descriptors_per_image", descriptors_per_image, 1),
        ("patch_size", patch_size, 1),
        ("directions", directions, 1),
        ("repeats", repeats, 1),
        ("min_resolution", min_resolution, 1),
    ):
        if not isinstance(value, int) or value < lowest:
            raise ValueError(f"{name} must be a whole number >= {lowest}; got {value!r}.")
    if repeats > directions:
        raise ValueError(
            f"repeats ({repeats}) cannot exceed directions ({directions}); each "
            f"repeat needs at least one direction."
        )
    height, width = real.shape[-2:]
    if height != width:
        raise ValueError(
            f"The SWD expects square images; got {height}x{width}. Crop or resize "
            f"them to a square first."
        )
    if height < min_resolution:
        raise ValueError(
            f"The images are {height}x{width}, smaller than min_resolution="
            f"{min_resolution}; the SWD pyramid starts at {min_resolution}x"
            f"{min_resolution}. Use larger images or a smaller min_resolution."
        )
    if min_resolution < patch_size:
        raise ValueError(
            f"min_resolution ({min_resolution}) must be at least patch_size "
            f"({patch_size}) so that a patch fits in the coarsest level."
        )

    resolutions = []
    size = height
    while size >= min_resolution:
        resolutions.append(size)
        if size % 2:
            break  # an odd size cannot be halved exactly; stop the pyramid here
        size //= 2
    generator = torch.Generator().manual_seed(seed)
    pyramids = [
        laplacian_pyramid(real, len(resolutions)),
        laplacian_pyramid(fake, len(resolutions)),
    ]

    distances = {}
    for level, resolution in enumerate(resolutions):
        # Common random numbers: both sets get the same patch positions, which makes the
        # result symmetric and exactly 0 for identical sets.
        ys, xs = _patch_positions(
            max(real.shape[0], fake.shape[0]),
            descriptors_per_image,
            resolution,
            patch_size,
            generator,
        )
        desc_real = _descriptors(pyramids[0][level], ys, xs, patch_size)
        desc_fake = _descriptors(pyramids[1][level], ys, xs, patch_size)
        # Sliced Wasserstein on sorted projections needs equal counts: subsample the larger
        # set (chosen by size, not by role, so swapping real and fake gives the same number).
        count = min(desc_real.shape[0], desc_fake.shape[0])
        larger = max(desc_real.shape[0], desc_fake.shape[0])
        if larger > count:
            keep = torch.randperm(larger, generator=generator)[:count].to(real.device)
            if desc_real.shape[0] > count:
                desc_real = desc_real[keep]
            else:
                desc_fake = desc_fake[keep]
        swd = _sliced_wasserstein(desc_real, desc_fake, directions, repeats, generator)
        distances[resolution] = swd * SWD_SCALE
    return {"levels": distances, "average": sum(distances.values()) / len(distances)}


# ---------------------------------------------------------------------------------------------
# Nearest neighbours and memorisation


def _training_batches(training, batch_size):
    """Yield float training batches in [-1, 1] from a tensor or an iterable of batches."""
    if isinstance(training, torch.Tensor):
        training = _as_float_images(training, "training")
        _check_range(training, "training")
        for start in range(0, training.shape[0], batch_size):
            yield training[start : start + batch_size]
        return
    try:
        iterator = iter(training)
    except TypeError:
        raise ValueError(
            f"training must be a tensor (N, 3, H, W) or an iterable of such batches "
            f"(e.g. a DataLoader); got {type(training).__name__}."
        ) from None
    for batch in iterator:
        if isinstance(batch, (list, tuple)):
            batch = batch[0]  # (images, labels) from an ImageFolder DataLoader
        batch = _as_float_images(batch, "a training batch")
        _check_range(batch, "a training batch")
        yield batch


def _nearest(queries, training, batch_size, skip=None):
    """Closest training image for each query, in one chunked pass.

    queries: (N, 3, H, W) float; skip: optional (N,) training indices a query must not match
    (leave-one-out). Returns (distances (N,), indices (N,)), both on the CPU.
    """
    flat_q = queries.reshape(queries.shape[0], -1)
    q_norms = (flat_q**2).sum(dim=1, keepdim=True)
    best = torch.full((flat_q.shape[0],), float("inf"), device=flat_q.device)
    best_index = torch.zeros(flat_q.shape[0], dtype=torch.long, device=flat_q.device)
    best_image = torch.zeros_like(flat_q)
    seen = 0
    for batch in _training_batches(training, batch_size):
        if batch.shape[1:] != queries.shape[1:]:
            raise ValueError(
                f"generated and training images must have the same size; got "
                f"{tuple(queries.shape[1:])} and {tuple(batch.shape[1:])}."
            )
        flat_t = batch.to(flat_q.device).reshape(batch.shape[0], -1)
        # |q - t|^2 = |q|^2 + |t|^2 - 2 q.t : one matrix product per chunk instead of a loop.
        sq = q_norms + (flat_t**2).sum(dim=1)[None, :] - 2.0 * flat_q @ flat_t.T
        if skip is not None:
            # leave-one-out: a training image must not find itself
            local = skip.to(flat_q.device) - seen
            inside = (local >= 0) & (local < flat_t.shape[0])
            sq[inside.nonzero().squeeze(1), local[inside]] = float("inf")
        value, index = sq.min(dim=1)
        better = value < best
        best = torch.where(better, value, best)
        best_index = torch.where(better, index + seen, best_index)
        best_image[better] = flat_t[index[better]]
        seen += flat_t.shape[0]
    if seen == 0:
        raise ValueError("training is empty; pass at least one training image.")
    # Recompute the winners' distances directly: the expanded formula loses precision, and an
    # exact copy should read exactly 0.
    distances = (flat_q - best_image).pow(2).mean(dim=1).sqrt()
    return distances.cpu(), best_index.cpu()


def nearest_neighbour_distance(
    generated: torch.Tensor, training: Training, batch_size: int = NN_BATCH_SIZE
) -> dict[str, Any]:
    """For each generated image, the distance to its closest training image.

    Serves the notebook's "Evaluate your generator" step (and ``memorisation_report``).

    Args:
        generated: (N, 3, H, W) float tensor in [-1, 1] or uint8 in [0, 255].
        training: the same kind of tensor (M, 3, H, W), or an iterable of such batches, e.g. a
            DataLoader yielding (images, labels), for training sets too big for memory.
        batch_size: training images compared at once (for a tensor); the distance block takes
            about N x batch_size x 4 bytes (1,000 x 1,024 -> 4 MB). Computed on generated's device.

    Returns:
        {'mean': float, 'min': float, 'per_image': (N,) CPU tensor, 'indices': (N,) CPU long
        tensor}. Distances are per-pixel RMS differences in the [-1, 1] range: 0 means an exact
        copy, 2 the largest possible. 'indices' point into the training set (in iteration
        order for an iterable).
    """
    generated = _as_float_images(generated, "generated")
    _check_range(generated, "generated")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")
    per_image, indices = _nearest(generated, training, batch_size)
    return {
        "mean": per_image.mean().item(),
        "min": per_image.min().item(),
        "per_image": per_image,
        "indices": indices,
    }


def memorisation_report(
    generated: torch.Tensor,
    training: Training,
    train_holdout: torch.Tensor | None = None,
    batch_size: int = NN_BATCH_SIZE,
    seed: int = 0,
) -> dict[str, Any]:
    """Does the generator copy training images? Compares nearest-neighbour distances.

    Serves the notebook's "Evaluate your generator" step. For each generated image we find its
    nearest training image; as a reference we do the same for real images the generator never
    saw (`train_holdout`). If no held-out set is given, a random sample of training images is
    used, each compared with the *other* training images (leave-one-out).

    A generated image is a near copy when it is closer to a training image than
    NEAR_COPY_FACTOR (0.5) x the median reference distance. Memorisation is flagged when the
    share of near copies among generated images exceeds the share among the reference images
    by more than NEAR_COPY_EXCESS (5 percentage points).

    Args:
        generated: (N, 3, H, W) float in [-1, 1] or uint8.
        training: (M, 3, H, W) tensor, or an iterable of batches (then train_holdout is needed).
        train_holdout: optional (K, 3, H, W) real images not used for training.
        batch_size: training images compared at once.
        seed: picks the leave-one-out sample when train_holdout is None.

    Returns:
        dict with 'generated_median', 'reference_median' (per-pixel RMS distances to the nearest
        training image), 'ratio' (generated_median / reference_median; about 1 is healthy),
        'near_copy_fraction', 'reference_near_copy_fraction', 'memorised' (bool),
        'explanation' (one sentence to print), and 'per_image' / 'indices' from
        ``nearest_neighbour_distance`` so you can show each generated image next to its nearest
        training image.
    """
    if isinstance(training, torch.Tensor):
        training = _as_float_images(training, "training")  # convert once, not per call
    gen = nearest_neighbour_distance(generated, training, batch_size)
    if train_holdout is not None:
        ref = nearest_neighbour_distance(train_holdout, training, batch_size)
        reference_name = "real held-out images"
    else:
        if not isinstance(training, torch.Tensor):
            raise ValueError(
                "training is not a tensor, so no leave-one-out reference can be "
                "drawn from it; pass train_holdout (real images not used for "
                "training)."
            )
        if training.shape[0] < 2:
            raise ValueError(
                "training needs at least 2 images for a leave-one-out reference; "
                "pass train_holdout instead."
            )
        count = min(training.shape[0], max(len(gen["per_image"]), 2))
        generator = torch.Generator().manual_seed(seed)
        sample = torch.randperm(training.shape[0], generator=generator)[:count]
        per_image, _ = _nearest(
            training[sample.to(training.device)], training, batch_size, skip=sample
        )
        ref = {"per_image": per_image}
        reference_name = "real training images (to their nearest other training image)"

    gen_median = gen["per_image"].quantile(0.5).item()
    ref_median = ref["per_image"].quantile(0.5).item()
    threshold = NEAR_COPY_FACTOR * ref_median
    near = (gen["per_image"] < threshold).float().mean().item()
    ref_near = (ref["per_image"] < threshold).float().mean().item()
    memorised = near - ref_near > NEAR_COPY_EXCESS
    ratio = gen_median / ref_median if ref_median > 0 else float("inf")
    if memorised:
        explanation = (
            f"Possible memorisation: {near:.0%} of generated images are near copies of "
            f"a training image (closer than {threshold:.3f}), against {ref_near:.0%} "
            f"of {reference_name}; show them next to their nearest training images."
        )
    else:
        explanation = (
            f"No sign of memorisation: generated images lie {gen_median:.3f} from their "
            f"nearest training image (median), {reference_name} {ref_median:.3f}, "
            f"and {near:.0%} are near copies."
        )
    return {
        "generated_median": gen_median,
        "reference_median": ref_median,
        "ratio": ratio,
        "near_copy_fraction": near,
        "reference_near_copy_fraction": ref_near,
        "memorised": memorised,
        "explanation": explanation,
        "per_image": gen["per_image"],
        "indices": gen["indices"],
    }


# ---------------------------------------------------------------------------------------------
# What the numbers say


def spread(images: torch.Tensor) -> float:
    """How much a set of images varies: the per-pixel standard deviation across the set, averaged.

    (N, 3, H, W) float in [-1, 1] or uint8. Real faces give about 0.4 to 0.5; a generator that
    draws nearly the same image for every z gives close to 0.
    """
    images = _as_float_images(images, "images")
    if images.shape[0] < 2:
        raise ValueError(f"spread needs at least 2 images; got {images.shape[0]}.")
    return images.std(dim=0).mean().item()


def verdict(
    generated: torch.Tensor,
    real: torch.Tensor,
    swd_generated: dict[str, Any] | float,
    swd_floor: dict[str, Any] | float,
    memorisation: dict[str, Any] | None = None,
) -> str:
    """What the evaluation says about G, as text to print (notebook step "Evaluate your generator").

    Args:
        generated: G's images (N, 3, H, W) in [-1, 1]; real: held-out real images, the same kind.
        swd_generated, swd_floor: ``sliced_wasserstein_distance`` results (or their 'average') for
            real vs generated and for real vs real.
        memorisation: optional ``memorisation_report`` result, quoted once G has learned.

    G "has not learned yet" when its SWD is more than NOT_LEARNED_SWD_FACTOR (5) times the floor,
    or its images vary less than NOT_LEARNED_SPREAD (a quarter) as much as the real ones; then the
    text says so and how to go on, and leaves out the memorisation verdict, which would only
    reassure falsely. Otherwise it gives the SWD against the floor and the memorisation sentence.
    """
    swd = swd_generated["average"] if isinstance(swd_generated, dict) else float(swd_generated)
    floor = swd_floor["average"] if isinstance(swd_floor, dict) else float(swd_floor)
    if not floor > 0:
        raise ValueError(f"swd_floor must be positive (real against real); got {floor!r}.")
    times = swd / floor
    spread_generated, spread_real = spread(generated), spread(real)
    problems = []
    if times > NOT_LEARNED_SWD_FACTOR:
        problems.append(
            f"its SWD, {swd:.1f}, is {times:.1f} times the real floor of {floor:.1f} "
            f"(trained runs of this notebook get within about 3 times);"
        )
    if spread_generated < NOT_LEARNED_SPREAD * spread_real:
        problems.append(
            f"its images barely differ from one another (spread "
            f"{spread_generated:.2f}, real faces {spread_real:.2f}): it draws nearly "
            f"the same picture for every z;"
        )
    if problems:
        return "\n".join(
            ["G has not learned to draw faces yet:"]
            + [f"- {p}" for p in problems]
            + [
                "Train for more epochs (quick mode's single epoch only checks that the code runs); "
                "if that does not help, read the losses above.",
                "The memorisation check waits until G draws faces.",
            ]
        )
    text = f"G has learned: its SWD, {swd:.1f}, is {times:.1f} times the real floor of {floor:.1f}."
    if memorisation is not None:
        text += "\n" + memorisation["explanation"]
    return text
