"""Reference answers the judges need that must not ship to learners (the grader's trusted side).

A function here computes what a learner's function must return on a test's inputs: shipped, a
learner could return it as their own (the grader's sandbox shows only what learners get,
helpers/instructor/shipping.py). The grader gives them to the judges
(``helpers.graded.verdicts.provide_reference``) through ``install``, which
helpers.instructor.grade calls; in the notebook, the graded tests read the answers stored for
the notebook's seed (``helpers/graded/loader_answers.py``, written by
``write_notebook_answers`` and checked against it by tests/test_references.py), an answer to no
other input.
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.graded.loader import LOADED_TEST_IMAGES
from helpers.graded.verdicts import NOTEBOOK_SEED, provide_reference

if TYPE_CHECKING:  # torch is imported when a judge needs it, not with the grader
    import torch

__all__ = [
    "NOTEBOOK_SIZES",
    "install",
    "loaded_test_images",
    "notebook_answers_source",
    "write_notebook_answers",
]

NOTEBOOK_SIZES = (32, 16)  # the image sizes test_get_dataloader loads at


def loaded_test_images(seed: int, size: int) -> torch.Tensor:
    """The data loader's test images of `seed` (helpers.graded.loader.loader_images) as a right
    get_dataloader gives them: Resize, CenterCrop, ToTensor; (N, 3, size, size) in [0, 1]."""
    import torch
    from torchvision import transforms

    from helpers.graded.loader import loader_images

    transform = transforms.Compose(
        [transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()]
    )
    return torch.stack([transform(img.convert("RGB")) for img in loader_images(seed).values()])


def install() -> None:
    """Give the judges of this process their reference answers (helpers.graded.verdicts)."""
    provide_reference(LOADED_TEST_IMAGES, loaded_test_images)


def notebook_answers_source() -> str:
    """The text of helpers/graded/loader_answers.py: loaded_test_images(NOTEBOOK_SEED, size) for
    each size the test loads at, as bytes (ToTensor gives k / 255), compressed."""
    import torch

    lines = []
    for size in NOTEBOOK_SIZES:
        images = loaded_test_images(NOTEBOOK_SEED, size)
        data = (images * 255).round().to(torch.uint8).numpy().tobytes()
        text = base64.b64encode(zlib.compress(data, 9)).decode()
        chunks = [text[i : i + 88] for i in range(0, len(text), 88)]
        body = "\n".join(f'        "{c}"' for c in chunks)
        lines.append(f"    {size}: (\n{body}\n    ),")
    answers = "\n".join(lines)
    return f'''"""The data loader's test images for the notebook's seed only, as a right
get_dataloader gives them: what test_get_dataloader compares its batches with in the notebook.
An answer to no other input: the grader draws its own seed and its judge computes the images on
its trusted side (helpers.instructor.references.write_notebook_answers writes this file).
"""

from __future__ import annotations

import base64
import zlib

import numpy as np
import torch

__all__ = ["SEED", "images"]

SEED = {NOTEBOOK_SEED}
# size: the images' bytes (N, 3, size, size), zlib-compressed, in base64
_IMAGES = {{
{answers}
}}


def images(size: int) -> torch.Tensor | None:
    """The test images of SEED loaded at `size`, (N, 3, size, size) in [0, 1]; None for a size
    not stored."""
    if size not in _IMAGES:
        return None
    data = np.frombuffer(zlib.decompress(base64.b64decode(_IMAGES[size])), np.uint8)
    return torch.from_numpy(data.copy()).view(-1, 3, size, size).float().div(255)
'''


def write_notebook_answers() -> Path:
    """Write notebook_answers_source() to helpers/graded/loader_answers.py; return its path."""
    from helpers.notebook import ROOT

    path = ROOT / "helpers" / "graded" / "loader_answers.py"
    path.write_text(notebook_answers_source())
    return path
