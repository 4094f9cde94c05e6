"""Submissions that patch the observers' helpers inside the learner's process (issue 20, item 4).

The graded tests' observers (``observe_x`` in problem_unittests.py and part2_unittests.py) call
kit helpers that a learner's cell can replace: ``push_output`` (the trained-to-grow probe that
reported "no sigmoid", "ends with tanh") and ``optimizer_facts`` (the optimizers' class, learning
rate and betas). The attack replaces them with functions that report a right network's and a
right optimizer's values, on a solution with three mistakes. Before, that took part 1 from 8/11
to 11/11 and part 2 from 8/10 to 10/10; now the judge derives each of these facts from what only
running the learner's code gives (the network's output against its last layer's replayed output,
the optimizers' recorded steps against Adam's replayed steps), and the mistakes are caught.

``mistaken_notebook(part)`` writes the solution with its three mistakes and the patch cell;
``PATCH[part]`` is the patch, also run in-process by tests/test_attacks_patching.py.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from helpers.notebook import NOTEBOOK, PART2_NOTEBOOK

__all__ = ["MISTAKES", "PATCH", "mistaken_notebook"]

# Per part: (graded test, the cell's text before, after): one mistake each, in the solution's code.
MISTAKES = {
    1: [
        (
            "test_discriminator",
            "        return self.fc(x)  # (B, 1) logits",
            "        return torch.sigmoid(self.fc(x))",
        ),
        (
            "test_generator",
            "        return torch.tanh(self.deconv3(x))  # (B, 3, 32, 32) in [-1, 1]",
            "        return torch.sigmoid(self.deconv3(x))",
        ),
        (
            "test_optimizers",
            "d_optimizer = optim.Adam(D.parameters(), lr=lr, betas=(beta1, beta2))",
            "d_optimizer = optim.SGD(D.parameters(), lr=0.01)",
        ),
    ],
    2: [
        (
            "test_generator64",
            "            nn.Tanh(),\n        )",
            "            nn.Sigmoid(),\n        )",
        ),
        (
            "test_critic",
            "        return self.net(x).flatten(1)\n",
            "        return torch.sigmoid(self.net(x).flatten(1))\n",
        ),
        (
            "test_wgan_optimizers",
            "c_optimizer = optim.Adam(critic.parameters(), lr=wgan_lr, betas=wgan_betas)",
            "c_optimizer = optim.SGD(critic.parameters(), lr=0.01)",
        ),
    ],
}

_PATCH = """
import torch
import {module} as _tests
from helpers.graded import plain as _plain


def _pushed(module, make_input, direction, steps=25, lr=0.05):
    # what a right network reports: logits past 1 and below 0, images reaching -0.9 and 0.9
    out = module(make_input()).detach()
    return torch.full_like(out, direction * (2.0 if out[0].numel() == 1 else 0.9))


def _adam_facts(opt, D, G):
    facts = _plain.optimizer_facts(opt, D, G)
    if facts is not None:
        facts["adam"], facts["type"] = True, "Adam"
        for group in facts["groups"]:
            group["lr"], group["betas"] = {lr}, {betas}
    return facts


_tests.push_output = _pushed
_tests.optimizer_facts = _adam_facts
"""

PATCH = {
    1: _PATCH.format(module="problem_unittests", lr=0.0002, betas=[0.5, 0.999]),
    2: _PATCH.format(module="part2_unittests", lr=0.0001, betas=[0.0, 0.9]),
}


def mistaken_notebook(part: int, dest: Path) -> Path:
    """Write to `dest` the solution notebook of `part` (1 or 2) with MISTAKES[part] made and
    PATCH[part] as a last solution cell; return `dest`."""
    nb = nbformat.read(NOTEBOOK if part == 1 else PART2_NOTEBOOK, as_version=4)
    for _, old, new in MISTAKES[part]:
        cells = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        assert len(cells) == 1 and cells[0].source.count(old) == 1, old
        cells[0].source = cells[0].source.replace(old, new)
    cell = nbformat.v4.new_code_cell(PATCH[part])
    cell.metadata["tags"] = ["solution"]
    nb.cells.append(cell)
    nbformat.write(nb, dest)
    return dest
