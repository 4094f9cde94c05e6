"""Part 2's verdicts decided outside the learner's process, as tests/test_verdicts.py checks for
part 1: each part-2 graded test is OBSERVE then JUDGE (part2_unittests.VERDICTS). These tests
forge part-2 observations by hand (outputs the weights don't give, a forged training step, a
stale seed, known answers written in advance, a forged "passed") and check that none passes,
and that the solution passes on seeds the notebook never uses.
"""

import contextlib
import io
import json

import pytest
import torch

import part2_unittests as tests
from helpers.graded import verdicts
from helpers.graded.failures import GradedTestFailure
from helpers.instructor import grade
from helpers.instructor.cells import kit_tests
from helpers.notebook import PART2_NOTEBOOK, graded_test_calls, load_solution, read_notebook

CALLS = graded_test_calls(read_notebook(PART2_NOTEBOOK))
SEEDS = (7, 31337, 2**31 - 5)  # as the grader draws them: anything but the notebook's 0


@pytest.fixture(scope="module")
def solution():
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution(PART2_NOTEBOOK)


def observe(solution, name, seed):
    observe_fn, _ = tests.VERDICTS[name]
    with contextlib.redirect_stdout(io.StringIO()):
        return observe_fn(*[solution[a] for a in CALLS[name]], seed=seed)


def over_the_wire(obs):
    """An observation as the grader gets it: encoded, through JSON, decoded."""
    return verdicts.decode(json.loads(json.dumps(verdicts.encode(obs))))


def judged(name, obs, seed):
    """(passed, message) of the grader's judge on `obs` (already encoded)."""
    return grade.judge_observation(tests.VERDICTS[name][1], obs, seed)


def test_every_part2_graded_test_has_an_observer_and_a_judge():
    assert sorted(tests.VERDICTS) == sorted(tests.__all__) == sorted(CALLS)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_solutions_observation_passes_on_the_graders_seeds(solution, name, seed):
    wire = json.loads(json.dumps(verdicts.encode(observe(solution, name, seed))))
    assert judged(name, wire, seed) == (True, "Tests Passed")


@pytest.mark.parametrize(
    "name, reason",
    [
        ("test_critic_loss", "should be fake_scores.mean() - real_scores.mean()"),
        ("test_generator_loss", "should be -fake_scores.mean()"),
        ("test_slerp", "should give z0 exactly"),
        ("test_attribute_vector", "attribute_vector"),
        ("test_gradient_penalty", "norm"),
        ("test_train_wgan", "real images"),
        ("test_discriminator64", "did not receive the test's input"),
        ("test_generator64", "did not receive the test's input"),
        ("test_critic", "did not receive the test's input"),
    ],
)
def test_an_observation_made_with_the_notebooks_seed_fails_on_the_graders(solution, name, reason):
    # What the learner side can precompute (the notebook's inputs) is not what the grader asks.
    obs = verdicts.encode(observe(solution, name, seed=verdicts.NOTEBOOK_SEED))
    passed, message = judged(name, obs, seed=987)
    assert not passed and reason in message, message


def test_known_penalties_written_in_advance_fail(solution):
    # 0, 1 and 4 are answers anyone knows; the grader's seed also draws a critic whose answer
    # is known only to whoever computes it.
    obs = over_the_wire(observe(solution, "test_gradient_penalty", seed=5))
    obs["penalty 3"] = torch.tensor(2.25)  # (2.5 - 1)^2, a guess
    with pytest.raises(GradedTestFailure, match=r"gradient has norm [12]\.\d{3} everywhere"):
        tests.judge_gradient_penalty(obs, 5)


def test_a_penalty_off_the_real_fake_segments_fails(solution):
    obs = over_the_wire(observe(solution, "test_gradient_penalty", seed=5))
    obs["square x_hat"] = obs["square x_hat"] + 0.01 * torch.randn_like(obs["square x_hat"])
    with pytest.raises(GradedTestFailure, match="do not lie on the lines"):
        tests.judge_gradient_penalty(obs, 5)


def test_a_penalty_that_does_not_match_its_own_interpolates_fails(solution):
    obs = over_the_wire(observe(solution, "test_gradient_penalty", seed=5))
    obs["square penalty"] = obs["square penalty"] * 1.01
    with pytest.raises(GradedTestFailure, match="on your own x_hat"):
        tests.judge_gradient_penalty(obs, 5)


def test_a_forged_critic_weight_gradient_fails(solution):
    # create_graph: the penalty's gradient for the critic's weight is recomputed by the judge
    obs = over_the_wire(observe(solution, "test_gradient_penalty", seed=5))
    obs["weight grad"] = torch.tensor(1.0)
    with pytest.raises(GradedTestFailure, match="gives"):
        tests.judge_gradient_penalty(obs, 5)


@pytest.mark.parametrize("name", ["test_discriminator64", "test_generator64", "test_critic"])
def test_network_outputs_that_its_reported_weights_do_not_give_fail(solution, name):
    obs = over_the_wire(observe(solution, name, seed=5))
    conv = obs["trace"]["calls"][0]
    conv["output"] = conv["output"] * 1.5
    with pytest.raises(GradedTestFailure, match="its own weights do not give"):
        tests.VERDICTS[name][1](obs, 5)


def test_a_critic_whose_layer_norm_was_forged_fails(solution):
    obs = over_the_wire(observe(solution, "test_critic", seed=5))
    trace = obs["trace"]
    norms = [
        i for i, leaf in enumerate(trace["leaves"]) if leaf["kind"] in ("GroupNorm", "LayerNorm")
    ]
    assert norms, "the solution's critic has a per-image norm layer the judge replays"
    state = trace["leaves"][norms[0]]["state"]
    state["weight"] = state["weight"] * 2
    with pytest.raises(GradedTestFailure, match="GroupNorm|LayerNorm"):
        tests.judge_critic(obs, 5)


def test_a_network_output_other_than_its_last_layers_fails(solution):
    obs = over_the_wire(observe(solution, "test_discriminator64", seed=5))
    obs["out"] = obs["out"] + 1
    with pytest.raises(GradedTestFailure, match="not what its last layer gave"):
        tests.judge_discriminator64(obs, 5)


def _steps(obs, kind):
    return [e for e in obs["run"]["events"] if e["kind"] == kind]


def test_a_forged_critic_step_in_train_wgan_fails(solution):
    obs = over_the_wire(observe(solution, "test_train_wgan", seed=3))
    step = _steps(obs, "d_step")[4]
    step["d_grads"] = [None if g is None else g * 3 for g in step["d_grads"]]
    with pytest.raises(GradedTestFailure, match="critic's"):
        tests.judge_train_wgan(obs, 3)


def test_a_forged_generator_step_in_train_wgan_fails(solution):
    obs = over_the_wire(observe(solution, "test_train_wgan", seed=3))
    step = _steps(obs, "g_step")[1]
    step["g_grads"] = [None if g is None else -g for g in step["g_grads"]]
    with pytest.raises(GradedTestFailure, match="generator's loss has the wrong sign"):
        tests.judge_train_wgan(obs, 3)


def test_train_wgan_weights_swapped_at_a_step_fail(solution):
    # the gradients must be the ones the recorded weights give
    obs = over_the_wire(observe(solution, "test_train_wgan", seed=3))
    step = _steps(obs, "d_step")[2]
    step["D"] = {k: v + 0.05 * torch.randn_like(v) for k, v in step["D"].items()}
    with pytest.raises(GradedTestFailure, match="critic's gradients"):
        tests.judge_train_wgan(obs, 3)


def test_train_wgan_interpolates_off_the_segments_fail(solution):
    obs = over_the_wire(observe(solution, "test_train_wgan", seed=3))
    mixed = next(e for e in obs["run"]["events"] if e["kind"] == "D" and e["grad"])
    mixed["input"] = mixed["input"] + 0.01
    with pytest.raises(GradedTestFailure, match="do not lie between"):
        tests.judge_train_wgan(obs, 3)


def test_train_wgan_records_with_huge_batches_fail_before_any_replay(solution):
    obs = over_the_wire(observe(solution, "test_train_wgan", seed=3))
    event = next(e for e in obs["run"]["events"] if e["kind"] == "D")
    event["input"] = torch.rand(3000, 3, 16, 16)
    with pytest.raises(GradedTestFailure, match="far larger"):
        tests.judge_train_wgan(obs, 3)


def test_a_wgan_record_with_an_unknown_event_names_the_event_and_its_kind(solution):
    obs = over_the_wire(observe(solution, "test_train_wgan", seed=3))
    obs["run"]["events"][4]["kind"] = "sample"  # part 2's recorder records no samples
    with pytest.raises(GradedTestFailure) as failure:
        tests.judge_train_wgan(obs, 3)
    assert str(failure.value) == (
        "The record of the training run came back malformed. The kind of event 4 should be "
        '"D", "G", "d_step" or "g_step", got \'sample\'.'
    )


def test_a_wgan_call_without_its_grad_flag_names_the_call(solution):
    obs = over_the_wire(observe(solution, "test_train_wgan", seed=3))
    index, event = next((i, e) for i, e in enumerate(obs["run"]["events"]) if e["kind"] == "D")
    event["grad"] = 1
    with pytest.raises(GradedTestFailure) as failure:
        tests.judge_train_wgan(obs, 3)
    assert str(failure.value) == (
        'The record of the training run came back malformed. The "grad" entry of event '
        f"{index} (a call of the critic) should be True or False, got 1."
    )


def test_a_huge_batch_in_a_wgan_record_names_the_critic_and_the_shape(solution):
    obs = over_the_wire(observe(solution, "test_train_wgan", seed=3))
    index, event = next((i, e) for i, e in enumerate(obs["run"]["events"]) if e["kind"] == "G")
    event["output"] = torch.rand(3000, 3, 16, 16)
    passed, message = judged("test_train_wgan", verdicts.encode(obs), 3)
    assert not passed and message.startswith(
        "The record of the training run came back malformed (or the critic and G saw batches far "
        "larger than the test's)."
    )
    assert f"The output of event {index} (a call of G) should be at most" in message
    assert message.endswith("got a float32 tensor of shape (3000, 3, 16, 16).")


def test_a_part2_layer_call_to_no_layer_names_the_call(solution):
    obs = over_the_wire(observe(solution, "test_critic", seed=5))
    obs["trace"]["calls"][1]["leaf"] = -1
    with pytest.raises(GradedTestFailure) as failure:
        tests.judge_critic(obs, 5)
    assert str(failure.value).startswith(
        "The record of the critic's layers came back malformed. The layer of call 1 should be "
        "the index of a layer (0 to "
    )
    assert str(failure.value).endswith("got -1.")


def test_a_forged_passed_line_for_a_part2_test_gains_no_point():
    tests_ = [t for t in kit_tests(PART2_NOTEBOOK) if t.name == "test_slerp"]
    line = {"test": {"name": "test_slerp", "passed": True, "message": "Tests Passed"}}
    results, _, _, _ = grade._collect(json.dumps(line).encode() + b"\n", tests_, [], seed=1)
    assert results["test_slerp"]["passed"] is False
    assert "only the grader decides" in results["test_slerp"]["message"]


def test_train_wgan_is_observed_in_full_float32_and_the_setting_restored():
    # cuDNN's default TF32 convolutions are about 1e-3 off: the judge, replaying on the CPU, would
    # not find the gradients of a run on a GPU. (The flag exists without a GPU too.)
    seen = []

    def train_wgan(*args, **kwargs):
        seen.append(torch.backends.cudnn.allow_tf32)

    before = torch.backends.cudnn.allow_tf32
    tests.observe_train_wgan(train_wgan, seed=1)
    assert seen == [False] and torch.backends.cudnn.allow_tf32 == before
