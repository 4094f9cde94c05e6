"""Plumbing for part 2's latent-space sections: interpolation strips, walk grids, and measuring
latent arithmetic with a small attribute classifier.

The notebook's learner writes ``slerp`` and ``attribute_vector``; the functions here take them
as arguments, so what they draw and measure is the learner's own code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.faces import ATTRIBUTES

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CELEBA_COLUMNS",
    "AttributeClassifier",
    "AttributeVector",
    "RateRow",
    "Slerp",
    "arithmetic_rates",
    "arithmetic_rows",
    "celeba_attributes",
    "generate",
    "has_attributes",
    "interpolation",
    "print_rates",
    "train_attribute_classifier",
    "walk_grid",
]

# The learner's slerp(z0, z1, t): latents (B, z) and t (B,) or a float in [0, 1] -> (B, z)
Slerp = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | float], torch.Tensor]
# The learner's attribute_vector(z, has): latents (N, z) and bool labels (N,) -> a vector (z,)
AttributeVector = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# One row of arithmetic_rates: (name, base rate, rate after adding, rate after subtracting)
RateRow = tuple[str, float, float, float]


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """G(z) in eval mode (batch norm with its running statistics), on the CPU, in batches."""
    was_training = G.training
    G.eval()
    try:
        device = next(G.parameters()).device
        return torch.cat(
            [
                G(z[i : i + batch_size].to(device)).float().cpu()
                for i in range(0, len(z), batch_size)
            ]
        )
    finally:
        G.train(was_training)


def interpolation(z0: torch.Tensor, z1: torch.Tensor, slerp: Slerp, steps: int = 8) -> torch.Tensor:
    """(steps, z) latents from z0 to z1 (each (z,)), along slerp."""
    t = torch.linspace(0, 1, steps)
    return slerp(z0.expand(steps, -1), z1.expand(steps, -1), t)


def walk_grid(corners: torch.Tensor, slerp: Slerp, n: int = 6) -> torch.Tensor:
    """(n * n, z) latents on a grid between four corner latents (4, z): slerp along the top and
    bottom edges, then down each column."""
    t = torch.linspace(0, 1, n)
    top = slerp(corners[0].expand(n, -1), corners[1].expand(n, -1), t)
    bottom = slerp(corners[2].expand(n, -1), corners[3].expand(n, -1), t)
    rows = [slerp(top, bottom, float(s)) for s in t]  # row i: a step down every column
    return torch.cat(rows)


class AttributeClassifier(nn.Module):
    """Images (B, 3, 64, 64) in [-1, 1] -> one logit per attribute (B, len(ATTRIBUTES))."""

    def __init__(self, n_attributes: int = 4, width: int = 32) -> None:  # 4: len(ATTRIBUTES)
        super().__init__()
        # A DCGAN-style D with one logit per attribute. The last layer sees the 8x8 map (no
        # pooling): where a feature is (a mouth, the eyes) tells a smile from a frown. Pooling
        # it away left the classifier at chance on smiles (measured: 48% right).
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1),
            nn.LeakyReLU(0.2),  # (B, w, 32, 32)
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),  # (B, 2w, 16, 16)
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1),
            nn.BatchNorm2d(4 * width),
            nn.LeakyReLU(0.2),  # (B, 4w, 8, 8)
            nn.Flatten(),
            nn.Linear(4 * width * 8 * 8, n_attributes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(F.interpolate(x, size=64, mode="bilinear", align_corners=False))


def train_attribute_classifier(
    images: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    epochs: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    hold_out: float = 0.2,
) -> tuple[AttributeClassifier, torch.Tensor, torch.Tensor]:
    """Train an AttributeClassifier on uint8 images (N, 3, H, W) with bool labels (N, A).

    Returns (classifier in eval mode on the CPU, per-attribute balanced accuracy on the held-out
    fifth, per-attribute base rate of that fifth). Balanced accuracy is the mean of the shares
    right among faces with and without the attribute (0.5 is chance, whatever the base rate): it
    says how far the classifier's verdicts on generated faces can be trusted.
    """
    gen = torch.Generator().manual_seed(seed)
    x = images.float() / 127.5 - 1
    y = torch.as_tensor(labels, dtype=torch.float32)
    order = torch.randperm(len(x), generator=gen)
    n_test = int(len(x) * hold_out)
    test, train = order[:n_test], order[n_test:]
    model = AttributeClassifier(y.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    # Rare attributes (beards) weigh more, so the classifier does not just answer "no".
    pos = y[train].mean(0).clamp(0.02, 0.98)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=(1 - pos) / pos)
    for _ in range(epochs):
        for i in range(0, len(train), batch_size):
            idx = train[i : i + batch_size]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        train = train[torch.randperm(len(train), generator=gen)]
    model.eval()
    with torch.no_grad():
        guess = model(x[test]) > 0
    truth = y[test].bool()
    with_it = (guess & truth).sum(0) / truth.sum(0).clamp_min(1)
    without = (~guess & ~truth).sum(0) / (~truth).sum(0).clamp_min(1)
    return model, (with_it + without) / 2, y[test].mean(0)


@torch.no_grad()
def has_attributes(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The classifier's verdicts (bool (B, A)) on images in [-1, 1]."""
    return torch.cat([classifier(images[i : i + 256]) > 0 for i in range(0, len(images), 256)])


def arithmetic_rates(
    G: nn.Module,
    classifier: nn.Module,
    attribute_vector: AttributeVector,
    z_size: int,
    n: int = 500,
    seed: int = 0,
    names: Iterable[str] = ATTRIBUTES,
) -> list[RateRow]:
    """Measure latent arithmetic: for each attribute, its vector from n labelled samples, added
    to n new z. Returns a list of (name, base rate, rate after adding, rate after subtracting)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_size, generator=gen)
    labels = has_attributes(classifier, generate(G, z))  # what G drew for each z
    z_new = torch.randn(n, z_size, generator=gen)
    base = has_attributes(classifier, generate(G, z_new)).float().mean(0)
    rows: list[RateRow] = []
    for a, name in enumerate(names):
        if labels[:, a].all() or not labels[:, a].any():
            rows.append((name, base[a].item(), float("nan"), float("nan")))
            continue  # no vector: every sample (or none) shows it
        v = attribute_vector(z, labels[:, a])
        on = has_attributes(classifier, generate(G, z_new + v))[:, a].float().mean().item()
        off = has_attributes(classifier, generate(G, z_new - v))[:, a].float().mean().item()
        rows.append((name, base[a].item(), on, off))
    return rows


def arithmetic_rows(
    G: nn.Module,
    classifier: nn.Module,
    attribute_vector: AttributeVector,
    z_size: int,
    attribute: str,
    n: int = 500,
    show: int = 8,
    seed: int = 1,
) -> torch.Tensor | None:
    """Images for a picture of latent arithmetic: `show` new faces minus, as drawn, and plus the
    attribute's vector (made from n samples labelled by the classifier): (3 * show, 3, H, W).
    None when G never (or always) draws the attribute, so there is no vector."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_size, generator=gen)
    has = has_attributes(classifier, generate(G, z))[:, list(ATTRIBUTES).index(attribute)]
    if has.all() or not has.any():
        return None
    v = attribute_vector(z, has)
    z_show = torch.randn(show, z_size, generator=gen)
    return generate(G, torch.cat([z_show - v, z_show, z_show + v]))


def print_rates(rows: Iterable[RateRow], n: int) -> None:
    """The table of arithmetic_rates, one line per attribute."""
    print(f"{'attribute':>10} | base rate | + vector | - vector   ({n} new samples each)")
    for name, base, on, off in rows:
        if on != on:  # nan
            print(f"{name:>10} | {base:8.0%}  | (no vector: G never or always draws it)")
        else:
            print(f"{name:>10} | {base:8.0%}  | {on:7.0%}  | {off:7.0%}")


# What ATTRIBUTES are called in CelebA's list_attr_celeba.txt, and whether the column says the
# opposite (CelebA records "No_Beard").
CELEBA_COLUMNS = {
    "smiling": ("Smiling", False),
    "glasses": ("Eyeglasses", False),
    "beard": ("No_Beard", True),
    "masculine": ("Male", False),
}


def celeba_attributes(
    attr_file: str | Path, names: Iterable[str], attributes: Sequence[str] = ATTRIBUTES
) -> np.ndarray:
    """Labels of CelebA images from its attribute file (list_attr_celeba.txt: a count line, a
    line of the 40 attribute names, then one line per image, '000001.jpg -1 1 ...').

    names: the image file names to label ('000001.jpg', ...). Returns a bool array
    (len(names), len(attributes)). Raises ValueError naming the file and what is wrong.
    """
    import numpy as np

    lines = Path(attr_file).read_text(encoding="utf-8").splitlines()
    if len(lines) < 3:
        raise ValueError(f"{attr_file} is not CelebA's attribute file: it has {len(lines)} lines.")
    header = lines[1].split()
    missing = [CELEBA_COLUMNS[a][0] for a in attributes if CELEBA_COLUMNS[a][0] not in header]
    if missing:
        raise ValueError(
            f"{attr_file} has no column {missing[0]}: its second line should name CelebA's 40 "
            "attributes (list_attr_celeba.txt from the CelebA site)."
        )
    columns = [(header.index(CELEBA_COLUMNS[a][0]), CELEBA_COLUMNS[a][1]) for a in attributes]
    rows: dict[str, list[str]] = {}
    for line in lines[2:]:
        parts = line.split()
        if parts:
            rows[parts[0]] = parts[1:]
    table = []
    for name in names:
        if name not in rows:
            raise ValueError(
                f"{attr_file} has no line for the image {name}: use the attribute file of the "
                "CelebA images you prepared (their names must be CelebA's, 000001.jpg ...)."
            )
        values = rows[name]
        table.append([(values[i] == "1") != flip for i, flip in columns])
    return np.array(table, dtype=bool).reshape(len(table), len(attributes))
