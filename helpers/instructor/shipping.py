"""What of the kit ships where, read off the layout of ``helpers/`` (instructor tool).

One rule serves every copy the kit makes of itself:

- **to learners** (``python -m helpers release``): the kit's top-level test modules and
  ``helpers/`` without the subpackages that are not theirs: ``instructor/`` (grading, release,
  classroom, the sandbox host) and ``sandboxed/`` (the grader's code that runs inside the
  sandbox);
- **into the grader's sandbox** (``helpers.instructor.sandbox.bundle``): what a learner already
  has, plus ``sandboxed/``: the learner side may see nothing a learner could not.

A new module ships by where it is put: no list to keep up to date.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from helpers.notebook import ROOT

__all__ = ["TOP_LEVEL_FILES", "Audience", "copy_helpers", "shipped_helpers"]

Audience = Literal["learner", "sandbox"]

# The graded tests a learner's notebook imports (``import problem_unittests as tests``) and the
# workspace keep-alive utilities: they sit beside the notebooks, not in helpers/.
TOP_LEVEL_FILES = ("problem_unittests.py", "part2_unittests.py", "workspace_utils.py")
# Subpackages of helpers/ that each audience never gets.
_LEFT_OUT: dict[str, tuple[str, ...]] = {
    "learner": ("instructor", "sandboxed"),
    "sandbox": ("instructor",),
}


def shipped_helpers(audience: Audience, helpers_dir: Path = ROOT / "helpers") -> list[Path]:
    """The ``.py`` files of `helpers_dir` that `audience` gets, relative to it, sorted."""
    if audience not in _LEFT_OUT:
        raise ValueError(f"audience must be one of {sorted(_LEFT_OUT)}, not {audience!r}")
    left_out = _LEFT_OUT[audience]
    return sorted(
        path.relative_to(helpers_dir)
        for path in helpers_dir.rglob("*.py")
        if "__pycache__" not in path.parts
        and path.relative_to(helpers_dir).parts[0] not in left_out
    )


def copy_helpers(dest: Path, audience: Audience) -> list[Path]:
    """Copy into folder `dest` (made fresh) the part of helpers/ that `audience` gets, with
    ``py.typed``; return the files copied, relative to `dest`."""
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)  # a module removed from the kit must not linger
    copied = []
    for rel in shipped_helpers(audience):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "helpers" / rel, dest / rel)
        copied.append(rel)
    marker = ROOT / "helpers" / "py.typed"
    if marker.exists():
        shutil.copyfile(marker, dest / "py.typed")
    return copied
