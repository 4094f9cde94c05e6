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

    with pytest.raises(AssertionError, match=r"D on a \(1, 3, 32, 32\) batch raised RuntimeError"):
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
