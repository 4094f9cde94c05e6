"""Plumbing for part 2's notebook (solution/part2_dcgan64_wgan.ipynb): your part-1 code, and the
WGAN-GP loss plot.

Part 2 does not ask you to write the data loader, the weights initialisation, the DCGAN losses
or the DCGAN training loop again: ``load_part1`` runs the definition cells of your part-1
notebook (its ``setup`` and ``solution`` cells: no data, no training) and hands you what they
define, so "Train the 64x64 DCGAN" trains the paper's networks with your own part-1 code.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PART1_NAME", "Part1Error", "load_part1", "plot_wgan_losses"]

PART1_NAME = "dlnd_face_generation.ipynb"


class Part1Error(RuntimeError):
    """Your part-1 notebook cannot be found or its definition cells fail (the message says why)."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of the chained tracebacks: the message names the cell.
        return [f"{type(self).__name__}: {self}"]


def load_part1(notebook: str | Path) -> dict[str, Any]:
    """Run the setup and solution cells of your part-1 notebook; return their names as a dict.

    notebook: the path of dlnd_face_generation.ipynb (part 2's setup cell takes the one beside
    the part-2 notebook). The cells print nothing here. Raises Part1Error naming the file and the
    cell when the notebook is missing or one of those cells fails.
    """
    from helpers.notebook import DEFINITION_TAGS, numbered_cells, read_notebook, run_cells

    path = Path(notebook)
    if not path.is_file():
        raise Part1Error(
            f"Part 2 uses your part-1 code, from {PART1_NAME}, but there is no {path}. Open part "
            "2 from the folder that holds your part-1 notebook, or set PART1 in the setup cell "
            "to its path."
        )
    try:
        nb = read_notebook(path)
    except ValueError as err:
        raise Part1Error(f"{path} cannot be read as a notebook: {err}") from None
    namespace: dict[str, Any] = {"__name__": "__notebook__"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        errors = run_cells(numbered_cells(nb, *DEFINITION_TAGS), namespace)
    if errors:
        raise Part1Error(
            f"A cell of your part-1 notebook {path} fails when run ({errors[0]}). Fix part 1 "
            "first (its graded tests say what is wrong), save it, then run this cell again."
        ) from errors[0].exception
    return namespace


def plot_wgan_losses(losses: Sequence[Sequence[float]], path: str | Path | None = None) -> Figure:
    """Plot train_wgan's log: the critic's estimate of the Wasserstein distance (-critic_loss),
    G's loss and the gradient penalty, against the logging step. Returns the Figure."""
    import math

    from helpers.plotting import _finish, _new_figure, _png_path

    path = _png_path(path, "plot_wgan_losses")
    fig = _new_figure(figsize=(9, 5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    steps = range(len(losses))
    top.plot(steps, [-row[0] for row in losses], label="Wasserstein estimate (-critic_loss)")
    g = [(i, row[1]) for i, row in enumerate(losses) if math.isfinite(row[1])]
    if g:
        top.plot(*zip(*g), label="g_loss", alpha=0.7)
    top.legend()
    top.set_title("WGAN-GP training")
    bottom.plot(steps, [row[2] for row in losses], color="tab:green", label="gradient penalty")
    bottom.set_xlabel("logging step")
    bottom.legend()
    return _finish(fig, path)
