"""Part 2's mutation suite: every realistic mistake in tests/mutants.py's PART2_MUTANTS must be
rejected by the part-2 graded test it targets, with a message that names the mistake.

As tests/test_mutants.py does for part 1: each mutant edits the part-2 solution notebook's own
code (read from the notebook, never copied) and runs its definition cells.
"""

import contextlib
import io
import json
from collections import Counter

import pytest

import part2_unittests
from helpers.graded import verdicts
from helpers.instructor import grade
from helpers.notebook import PART2_NOTEBOOK
from tests.mutants import PART2_MUTANTS, apply, definition_cells, run_definitions
from tests.test_attacks_patching import UNSCORED  # checks the grader does not score

NUMBERS, CELLS, CALLS = definition_cells(PART2_NOTEBOOK)


def test_catalogue_covers_every_part2_graded_test_with_three_mutants():
    counts = Counter(m.test for m in PART2_MUTANTS)
    assert set(counts) == set(CALLS), f"graded tests without mutants: {set(CALLS) - set(counts)}"
    assert min(counts.values()) >= 3, counts


@pytest.mark.parametrize("mutant", PART2_MUTANTS, ids=lambda m: f"{m.test}-{m.name}")
def test_part2_mutant_is_rejected(mutant):
    namespace, _ = run_definitions(NUMBERS, apply(mutant, CELLS))
    test = getattr(part2_unittests, mutant.test)
    args = [namespace.get(name) for name in CALLS[mutant.test]]
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            test(*args)
    except AssertionError as err:
        message = str(err).lower()
        missing = [word for word in mutant.expect if word.lower() not in message]
        assert not missing, (
            f"{mutant.mistake}: rejected, but the message does not mention {missing}: {err}"
        )
        return
    pytest.fail(
        f"{mutant.test} accepted a mistake: {mutant.mistake} "
        f"(it printed {out.getvalue().strip()!r})"
    )


@pytest.mark.parametrize("mutant", PART2_MUTANTS, ids=lambda m: f"{m.test}-{m.name}")
def test_part2_mutant_is_rejected_by_the_graders_judge_too(mutant):
    # as the grader sees it: observed on a seed of its own, through JSON, judged in its process,
    # with the same message (a network far too large still fits the observation limits)
    namespace, _ = run_definitions(NUMBERS, apply(mutant, CELLS))
    args = [namespace.get(name) for name in CALLS[mutant.test]]
    observe, judge = part2_unittests.VERDICTS[mutant.test]
    seed = 1000 + PART2_MUTANTS.index(mutant)
    with contextlib.redirect_stdout(io.StringIO()):
        wire = json.loads(json.dumps(verdicts.encode(observe(*args, seed=seed))))
    passed, message = grade.judge_observation(judge, wire, seed)
    missing = [word for word in mutant.expect if word.lower() not in message.lower()]
    assert not missing, f"{mutant.mistake}: {message}"
    if (mutant.test, mutant.name) in UNSCORED:
        assert passed and message.startswith(f"Tests Passed Note: {grade.NOT_SCORED}"), message
    else:
        assert not passed, f"{mutant.mistake}: {message}"
