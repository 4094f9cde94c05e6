"""Observations that carry only what a learner side could report, never what it ran
(tests/test_attacks_reported.py): a constant optimizer observation with no networks or
optimizers behind it, and the solution's honest observations recorded for one seed, to be
judged at another.

Each is in the form the judge reads (through the wire, decoded), as in tests/attacks/trusted.py.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import torch

import part2_unittests as part2
import problem_unittests as part1
from helpers.graded import verdicts
from helpers.notebook import PART2_NOTEBOOK, graded_test_calls, load_solution, read_notebook
from tests.attacks.trusted import over_the_wire

__all__ = ["constant_optimizers", "solution_observation", "still_steps", "swapped_steps"]


def solution_observation(name: str, seed: int) -> verdicts.Observation:
    """The solution's observation of graded test `name` (part 1's or part 2's), recorded at
    `seed`, as the judge reads it."""
    part, notebook = (part2, PART2_NOTEBOOK) if name in part2.VERDICTS else (part1, None)
    path = [notebook] if notebook else []
    calls = graded_test_calls(read_notebook(*path))
    with contextlib.redirect_stdout(io.StringIO()):
        solution = load_solution(*path)
        observe = part.VERDICTS[name][0]
        return over_the_wire(observe(*[solution[a] for a in calls[name]], seed=seed))


def constant_optimizers(
    names: tuple[str, str] = ("d_optimizer", "g_optimizer"), steps: Any = None
) -> Any:
    """What test_optimizers (or, with ("c_optimizer", "g_optimizer"), test_wgan_optimizers)
    reads, written by hand: two Adams with the right settings over networks of 10 and 12
    parameters, and `steps` as the recorded steps (None: no step)."""

    def adam(net: str, size: int, lr: float, betas: list[float]) -> dict[str, Any]:
        params = [[net, i] for i in range(size)]
        return {
            "adam": True,
            "type": "Adam",
            "groups": [{"lr": lr, "betas": betas, "params": params}],
        }

    lr, betas = (0.0002, [0.5, 0.999]) if names[0] == "d_optimizer" else (0.0002, [0.0, 0.9])
    obs = verdicts.Observation()
    obs["sizes"] = {"D": 10, "G": 12}
    obs[names[0]] = adam("D", 10, lr, betas)
    obs[names[1]] = adam("G", 12, lr, betas)
    obs["same"] = False
    obs["steps"] = steps
    return over_the_wire(obs)


def still_steps() -> dict[str, Any]:
    """A step record for constant_optimizers' networks (10 and 12 parameters of 4x4 numbers)
    in which nothing moved: the numbers "after" are those "before"."""
    shapes = {"D": [[4, 4]] * 10, "G": [[4, 4]] * 12}
    record = {net: torch.full((8 * len(s),), 0.01) for net, s in shapes.items()}
    after = {stepped: {n: r.clone() for n, r in record.items()} for stepped in ("D", "G")}
    return {"shapes": shapes, "before": record, "after": after}


def swapped_steps(steps: dict[str, Any]) -> dict[str, Any]:
    """A step record in which each optimizer moved the other network's parameters, as two
    right Adams given each other's network do."""
    after = steps["after"]
    return {**steps, "after": {"D": after["G"], "G": after["D"]}}
