"""The original course's own real_loss, fake_loss and scale, which the grader gives a notebook's
original-format ``train(D, G, n_epochs, print_every)`` in place of the notebook's own (see
``helpers.graded.training.course_pieces``): test_real_loss, test_fake_loss and test_scale grade
those, so test_train grades the loop alone.

They are answers to three graded tests, so they live here, in what only the sandbox gets, never
in what learners get (``helpers.instructor.shipping``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from helpers.graded.training import COURSE_PIECE_NAMES
from helpers.graded.verdicts import provide_reference

__all__ = ["fake_loss", "install", "real_loss", "scale"]


def real_loss(D_out: torch.Tensor, smooth: bool = False, *_: Any, **__: Any) -> torch.Tensor:
    """The original course's real_loss: mean BCE with logits against 1 (0.9 when smooth)."""
    labels = torch.full_like(D_out, 0.9 if smooth else 1.0)
    return nn.functional.binary_cross_entropy_with_logits(D_out, labels)


def fake_loss(D_out: torch.Tensor, *_: Any, **__: Any) -> torch.Tensor:
    """The original course's fake_loss: mean BCE with logits against 0."""
    return nn.functional.binary_cross_entropy_with_logits(D_out, torch.zeros_like(D_out))


def scale(
    x: torch.Tensor, feature_range: tuple[float, float] = (-1, 1), *_: Any, **__: Any
) -> torch.Tensor:
    """The original course's scale: [0, 1] -> feature_range (the map test_scale's messages
    state; the solution notebook's own code is not in the graded machinery)."""
    low, high = feature_range
    return low + (high - low) * x


def install() -> None:
    """Provide the three pieces to ``course_pieces()`` in this (the sandbox's) process."""
    pieces: dict[str, Callable[..., Any]] = {
        "real_loss": real_loss,
        "fake_loss": fake_loss,
        "scale": scale,
    }
    for name in COURSE_PIECE_NAMES:
        provide_reference(f"the course's {name}", pieces[name])
