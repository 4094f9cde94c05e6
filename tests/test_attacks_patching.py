"""Patching the observers' helpers in the learner's process gains nothing (issue 20, item 4).

A solution with three mistakes per part (tests/attacks/patching.py: sigmoid at D's and at G's
output and SGD for Adam in part 1; G64 ending with nn.Sigmoid, the critic with a sigmoid and
SGD for the WGAN-GP Adam in part 2) replaces the kit's ``push_output`` and ``optimizer_facts``
so the observation reports a right network and right optimizers. Before, that scored 11/11 and
10/10; the judge now derives those facts from the replayed record and the replayed optimizer
steps, so each mistake still fails its test, with the message that names it.

The in-process tests run the patch as the learner side would (observe with the patched helpers,
the observation over the wire), then judge with the kit's own code, as the grader does in its
process. The slow tests grade the same notebooks for real, in the sandbox, and measure what the
strongest such patch can still hide: each of part 1's mutants of the loader, the blocks, D, G,
the optimizers and train, with every value its observation only reports replaced by the
solution's, is still caught, but for the one named in UNSCORED, whose check no record can
confirm: the grader scores it for no one, honest or patched, and its report says so
(docs/threat-model.md says why). Part 2's mutants are measured the same way, through the
grader's judge_observation: the forged observation never gets a point the honest one does not.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys

import pytest
import torch

import part2_unittests as part2
import problem_unittests as part1
from helpers.graded import failures
from helpers.graded.failures import GradedTestFailure, ReportedFailure
from helpers.graded.layers import mixes_images, output_activation, rebuild_trace
from helpers.graded.verdicts import MalformedObservation, Observation, encode
from helpers.notebook import graded_test_calls, load_solution, read_notebook
from tests.attacks import reported
from tests.attacks.patching import MISTAKES, mistaken_notebook
from tests.attacks.trusted import over_the_wire

SEED = 4242  # the grader's seed
PARTS = {1: part1, 2: part2}
# What each caught mistake's message names.
NAMED = {
    "test_discriminator": "sigmoid",
    "test_generator": "sigmoid",
    "test_optimizers": "Adam",
    "test_generator64": "sigmoid",
    "test_critic": "sigmoid",
    "test_wgan_optimizers": "Adam",
}


@contextlib.contextmanager
def restored_kit():
    """The kit's graded-test modules as they were before the block, whatever it patched."""
    names = [n for n in sys.modules if n in ("problem_unittests", "part2_unittests")]
    names += [n for n in sys.modules if n.startswith("helpers.graded")]
    saved = {n: dict(vars(sys.modules[n])) for n in names}
    try:
        yield
    finally:
        for n, attrs in saved.items():
            module = vars(sys.modules[n])
            module.clear()
            module.update(attrs)


def patched_observations(part, tmp_path):
    """{test: the observation of the mistaken, patching notebook of `part` at SEED}, each taken
    with the patch in place and sent over the wire, as the learner side sends it."""
    path = mistaken_notebook(part, tmp_path / f"part{part}.ipynb")
    calls = graded_test_calls(read_notebook(path))
    observations = {}
    with restored_kit(), contextlib.redirect_stdout(io.StringIO()):
        namespace = load_solution(path)  # runs the patch cell too
        module = PARTS[part]
        assert module.push_output.__name__ == "_pushed"  # the patch took
        for test, _, _ in MISTAKES[part]:
            observe = module.VERDICTS[test][0]
            args = [namespace[a] for a in calls[test]]
            observations[test] = over_the_wire(observe(*args, seed=SEED))
    assert PARTS[part].push_output.__name__ == "push_output"
    return observations


@pytest.fixture(scope="module", params=[1, 2], ids=["part1", "part2"])
def patched(request, tmp_path_factory):
    return request.param, patched_observations(request.param, tmp_path_factory.mktemp("patch"))


def test_the_patch_forges_what_the_helpers_report(patched):
    """The attack works on what it targets: the probes and the facts say "right"."""
    part, observations = patched
    for test, obs in observations.items():
        if "optimizers" in test:
            name = "d_optimizer" if part == 1 else "c_optimizer"
            assert obs[name]["adam"] is True
        else:
            up, down = obs["pushed"]
            assert up.max() > 0.8 and down.min() < -0.8


def test_each_mistake_is_still_caught(patched):
    part, observations = patched
    for test, obs in observations.items():
        judge = PARTS[part].VERDICTS[test][1]
        with pytest.raises(GradedTestFailure, match=re.escape(NAMED[test])):
            judge(obs, SEED)


@pytest.mark.slow
@pytest.mark.usefixtures("needs_sandbox")
@pytest.mark.parametrize("part", [1, 2], ids=["part1", "part2"])
def test_graded_in_the_sandbox_the_mistakes_score_nothing(part, tmp_path):
    from helpers.instructor import grade

    path = mistaken_notebook(part, tmp_path / f"part{part}.ipynb")
    tests = [test for test, _, _ in MISTAKES[part]]
    report = grade.grade(path, only=tests, timeout=240)
    assert report["passed"] == 0, grade.format_report(report)
    for result in report["tests"]:
        assert NAMED[result["name"]] in result["message"], result


@pytest.mark.parametrize(
    ("after", "found"),
    [
        (lambda t: t, "none"),
        (torch.sigmoid, "sigmoid"),
        (torch.tanh, "tanh"),
        (lambda t: t * (torch.arange(t.numel()).view_as(t) % 2) * 2, "dropout"),
        (
            lambda t: torch.sigmoid(t * (torch.arange(t.numel()).view_as(t) % 2) * 2),
            "dropout, then sigmoid",
        ),
        (
            lambda t: torch.tanh(t * (torch.arange(t.numel()).view_as(t) % 2) * 2),
            "dropout, then tanh",
        ),
        (lambda t: t * 2 + 1, None),
    ],
    ids=["logits", "sigmoid", "tanh", "dropout", "dropout-sigmoid", "dropout-tanh", "other"],
)
def test_what_follows_the_last_layer_is_read_from_the_record(after, found):
    """output_activation compares the network's output with its last weighted layer's (replayed)
    output: what the probes reported before is now derived."""
    obs = reported.solution_observation("test_discriminator", SEED)
    _, calls = rebuild_trace(obs["trace"], "D")
    last = next(o for leaf, _, o in reversed(calls) if leaf.kind == "Linear")
    assert output_activation(calls, after(last)) == found


# ---------------------------------------------------------------- what a patch can still hide

# Per graded test, what its judge checks against its own computation (the record, the data);
# every other key of the observation is a value the learner side reports, which a patch of the
# kit's helpers can set to anything.
BLOCK_CASES = ("True", "False", "stride 1")  # batch norm or not, and the stride-1 block
DERIVED = {
    "test_discriminator": {"module", "out", "trace"},
    "test_generator": {"module", "out", "trace"},
    "test_optimizers": {"steps"},
    "test_train": {"run", "after", "resume"},
    "test_get_dataloader": {
        "n_images",
        "batch",
        "small batch",
        "image framed",
        "image wide",
        "image tall",
        "epochs",
    },
    # the blocks' records (and what each says it gave); the layer lists are reported
    "test_conv": {f"{what} {case}" for what in ("out", "trace") for case in BLOCK_CASES},
    "test_deconv": {f"{what} {case}" for what in ("out", "trace") for case in BLOCK_CASES},
}
# The mistakes only reported values show (docs/threat-model.md, "Patching the kit inside the
# sandbox"): a patch that reports the solution's values hides them, so their check carries no
# points in the grader (failures.ReportedFailure), for the honest and the patched alike.
UNSCORED = {
    ("test_discriminator", "detached"): "where D's gradients flow is observed, not replayed",
    ("test_critic_loss", "detached"): "the loss's graph is seen by its backward, not replayed",
    ("test_generator_loss", "detached"): "the loss's graph is seen by its backward, not replayed",
}


def _mutants(unscored=False):
    from tests.mutants import MUTANTS

    for m in MUTANTS:
        if m.test in DERIVED and ((m.test, m.name) in UNSCORED) is unscored:
            yield pytest.param(m, id=f"{m.test}-{m.name}")


@pytest.fixture(scope="module")
def solution_reports():
    """The solution's observations at SEED, for the reported values a patch would send."""
    return {n: reported.solution_observation(n, SEED) for n in DERIVED}


@pytest.fixture(scope="module")
def definitions():
    from tests.mutants import definition_cells

    return definition_cells()


def honest_and_forged(mutant, solution_reports, definitions):
    """The mutant's observation at SEED as it is, and with every value it only reports replaced
    by the solution's (what the strongest patch of the reporting helpers sends)."""
    from tests.mutants import apply, run_definitions

    numbers, cells, calls = definitions
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        namespace, _ = run_definitions(numbers, apply(mutant, cells))
        observe = part1.VERDICTS[mutant.test][0]
        obs = over_the_wire(observe(*[namespace.get(a) for a in calls[mutant.test]], seed=SEED))
    forged = Observation(obs)
    for key, value in solution_reports[mutant.test].items():
        if key not in DERIVED[mutant.test]:
            forged[key] = value
    return obs, forged


@pytest.mark.slow
@pytest.mark.parametrize("mutant", list(_mutants()))
def test_a_mutant_with_every_reported_value_forged_is_still_caught(
    mutant, solution_reports, definitions
):
    """The forged observation (honest_and_forged): the judge still fails it, from the record and
    the data alone, or refuses the observation as malformed (a mutant that stops at the shape
    check records no output; the grader gives a refused observation no points). A loader that
    does not shuffle is among them: the judge reads the order of two epochs from their images."""
    honest, forged = honest_and_forged(mutant, solution_reports, definitions)
    for obs in (honest, forged):  # both scored: no failure left to reported checks alone
        with pytest.raises((GradedTestFailure, MalformedObservation)) as failure:
            part1.VERDICTS[mutant.test][1](obs, SEED)
        assert not isinstance(failure.value, ReportedFailure), failure.value


@pytest.mark.slow
@pytest.mark.parametrize("mutant", list(_mutants(unscored=True)))
def test_a_check_no_record_confirms_scores_the_forged_no_more_than_the_honest(
    mutant, solution_reports, definitions
):
    """A mutant UNSCORED names: in the notebook its test still fails, with the message that
    names it; the grader gives the point to its honest and its forged observation alike, and the
    report says that the failed check is not scored, and why."""
    from helpers.instructor import grade, references
    from helpers.instructor.cells import kit_tests
    from helpers.instructor.sandbox import Outcome

    references.install()
    honest, forged = honest_and_forged(mutant, solution_reports, definitions)
    judge = part1.VERDICTS[mutant.test][1]
    with pytest.raises(ReportedFailure, match="(?i)" + re.escape(mutant.expect[0])):
        judge(honest, SEED)
    judge(forged, SEED)  # what the patch hides
    honest_points, message = grade.judge_observation(judge, encode(honest), SEED)
    forged_points, _ = grade.judge_observation(judge, encode(forged), SEED)
    assert honest_points is forged_points is True
    assert message.startswith(f"Tests Passed Note: {grade.NOT_SCORED}"), message
    assert mutant.expect[0].lower() in message.lower(), message

    line = {"test": {"name": mutant.test, "observation": encode(honest), "seconds": 1.0}}
    stdout = b"\n".join(json.dumps(x).encode() for x in ({"started": True}, line, {"done": True}))
    plan = grade.Plan([t for t in kit_tests() if t.name == mutant.test], [], [])
    judged = grade._collect(stdout + b"\n", plan.tests, [], seed=SEED)
    run = grade.LearnerRun(Outcome(stdout, b"", 0, False, False, 1.0), SEED, "bubblewrap")
    feedback = grade.format_report(grade.build_report("nb.ipynb", plan, run, judged, 60))
    assert "1/1 tests passed" in feedback, feedback
    unscored = [
        x for x in feedback.splitlines() if x.startswith(f"Note: {mutant.test}: not scored")
    ]
    assert len(unscored) == 1 and mutant.expect[0].lower() in unscored[0].lower(), feedback


def test_an_unscored_check_keeps_the_judges_own_note():
    """A judge's note (a choice the original course left open) survives a failed check that is
    not scored: both are in the passed test's message, the note first."""
    from helpers.instructor import grade

    @failures.judged
    def judge(obs, seed):
        with failures.reported():
            failures.check(False, "No gradient flows from D's output back to its input image.")
        return "Note: D uses SELU."

    passed, message = grade.judge_observation(judge, {}, SEED)
    assert passed is True
    assert message == (
        f"Tests Passed Note: D uses SELU. Note: {grade.NOT_SCORED}No gradient flows from D's "
        "output back to its input image."
    )


def test_a_reshape_that_mixes_the_batch_is_read_from_the_record():
    """mixes_images finds, bit for bit, another image's numbers in a layer's input; a record
    whose numbers stay in their rows (the solution's) is not flagged."""
    obs = reported.solution_observation("test_discriminator", SEED)
    _, calls = rebuild_trace(obs["trace"], "D")
    assert not mixes_images(calls)
    leaf, inp, out = calls[-1]  # the Linear layer, its input flattened from the last conv's
    b = inp.shape[0]
    mixed = inp.transpose(0, 1).reshape(b, -1)
    assert mixes_images([*calls[:-1], (leaf, mixed, out)])
    assert not mixes_images([*calls[:-1], (leaf, inp.flip(1), out)])  # reordered within a row


# ---------------------------------------------------------------- part 2: the same measure

# Per graded test of part 2, the values its observation only reports (every other key is
# checked against the judge's own computation); "batch N", the output shapes on other batch
# sizes, are reported for every network.
PART2_REPORTED = {
    "test_discriminator64": {
        "module",
        "logits on 32",
        "independence",
        "pushed",
        "gradients",
        "sizes",
    },
    "test_generator64": {
        "module",
        "flat z",
        "independence",
        "pushed",
        "missing",
        "z_size 7",
        "sizes",
    },
    "test_critic": {"module", "batch norms", "independence", "pushed", "gradients"},
    "test_gradient_penalty": {"inputs after", "critic calls"},
    "test_critic_loss": {"graph kept"},
    "test_generator_loss": {"graph kept"},
    "test_wgan_optimizers": {"sizes", "c_optimizer", "g_optimizer", "same"},
    "test_train_wgan": {"result"},
    "test_slerp": {"inputs after"},
    "test_attribute_vector": set(),
}


def _part2_reported(test, key):
    return key in PART2_REPORTED[test] or (test in NETWORKS_64 and key.startswith("batch "))


NETWORKS_64 = ("test_discriminator64", "test_generator64", "test_critic")


@pytest.fixture(scope="module")
def part2_solution_reports():
    """The part-2 solution's observations at SEED (one run of its notebook)."""
    from helpers.notebook import PART2_NOTEBOOK

    calls = graded_test_calls(read_notebook(PART2_NOTEBOOK))
    with contextlib.redirect_stdout(io.StringIO()):
        solution = load_solution(PART2_NOTEBOOK)
        return {
            test: over_the_wire(observe(*[solution[a] for a in calls[test]], seed=SEED))
            for test, (observe, _) in part2.VERDICTS.items()
        }


def test_part2_reported_keys_are_what_the_observers_send(part2_solution_reports):
    for test, keys in PART2_REPORTED.items():
        assert keys <= set(part2_solution_reports[test]), test


@pytest.fixture(scope="module")
def part2_definitions():
    from helpers.notebook import PART2_NOTEBOOK
    from tests.mutants import definition_cells

    return definition_cells(PART2_NOTEBOOK)


def _part2_mutants():
    from tests.mutants import PART2_MUTANTS

    return [pytest.param(m, id=f"{m.test}-{m.name}") for m in PART2_MUTANTS]


@pytest.mark.slow
@pytest.mark.parametrize("mutant", _part2_mutants())
def test_part2_a_forged_observation_scores_no_more_than_the_honest(
    mutant, part2_solution_reports, part2_definitions
):
    """Each part-2 mutant observed at SEED, as it is and with every reported value replaced by
    the solution's: the grader gives the forged no point the honest does not get; a mutant
    UNSCORED names passes both ways with the note that says its check was not scored; every
    other one scores nothing, forged or not."""
    from helpers.instructor import grade
    from tests.mutants import apply, run_definitions

    numbers, cells, calls = part2_definitions
    observe, judge = part2.VERDICTS[mutant.test]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        namespace, _ = run_definitions(numbers, apply(mutant, cells))
        honest = over_the_wire(observe(*[namespace.get(a) for a in calls[mutant.test]], seed=SEED))
    forged = Observation(honest)
    for key, value in part2_solution_reports[mutant.test].items():
        if _part2_reported(mutant.test, key):
            forged[key] = value
    honest_points, message = grade.judge_observation(judge, encode(honest), SEED)
    forged_points, forged_message = grade.judge_observation(judge, encode(forged), SEED)
    assert forged_points <= honest_points, forged_message
    if (mutant.test, mutant.name) in UNSCORED:
        assert honest_points and message.startswith(f"Tests Passed Note: {grade.NOT_SCORED}")
    else:
        assert not honest_points and not forged_points, (message, forged_message)


def test_a_reported_failure_leaves_the_score_to_the_derived_checks():
    """failures.judged: the first failed check's message, whatever comes after it; scored when a
    derived check fails too, or a value it needs is missing, and not scored when none does."""
    from helpers.instructor import grade

    @failures.judged
    def judge(obs, seed):
        with failures.reported():
            failures.check(obs["reported"], "The reported check failed.")
        failures.check(obs["derived"], "The derived check failed.")
        obs.need("record")
        return None

    cases = [
        ({"reported": False, "derived": True, "record": 1}, True),
        ({"reported": False, "derived": False, "record": 1}, False),
        ({"reported": False, "derived": True}, False),  # the observer stopped: nothing derived
        ({"reported": True, "derived": False, "record": 1}, False),
    ]
    for obs, points in cases:
        passed, message = grade.judge_observation(judge, encode(Observation(obs)), SEED)
        assert passed is points, (obs, message)
        first = "reported" if not obs["reported"] else "derived"
        assert f"The {first} check failed." in message, (obs, message)
    # outside a judged judge, a failure is raised as it is
    with pytest.raises(GradedTestFailure) as failure, failures.reported():
        failures.check(False, "Plain.")
    assert not isinstance(failure.value, ReportedFailure)
