"""Checks that judged only what the learner side reported (issue 20, item 4): test_optimizers,
test_wgan_optimizers and test_weights_init now judge data only running the learner's code at the
grader's seed produces. A constant optimizer observation, with no networks or optimizers behind
it, fails; the solution's observation recorded at one seed fails when judged at another; the
solution's own observation at its seed passes.
"""

import re

import pytest
import torch

import part2_unittests as part2
import problem_unittests as part1
from helpers.graded.failures import GradedTestFailure
from helpers.graded.plain import check_adam_steps, optimizer_steps
from tests.attacks import reported

SEED, OTHER = 4242, 1717  # the grader's seed, and the seed a replayed observation was made at

JUDGES = {
    "test_optimizers": part1.judge_optimizers,
    "test_wgan_optimizers": part2.judge_wgan_optimizers,
    "test_weights_init": part1.judge_weights_init,
}
NOT_THIS_SEED = {
    "test_optimizers": "are not Adam's with lr 0.0002 and betas (0.5, 0.999) on this test's",
    "test_wgan_optimizers": "and betas (0.0, 0.9) on this test's gradients",
    "test_weights_init": "is not this test's",
}


@pytest.fixture(scope="module", params=sorted(JUDGES))
def name(request):
    return request.param


@pytest.fixture(scope="module")
def at_seed(name):
    return reported.solution_observation(name, SEED)


def test_the_solutions_observation_at_its_seed_passes(name, at_seed):
    JUDGES[name](at_seed, SEED)


def test_the_solutions_observation_from_another_seed_fails(name):
    obs = reported.solution_observation(name, OTHER)
    with pytest.raises(GradedTestFailure, match=re.escape(NOT_THIS_SEED[name])):
        JUDGES[name](obs, SEED)


@pytest.mark.parametrize("steps", [None, "still"])
@pytest.mark.parametrize(
    ("names", "judge"),
    [
        (("d_optimizer", "g_optimizer"), part1.judge_optimizers),
        (("c_optimizer", "g_optimizer"), part2.judge_wgan_optimizers),
    ],
)
def test_a_constant_optimizer_observation_fails(names, judge, steps):
    obs = reported.constant_optimizers(names, reported.still_steps() if steps == "still" else None)
    with pytest.raises(GradedTestFailure, match="are not Adam's with lr 0.0002") as failure:
        judge(obs, SEED)
    assert ("no step was recorded" if steps is None else "differ") in str(failure.value)


@pytest.mark.parametrize(
    ("lr", "betas"), [(0.0001, (0.5, 0.999)), (0.0002, (0.9, 0.999)), (0.0002, (0.5, 0.99))]
)
def test_the_replay_tells_the_notebooks_settings_from_others(lr, betas):
    """Two steps, so beta1 and beta2 show (Adam's first step cancels them out)."""
    obs = reported.solution_observation("test_optimizers", SEED)
    steps, sizes = obs["steps"], obs["sizes"]
    check_adam_steps(steps, sizes, "D", 0.0002, (0.5, 0.999), SEED, "replay:")
    with pytest.raises(GradedTestFailure, match="differ"):
        check_adam_steps(steps, sizes, "D", lr, betas, SEED, "replay:")


def test_recording_the_steps_leaves_the_learners_objects_as_they_were():
    D, G = torch.nn.Linear(3, 2), torch.nn.Linear(2, 3)
    d_opt = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
    before = [p.detach().clone() for p in [*D.parameters(), *G.parameters()]]
    steps = optimizer_steps(D, G, d_opt, g_opt, SEED)
    assert steps is not None and steps["shapes"] == {"D": [[2, 3], [2]], "G": [[3, 2], [3]]}
    after = [p.detach() for p in [*D.parameters(), *G.parameters()]]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert all(p.grad is None for p in [*D.parameters(), *G.parameters()])
    assert d_opt.state == {} and g_opt.state == {}
