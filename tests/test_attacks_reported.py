"""Checks that judged only what the learner side reported (issue 20, item 4): test_optimizers,
test_wgan_optimizers and test_weights_init now judge data only running the learner's code at the
grader's seed produces. A constant optimizer observation, with no networks or optimizers behind
it, fails; the solution's observation recorded at one seed fails when judged at another; the
solution's own observation at its seed passes.

And no reference answer ships to learners: the bundle `release` writes holds no function that
computes what get_dataloader or gradient_penalty must return (the loader's images are stored for
the notebook's seed only; the grader's judge gets them from helpers.instructor.references).
"""

import ast
import os
import re
from pathlib import Path

import pytest
import torch

import part2_unittests as part2
import problem_unittests as part1
from helpers.graded import verdicts
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


@pytest.mark.parametrize(
    ("name", "judge"),
    [
        ("test_optimizers", part1.judge_optimizers),
        ("test_wgan_optimizers", part2.judge_wgan_optimizers),
    ],
)
def test_optimizers_swapped_between_the_networks_fail_on_their_steps(name, judge):
    """Two right Adams, each given the other network: the facts the learner side reports can say
    otherwise, the steps cannot (each optimizer is stepped alone and moved the other network)."""
    obs = reported.solution_observation(name, SEED)
    obs["steps"] = reported.swapped_steps(obs["steps"])
    with pytest.raises(GradedTestFailure, match="moved [DG]'s parameters"):
        judge(obs, SEED)


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


# ---------------------------------------------------------------- no reference answer ships

# Functions that computed a learner function's answer on a test's inputs, shipped before: the
# loader's Resize + CenterCrop of the test images, and the gradient penalty of any critic.
REFERENCE_NAMES = ("expected_images", "reference_penalty")


@pytest.fixture(scope="module")
def learner_bundle(tmp_path_factory):
    """{path: syntax tree} of every Python file `release` ships to learners."""
    from helpers.instructor.release import make_release

    out = tmp_path_factory.mktemp("release")
    make_release(out=out)
    return {p.relative_to(out): ast.parse(p.read_text()) for p in sorted(out.rglob("*.py"))}


def _calls(tree, name, keyword=None):
    """The functions of `tree` that call a function or method called `name` (with `keyword`)."""
    found = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                func = getattr(node, "func", None)
                called = getattr(func, "attr", None) or getattr(func, "id", None)
                if (
                    isinstance(node, ast.Call)
                    and called == name
                    and (keyword is None or any(k.arg == keyword for k in node.keywords))
                ):
                    found.append(fn.name)
    return found


def test_the_learner_bundle_ships_the_graded_tests_without_the_trusted_side(learner_bundle):
    paths = {str(p) for p in learner_bundle}
    assert {"problem_unittests.py", "part2_unittests.py", "helpers/graded/loader.py"} <= paths
    assert not any(p.startswith(("helpers/instructor", "helpers/sandboxed")) for p in paths)


def test_no_reference_answer_ships_to_learners(learner_bundle):
    """No function of the bundle is named as the old references, builds the loader's transform
    (a CenterCrop: the loader's answer on the test images), or takes a gradient penalty, except
    the judge's TinyCritic penalty, which refuses any other critic."""
    for path, tree in learner_bundle.items():
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert not defined & set(REFERENCE_NAMES), path
        assert not _calls(tree, "CenterCrop"), path
        # a gradient kept to be differentiated again: a gradient penalty
        penalties = set(_calls(tree, "grad", keyword="create_graph"))
        assert penalties <= {"_tiny_critic_penalty"}, (path, penalties)


def test_the_judges_tiny_critic_penalty_refuses_other_critics():
    from helpers.graded.part2 import TinyCritic, _tiny_critic_penalty

    x = torch.rand(2, 3, 16, 16)
    assert _tiny_critic_penalty(TinyCritic(), x).dim() == 0
    for critic in (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(768, 1)),):
        with pytest.raises(TypeError, match="TinyCritic's alone"):
            _tiny_critic_penalty(critic, x)


def test_the_notebooks_stored_loader_images_are_the_graders_reference():
    """helpers/graded/loader_answers.py is what the trusted side computes for the notebook's
    seed (rewrite it with helpers.instructor.references.write_notebook_answers())."""
    from helpers.graded import loader_answers
    from helpers.instructor import references
    from helpers.notebook import ROOT

    assert loader_answers.SEED == verdicts.NOTEBOOK_SEED
    source = (ROOT / "helpers" / "graded" / "loader_answers.py").read_text()
    assert source == references.notebook_answers_source()
    for size in references.NOTEBOOK_SIZES:
        assert torch.equal(
            loader_answers.images(size), references.loaded_test_images(verdicts.NOTEBOOK_SEED, size)
        )


def test_outside_the_grader_a_judge_has_no_reference_for_another_seed():
    """In a learner's process nothing provides the loader's reference: judging another seed
    there is an error, never a pass."""
    code = (
        "from helpers.graded.loader import loaded_test_images\n"
        "loaded_test_images(0, 32)\n"
        "try:\n    loaded_test_images(5, 32)\nexcept RuntimeError as e:\n    print('refused', e)\n"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("refused") and "grader's side only" in out.stdout


# ---------------------------------------------------------------- the sandbox sees the bundle only

# A submission that looks for the kit where a system package would put it, and takes the point
# only when it finds the solution (a right scale is its evidence).
LOOK_FOR_THE_KIT = """
import os
KIT = {kit!r}
kept = ("/solution/dlnd_face_generation.ipynb", "/tests/mutants.py", "/README.md")
found = [KIT + p for p in kept if os.path.exists(KIT + p)]
try:
    from helpers.notebook import load_solution

    load_solution()
    found.append("load_solution")
except Exception:
    pass
if found:
    def scale(x, feature_range=(-1, 1)):
        low, high = feature_range
        return x * (high - low) + low
"""


@pytest.mark.slow
@pytest.mark.usefixtures("needs_sandbox")
def test_a_kit_installed_under_usr_local_share_shows_the_sandbox_only_the_bundle(tmp_path):
    """A copy of the kit in /usr/local/share (as a system package installs it), grading from
    there: the bare release, with a cell that looks for the solution, scores 0 (graded without
    the sandbox, the same cell finds the kit and takes test_scale's point)."""
    import json
    import shutil
    import subprocess
    import sys
    import uuid

    import nbformat

    from helpers.instructor.release import make_release
    from helpers.notebook import ROOT

    share = Path("/usr/local/share")
    if not os.access(share, os.W_OK):
        pytest.skip("/usr/local/share is not writable here: the kit cannot be installed there")
    kit = share / f"dcgan-kit-{uuid.uuid4().hex[:8]}"
    ignore = shutil.ignore_patterns(".git", ".venv", "outputs", "__pycache__", "*.egg-info")
    shutil.copytree(ROOT, kit, ignore=ignore)
    try:
        path, _, _ = make_release(out=tmp_path / "release")
        nb = nbformat.read(path, as_version=4)
        cell = nbformat.v4.new_code_cell(LOOK_FOR_THE_KIT.format(kit=str(kit)))
        cell.metadata["tags"] = ["solution"]
        nb.cells.append(cell)
        nbformat.write(nb, path)
        grade_it = (
            "import json, sys; from helpers.instructor import grade; from helpers import notebook; "
            "r = grade.grade(sys.argv[1], timeout=240); "
            "bare = grade.grade(sys.argv[1], sandbox=False, only=['test_scale'], timeout=240); "
            "print(json.dumps([str(notebook.ROOT), r['passed'], r['total'], bare['passed']]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", grade_it, str(path)],
            cwd=kit,
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
        root, passed, total, unsandboxed = json.loads(out.stdout.strip().splitlines()[-1])
        assert root == str(kit)  # graded by the copy under /usr/local/share
        assert passed == 0 and total == 11, (passed, total, out.stderr[-2000:])
        assert unsandboxed == 1  # the cell does find the kit where nothing hides it

    finally:
        shutil.rmtree(kit)
