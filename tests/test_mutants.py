"""The mutation suite: every realistic mistake in tests/mutants.py must be rejected.

Each mutant edits the notebook's own solution code (read from the notebook, never copied),
runs the notebook's definition cells, and calls the one graded test it targets. The test
must raise an AssertionError whose message names the mistake. The correct solution must
pass every graded test (tests/test_problem_unittests.py). A catch-rate table is printed at
the end of the pytest run (see conftest.py).
"""

import contextlib
import io
from collections import Counter

import pytest
import torch

import problem_unittests
from tests.mutants import MUTANTS, ORIGINAL_MUTANTS, apply, definition_cells, run_definitions
from tests.original_format import (
    course_pieces_provided,
    edited_original,
    judge_original,
    original_definitions,
)

NUMBERS, CELLS, CALLS = definition_cells()
RESULTS = []  # (test, mutant name, caught) for the catch-rate table


def test_catalogue_covers_every_graded_test_with_three_mutants():
    counts = Counter(m.test for m in MUTANTS)
    assert len(MUTANTS) >= 40
    assert set(counts) == set(CALLS), f"graded tests without mutants: {set(CALLS) - set(counts)}"
    assert min(counts.values()) >= 3, counts


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: f"{m.test}-{m.name}")
def test_mutant_is_rejected(mutant):
    if mutant.name == "cuda-labels" and torch.cuda.is_available():
        pytest.skip(
            "on a GPU the loss tests run there, where .cuda() labels are right; "
            "test_problem_unittests.py checks that they pass"
        )
    namespace, _ = run_definitions(NUMBERS, apply(mutant, CELLS))
    test = getattr(problem_unittests, mutant.test)
    args = [namespace.get(name) for name in CALLS[mutant.test]]
    caught = False
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            test(*args)
    except AssertionError as err:
        message = str(err).lower()
        missing = [word for word in mutant.expect if word.lower() not in message]
        caught = not missing
        RESULTS.append((mutant.test, mutant.name, caught))
        assert not missing, (
            f"{mutant.mistake}: rejected, but the message does not mention {missing}: {err}"
        )
        return
    RESULTS.append((mutant.test, mutant.name, caught))
    pytest.fail(
        f"{mutant.test} accepted a mistake: {mutant.mistake} "
        f"(it printed {out.getvalue().strip()!r})"
    )


@pytest.mark.parametrize("mutant", ORIGINAL_MUTANTS, ids=lambda m: f"{m.test}-{m.name}")
def test_original_format_mutant_is_rejected_in_the_learners_terms(mutant):
    """Mistakes in original-format notebooks: the original course's train(D, G, n_epochs,
    print_every=50) graded with its globals, and the other tests judged as the grader judges an
    untagged notebook (accepting the choices that course left open, never these mistakes)."""
    namespace = original_definitions(edited_original(mutant), strict=mutant.test == "test_train")
    with pytest.raises(AssertionError) as failure, contextlib.redirect_stdout(io.StringIO()):
        if mutant.test == "test_train":
            with course_pieces_provided():
                problem_unittests.test_train(namespace["train"])
        else:
            judge_original(mutant.test, namespace)
    message = str(failure.value).lower()
    missing = [word for word in mutant.expect if word.lower() not in message]
    assert not missing, f"{mutant.mistake}: the message does not mention {missing}: {message}"


@pytest.mark.parametrize("original", [False, True], ids=["kit", "original"])
def test_dropout_before_ds_sigmoid_is_named_before_the_sigmoid(original):
    """Dropout on D's logits before its sigmoid: the message names the dropout first (the
    mistake in both formats), then the sigmoid, which is a mistake in the kit's notebook and
    right in an original-format one whose losses take probabilities (least squares here)."""
    name = "original-dropout-before-sigmoid" if original else "dropout-before-sigmoid"
    mutant = next(m for m in [*MUTANTS, *ORIGINAL_MUTANTS] if m.name == name)
    if original:
        namespace = original_definitions(edited_original(mutant))
    else:
        namespace, _ = run_definitions(NUMBERS, apply(mutant, CELLS))
    with pytest.raises(AssertionError) as failure, contextlib.redirect_stdout(io.StringIO()):
        if original:
            judge_original("test_discriminator", namespace)
        else:
            problem_unittests.test_discriminator(namespace["Discriminator"])
    message = str(failure.value)
    sigmoid = "sigmoid is right with your real_loss" if original else "Also, D ends with a sigmoid"
    assert 0 <= message.index("applies dropout") < message.index(sigmoid), message
