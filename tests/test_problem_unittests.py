"""The graded tests accept the notebook's solution, print "Tests Passed", and stay quick.

Their ability to reject mistakes is tested by the mutation suite (test_mutants.py).
"""

import contextlib
import io

import pytest
import torch

import problem_unittests
from helpers.notebook import graded_test_calls, load_solution, read_notebook

NB = read_notebook()
CALLS = graded_test_calls(NB)


@pytest.fixture(scope="module")
def solution():
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution()


def test_every_public_graded_test_is_called_by_the_notebook():
    assert sorted(CALLS) == sorted(problem_unittests.__all__)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_solution_passes(name, solution, capsys):
    args = [solution[arg] for arg in CALLS[name]]
    getattr(problem_unittests, name)(*args)
    assert capsys.readouterr().out.strip().splitlines()[-1] == "Tests Passed"


def test_not_implemented_stub_fails_with_a_plain_message():
    def scale(x, feature_range=(-1, 1)):
        raise NotImplementedError("scale: not implemented yet")

    with pytest.raises(AssertionError, match="not implemented yet.*Write it in the cell above"):
        problem_unittests.test_scale(scale)


def test_a_crash_in_learner_code_becomes_an_assertion_naming_the_call():
    class Discriminator(torch.nn.Module):
        def __init__(self, conv_dim):
            super().__init__()
            self.fc = torch.nn.Linear(10, 1)

        def forward(self, x):
            return self.fc(x)  # wrong: images are not flattened

    with pytest.raises(AssertionError, match=r"D on a \(5, 3, 32, 32\) batch raised RuntimeError"):
        problem_unittests.test_discriminator(Discriminator)


def test_graded_tests_leave_the_learners_models_in_train_mode(solution):
    created = []

    class RecordingGenerator(solution["Generator"]):
        def __init__(self, z_size, conv_dim):
            super().__init__(z_size, conv_dim)
            created.append(self)

    with contextlib.redirect_stdout(io.StringIO()):
        problem_unittests.test_generator(RecordingGenerator)
    assert created and all(G.training for G in created)


# ---------------------------------------------------------------- how a failure reads in Jupyter

BROKEN_SCALE = (
    "def scale(x, feature_range=(-1, 1)):\n    return x * 2 - 1   # ignores feature_range"
)
CRASHING_D = (
    "import torch.nn as nn\n"
    "\n"
    "class Discriminator(nn.Module):\n"
    "    def __init__(self, conv_dim):\n"
    "        super().__init__()\n"
    "        self.fc = nn.Linear(10, 1)\n"
    "\n"
    "    def forward(self, x):\n"
    "        return self.fc(x)   # images are not flattened\n"
)


def learner_notebook():
    import nbformat

    cells = [
        "import problem_unittests as tests",
        BROKEN_SCALE,
        "tests.test_scale(scale)",
        CRASHING_D,
        "tests.test_discriminator(Discriminator)",
    ]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


@pytest.mark.slow
def test_in_jupyter_a_failure_shows_the_message_first_in_a_few_lines():
    import nbclient

    from helpers.notebook import ROOT

    nb = learner_notebook()
    client = nbclient.NotebookClient(
        nb, timeout=300, allow_errors=True, resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["GradedTestFailure", "GradedTestFailure"]

    scale_tb, d_tb = (e.traceback for e in errors)
    assert scale_tb[0].startswith(
        "GradedTestFailure in test_scale: scale(x, feature_range=(-0.5, 2.0))"
    )
    assert "feature_range: x * (max - min) + min." in " ".join(scale_tb)
    assert len(scale_tb) <= 4

    # The learner's own cell and line come after the message; the kit's frames never show.
    assert d_tb[0].startswith(
        "GradedTestFailure in test_discriminator: D on a (5, 3, 32, 32) batch raised RuntimeError"
    )
    text = "\n".join(d_tb)
    assert (
        "  Cell In[4], line 9, in forward\n    return self.fc(x)   # images are not flattened"
        in text
    )
    assert len(d_tb) <= 10
    graded = ROOT / "helpers" / "graded"
    for kit_internal in (
        "problem_unittests.py",
        "helpers/graded",
        *(module.name for module in graded.glob("*.py")),  # failures.py, layers.py, ...
        "contextlib",
        "torch/nn",
        "Traceback",
    ):
        assert kit_internal not in text, kit_internal


@pytest.mark.slow
def test_under_nbval_a_failure_shows_the_same_short_message(tmp_path):
    import os
    import subprocess
    import sys

    import nbformat

    from helpers.notebook import ROOT

    nbformat.write(learner_notebook(), tmp_path / "learner.ipynb")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "learner.ipynb",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 1, out
    assert "GradedTestFailure in test_scale: scale(x, feature_range=(-0.5, 2.0))" in out
    assert "GradedTestFailure in test_discriminator: D on a (5, 3, 32, 32) batch raised" in out
    assert "Cell In[4], line 9, in forward" in out or "line 9, in forward" in out
    for kit_internal in ("problem_unittests.py:", "contextlib.py", "_Fail"):
        assert kit_internal not in out, kit_internal


def test_failures_are_assertion_errors_under_a_public_name():
    assert issubclass(problem_unittests.GradedTestFailure, AssertionError)

    def scale(x, feature_range=(-1, 1)):
        return x * 2 - 1

    with pytest.raises(problem_unittests.GradedTestFailure) as info:
        problem_unittests.test_scale(scale)
    lines = info.value._render_traceback_()
    assert lines[0].startswith("GradedTestFailure in test_scale: ") and len(lines) <= 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_learner_code_that_calls_cuda_passes_on_the_learners_device(capsys):
    """The original course's losses and train move tensors with .cuda() when train_on_gpu (13
    of 14 real notebooks did): on a GPU the loss and training tests run there and pass them."""
    from tests.original_format import ORIGINAL_TRAIN, original_cells, original_definitions

    namespace = original_definitions(original_cells())
    assert namespace["train_on_gpu"] is True and ".cuda()" in ORIGINAL_TRAIN
    for name in ("real_loss", "fake_loss"):
        observed = getattr(problem_unittests, f"observe_{name}")(namespace[name], seed=3)
        assert observed["loss"]["devices"] == ["cuda"]
        getattr(problem_unittests, f"test_{name}")(namespace[name])
    torch.cuda.reset_peak_memory_stats()
    problem_unittests.test_train(namespace["train"])
    assert torch.cuda.max_memory_allocated() > 0  # D and G trained on the GPU
    assert capsys.readouterr().out.count("Tests Passed") == 3

    # labels moved with .cuda() always: right on the learner's GPU
    source = (
        "def real_loss(D_out):\n"
        "    return nn.BCEWithLogitsLoss()(D_out, torch.ones(D_out.size(0), 1).cuda())\n"
    )
    exec(source, namespace)
    problem_unittests.test_real_loss(namespace["real_loss"])
