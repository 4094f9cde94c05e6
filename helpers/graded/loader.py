"""The data loader's test images, written by the test and checked as the loader gives them.

Serves test_get_dataloader (the notebook step "The data loader"): square, wide, tall,
grayscale, RGBA and framed images whose colours tell a right Resize + CenterCrop from a crop
first, a squash, a random transform or lost colour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from helpers.graded import loader_answers
from helpers.graded.failures import calling, check
from helpers.graded.plain import plain, type_name
from helpers.graded.verdicts import Observation, reference

__all__ = [
    "FRAME_BLUE",
    "LOADED_TEST_IMAGES",
    "SQUARE",
    "check_frame_kept",
    "check_images_are_the_test_images",
    "check_non_square_images",
    "check_reshuffles",
    "loaded_test_images",
    "loader_images",
    "observe_dataset_images",
    "write_test_images",
]

FRAME_BLUE = (20, 40, 220)
LOADED_TEST_IMAGES = "loaded test images"  # the reference's name (helpers.instructor.references)
# The square test images: the original course's data are all square (64x64)
SQUARE = ("sq0", "sq1", "sq2", "sq3", "sq4", "sq5", "gray", "rgba", "framed")


def loader_images(seed: int = 7) -> dict[str, Image.Image]:
    """{file stem: PIL image} of the data loader's test images; the square ones' colours come
    from `seed`. Square and non-square images, RGB, grayscale and RGBA.

    The non-square images have a green centre square and red strips on the long sides: a
    correct Resize + CenterCrop keeps only green, resizing to a square keeps the red.
    """
    images = {}
    gen = torch.Generator().manual_seed(seed)
    for i in range(6):  # square, varied colours
        colour = tuple(int(c) for c in torch.randint(0, 256, (3,), generator=gen))
        images[f"sq{i}"] = Image.new("RGB", (64, 64), colour)
    for name, (w, h) in {"wide": (96, 48), "tall": (40, 80)}.items():
        img = Image.new("RGB", (w, h), (220, 20, 20))
        # green reaches 4 px beyond the centre square, so resampling at its edge stays green
        side = min(w, h) + 8
        left, top = max((w - side) // 2, 0), max((h - side) // 2, 0)
        img.paste(Image.new("RGB", (min(side, w), min(side, h)), (20, 200, 20)), (left, top))
        images[name] = img
    images["gray"] = Image.new("L", (50, 50), 128)
    images["rgba"] = Image.new("RGBA", (64, 64), (10, 20, 200, 255))
    # Square and larger than the loaders' image sizes: a blue frame around an orange centre
    # whose shade changes from row to row. Resize-then-crop keeps the frame; a crop first keeps
    # only the centre. Left-right symmetric, so a random flip gives the same tensor; any random
    # crop does not.
    framed = Image.new("RGB", (64, 64), FRAME_BLUE)
    for y in range(8, 56):
        framed.paste(Image.new("RGB", (48, 1), (220, 40 + 3 * y, 20)), (8, y))
    images["framed"] = framed
    return images


def write_test_images(root: Path | str, seed: int = 7, square_only: bool = False) -> int:
    """Write loader_images(seed) as an ImageFolder tree under `root`, laid out as the original
    course's data (root/celeba/*.png); return how many. `square_only`: only the square ones,
    as the course's pre-processed 64x64 faces are (SQUARE)."""
    folder = Path(root) / "celeba"
    folder.mkdir(parents=True)
    images = loader_images(seed)
    for name, img in images.items():
        if not square_only or name in SQUARE:
            img.save(folder / f"{name}.png")
    return len(SQUARE) if square_only else len(images)


def loaded_test_images(seed: int, size: int) -> torch.Tensor:
    """loader_images(seed) as a right loader gives them at `size`: (N, 3, size, size) in [0, 1].

    Never computed in what learners get (that would be get_dataloader's answer): stored for the
    notebook's seed (helpers/graded/loader_answers.py), and for the grader's seed given by the
    grader's trusted side (helpers.instructor.references, through verdicts.reference)."""
    stored = loader_answers.images(size) if seed == loader_answers.SEED else None
    if stored is not None:
        return stored
    return reference(LOADED_TEST_IMAGES)(seed, size)


def check_images_are_the_test_images(images: torch.Tensor, seed: int, size: int) -> None:
    """Every image of a batch is one of the test images (or its mirror), as a correct loader
    gives it: the batch really comes from the files the test wrote."""
    expected = loaded_test_images(seed, size)
    candidates = torch.cat([expected, expected.flip(-1)])
    diff = (images.double()[:, None] - candidates.double()[None]).abs().mean((2, 3, 4))
    check(
        bool((diff.min(1).values < 0.08).all()),
        "The DataLoader's batches are not the test's images: each image of a batch should be one "
        "of the files in data_dir, resized and centre-cropped.",
    )


def check_reshuffles(epochs: Any, seed: int, size: int, n_images: int) -> None:
    """Two epochs read from the same loader (observe: a list of two lists of image batches,
    each (B, 3, size, size)) give the test images in different orders. Derived, not reported:
    every image is matched to the test file it is (check_images_are_the_test_images), each epoch
    covers the data set (batch_size 4: a dropped last batch leaves at least n_images - 3), and a
    loader that does not shuffle gives the same files in the same order twice."""

    def covers(epoch: Any) -> bool:  # batches of images that hold (almost) the whole data set
        return (
            isinstance(epoch, list)
            and all(isinstance(b, torch.Tensor) and b.shape[1:] == (3, size, size) for b in epoch)
            and n_images - 3 <= sum(len(b) for b in epoch) <= n_images
        )

    check(
        isinstance(epochs, list) and len(epochs) == 2 and all(covers(e) for e in epochs),
        f"Reading the DataLoader twice should give two epochs of the {n_images} test images, each "
        f"in batches of (3, {size}, {size}) images.",
    )
    expected = loaded_test_images(seed, size).double()
    candidates = torch.cat([expected, expected.flip(-1)])
    orders = []
    for epoch in epochs:
        images = torch.cat(epoch)
        check_images_are_the_test_images(images, seed, size)
        diff = (images.double()[:, None] - candidates[None]).abs().mean((2, 3, 4))
        orders.append((diff.argmin(1) % len(expected)).tolist())  # a mirror is the same file
    check(
        orders[0] != orders[1],
        "The DataLoader does not shuffle: pass shuffle=True so each epoch sees the images in "
        "a new order.",
    )


def observe_dataset_images(obs: Observation, dataset: Any) -> None:
    """The test images framed, wide and tall as the dataset gives them, each loaded three times
    (obs["image NAME"]: a list of three), and the dataset's file stems (obs["samples"])."""
    samples = getattr(dataset, "samples", None)
    obs["samples"] = None if samples is None else [Path(p).stem for p, _ in samples]
    if samples is None:
        return
    by_name = {Path(p).stem: i for i, (p, _) in enumerate(samples)}
    for name in ("framed", "wide", "tall"):
        if name not in by_name:  # the square-only tree (write_test_images)
            continue
        with calling(f"Loading the test image {name}.png"):
            img, _ = dataset[by_name[name]]
        with calling(f"Loading the test image {name}.png again"):
            again = [dataset[by_name[name]][0] for _ in range(2)]
        obs[f"image {name}"] = [plain(img)] + [plain(a) for a in again]


def check_frame_kept(obs: Observation, size: int) -> None:
    """framed.png (64x64, blue frame) shrunk to size keeps its frame in the outer pixels."""
    img = obs.need("image framed")[0]
    check(
        tuple(img.shape) == (3, size, size),
        f"The square test image framed.png (64x64) should come out as (3, {size}, {size}), got "
        f"{tuple(img.shape)}. Use the image_size argument in Resize and CenterCrop.",
    )
    ring = torch.cat([img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1]], dim=1)
    blue = torch.tensor(FRAME_BLUE, dtype=img.dtype).unsqueeze(1) / 255
    check(
        (ring - blue).abs().amax(0).mean() < 0.15,
        f"The square test image framed.png (64x64, with a blue frame) lost its frame when loaded "
        f"at image_size={size}: only its central patch is left. CenterCrop(image_size) comes "
        "before Resize(image_size), so a picture larger than image_size is cut down to its "
        "centre (on the faces: a zoomed-in nose and eyes) instead of shrunk. Put "
        "transforms.Resize(image_size) first, then transforms.CenterCrop(image_size).",
    )


def check_non_square_images(obs: Observation, size: int, square_only: bool = False) -> None:
    """The same image always gives the same tensor (no random crop), and the wide and tall test
    images come out (3, size, size), in colour, centre-cropped: the crop keeps only their green
    centre, squashing would keep their red side strips (observe_dataset_images). `square_only`:
    the square-only tree, where framed.png alone is checked (no random transform, in colour)."""
    check(
        obs.need("samples") is not None,
        "The DataLoader's dataset should be a torchvision datasets.ImageFolder.",
    )
    for name in ("framed",) if square_only else ("framed", "wide", "tall"):
        img, *again = obs.need(f"image {name}")
        check(
            isinstance(img, torch.Tensor),
            f"The dataset gives {type_name(img)} objects instead of tensors: end the transform "
            "with transforms.ToTensor().",
        )
        check(
            all(isinstance(other, torch.Tensor) and torch.equal(img, other) for other in again),
            f"Loading the same image ({name}.png) three times gave different tensors: the "
            "transform is random (for example RandomResizedCrop or RandomCrop), so D trains on "
            "random pieces of faces. The notebook asks for transforms.Resize(image_size) followed "
            "by transforms.CenterCrop(image_size), which always give the whole face.",
        )
        if name == "framed":
            check(
                not square_only or (img.amax(0) - img.amin(0)).mean() > 0.2,
                "The images have lost their colour: the three channels of the test image "
                "framed.png are (almost) equal. The faces are RGB: leave out transforms such as "
                "Grayscale, and keep the 3 colour channels ImageFolder loads.",
            )
            continue  # its frame is checked by check_frame_kept, after the colour and range
        check(
            tuple(img.shape) == (3, size, size),
            f"A non-square image should come out as (3, {size}, {size}), got {tuple(img.shape)}. "
            "The notebook asks for transforms.Resize(image_size) followed by "
            "transforms.CenterCrop(image_size), because Resize with one number keeps a face's "
            "proportions and CenterCrop then cuts the square that D and G work on.",
        )
        check(
            (img.amax(0) - img.amin(0)).mean() > 0.2,
            "The images have lost their colour: the three channels of the green test image "
            f"{name}.png are (almost) equal. The faces are RGB: leave out transforms such as "
            "Grayscale, and keep the 3 colour channels ImageFolder loads.",
        )
        red = (img[0] > 0.5) & (img[1] < 0.4)
        check(
            red.float().mean() < 0.02,
            f"The non-square image {name}.png was squashed instead of centre-cropped: its red side "
            "strips are still in the output. The notebook asks for transforms.Resize(image_size) "
            "(one number: the shorter side) followed by transforms.CenterCrop(image_size), "
            "because squashing a photo to a square distorts the faces G learns to draw.",
        )
