"""No false rejections: every correct alternative in tests/variants.py passes its graded test.

Each variant edits the notebook's own solution code (as the mutants do), runs the
definition cells, and calls the one graded test it targets, which must print
"Tests Passed" as its last line.
"""

import contextlib
import io
from collections import Counter

import pytest
import torch

import problem_unittests
from tests.mutants import apply, definition_cells, run_definitions
from tests.original_format import edited_original, judge_original, original_definitions
from tests.variants import NOTES, ORIGINAL_NOTE, ORIGINAL_VARIANTS, VARIANTS

NUMBERS, CELLS, CALLS = definition_cells()


def test_every_graded_test_has_correct_variants():
    counts = Counter(v.test for v in VARIANTS)
    assert set(counts) == set(CALLS), f"graded tests without variants: {set(CALLS) - set(counts)}"
    assert len({(v.test, v.name) for v in VARIANTS}) == len(VARIANTS)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v.test}-{v.name}")
def test_correct_variant_passes(variant):
    namespace, errors = run_definitions(NUMBERS, apply(variant, CELLS))
    assert not errors, f"the variant's cells do not run: {errors[0]}"
    args = [namespace[name] for name in CALLS[variant.test]]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            getattr(problem_unittests, variant.test)(*args)
        except AssertionError as err:
            pytest.fail(f"{variant.test} rejected a correct variant ({variant.style}): {err}")
    printed = out.getvalue().strip()
    assert printed.splitlines()[-1] == "Tests Passed"
    note = NOTES.get((variant.test, variant.name))
    if note:
        assert "Note:" in printed and note in printed, printed
    else:
        assert "Note:" not in printed, printed


@pytest.mark.parametrize("variant", ORIGINAL_VARIANTS, ids=lambda v: f"{v.test}-{v.name}")
def test_original_format_variant_passes_with_the_note_that_says_how(variant):
    """Original-format notebooks, judged as the grader judges an untagged notebook: the original
    course's train(D, G, n_epochs, print_every=50) with its globals, and the choices that course
    left open, each with the note that names what the kit's notebook recommends."""
    namespace = original_definitions(edited_original(variant), strict=variant.test == "test_train")
    try:
        note = judge_original(variant.test, namespace) or ""
    except AssertionError as err:
        pytest.fail(f"{variant.test} rejected a correct original notebook ({variant.style}): {err}")
    if variant.test == "test_train":
        assert note.count(ORIGINAL_NOTE) == 1, note
    expected = NOTES.get((variant.test, variant.name))
    assert (expected or "") in note and bool(note) == bool(expected or variant.test == "test_train")


def test_a_sigmoid_d_passes_with_losses_that_take_probabilities_in_the_original_format_only():
    """An original-format D that ends with a sigmoid passes beside its least-squares losses
    (ORIGINAL_VARIANTS); judged by the kit's spec (its notebook), the same observation fails
    with the sigmoid named, and so does the sigmoid with the notebook's BCEWithLogitsLoss."""
    import problem_unittests

    observe, judge = problem_unittests.VERDICTS["test_discriminator"]
    variant = next(v for v in ORIGINAL_VARIANTS if v.name == "original-sigmoid-least-squares")
    namespace = original_definitions(edited_original(variant))
    with contextlib.redirect_stdout(io.StringIO()):
        obs = observe(namespace["Discriminator"], seed=3)
    assert "take probabilities (a least-squares loss)" in judge(obs, 3, original=True)
    with pytest.raises(AssertionError, match="D ends with a sigmoid"):
        judge(obs, 3)
    bce_with_logits = torch.nn.functional.binary_cross_entropy_with_logits
    namespace["real_loss"] = lambda d: bce_with_logits(d, torch.ones_like(d))
    namespace["fake_loss"] = lambda d: bce_with_logits(d, torch.zeros_like(d))
    with contextlib.redirect_stdout(io.StringIO()):
        obs = observe(namespace["Discriminator"], seed=3)
    with pytest.raises(AssertionError, match="D ends with a sigmoid"):
        judge(obs, 3, original=True)


def test_the_original_template_passes_every_test_in_the_original_format():
    """Judged as an untagged notebook, the original-format notebook built from the solution
    passes every graded test, with no note but test_train's (the original signature)."""
    from helpers.instructor.cells import kit_tests

    namespace = original_definitions(edited_original(ORIGINAL_VARIANTS[0]))
    notes = {t.name: judge_original(t.name, namespace) for t in kit_tests()}
    assert {name for name, note in notes.items() if note} == {"test_train"}, notes


def test_the_testing_page_counts_match_the_catalogues():
    """docs/testing.md's mutation table and its count of correct variants follow tests/*.py."""
    import re

    from helpers.notebook import ROOT
    from tests.mutants import MUTANTS

    page = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(test_\w+)` \| (\d+) \|", page, flags=re.M))
    assert {t: int(n) for t, n in rows.items()} == dict(Counter(m.test for m in MUTANTS))
    assert f"| **total** | **{len(MUTANTS)}** |" in page
    assert f"holds {len(VARIANTS)} correct" in page.replace("\n", " ")
