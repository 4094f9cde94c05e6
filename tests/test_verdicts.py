"""Specification of the verdicts decided outside the learner's process (helpers.graded.verdicts).

Each graded test is OBSERVE (the learner's code on inputs from a seed) then JUDGE (a pure
function of the observation and the seed). The grader judges in its own process what comes back
from the sandbox; these tests forge and break observations by hand and check that nothing forged
or malformed passes, and that nothing malformed crashes the grader.
"""

import base64
import contextlib
import io
import json

import pytest
import torch

import problem_unittests as tests
from helpers.graded import verdicts
from helpers.graded.failures import GradedTestFailure
from helpers.instructor import grade
from helpers.notebook import graded_test_calls, load_solution, read_notebook

CALLS = graded_test_calls(read_notebook())


@pytest.fixture(scope="module")
def solution():
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution()


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


def test_every_graded_test_is_judged_by_the_grader():
    assert sorted(tests.VERDICTS) == sorted(tests.__all__)
    assert grade.judged_tests().keys() == tests.VERDICTS.keys()


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_solutions_observation_passes_once_it_has_crossed_the_wire(solution, name):
    obs = observe(solution, name, seed=12345)
    wire = json.loads(json.dumps(verdicts.encode(obs)))
    assert judged(name, wire, 12345) == (True, "Tests Passed")


def test_an_observation_made_with_another_seed_fails(solution):
    # What the learner side could precompute (the notebook's seed) is not what the grader asks.
    obs = verdicts.encode(observe(solution, "test_scale", seed=verdicts.NOTEBOOK_SEED))
    passed, message = judged("test_scale", obs, seed=987)
    assert not passed and "in place" in message


def test_d_outputs_that_its_reported_weights_do_not_give_fail(solution):
    obs = over_the_wire(observe(solution, "test_discriminator", seed=5))
    first_conv = next(c for c in obs["trace"]["calls"] if c["leaf"] == 0)
    first_conv["output"] = first_conv["output"] * 1.5
    with pytest.raises(GradedTestFailure, match="its own weights do not give"):
        tests.judge_discriminator(obs, 5)


def test_d_weights_swapped_after_the_fact_fail(solution):
    obs = over_the_wire(observe(solution, "test_discriminator", seed=5))
    leaf = obs["trace"]["leaves"][0]
    leaf["state"]["weight"] = torch.randn_like(leaf["state"]["weight"])
    with pytest.raises(GradedTestFailure, match="its own weights do not give"):
        tests.judge_discriminator(obs, 5)


def test_a_trace_of_other_images_fails(solution):
    obs = over_the_wire(observe(solution, "test_generator", seed=5))
    with pytest.raises(GradedTestFailure, match="did not receive the test's input"):
        tests.judge_generator(obs, 6)


def test_train_gradients_forged_at_one_step_fail(solution):
    obs = over_the_wire(observe(solution, "test_train", seed=3))
    step = next(e for e in obs["run"]["events"] if e["kind"] == "d_step")
    step["d_grads"] = [None if g is None else g * 3 for g in step["d_grads"]]
    with pytest.raises(GradedTestFailure, match="d_optimizer.step"):
        tests.judge_train(obs, 3)


def test_dataloader_batches_that_are_not_the_test_images_fail(solution):
    obs = over_the_wire(observe(solution, "test_get_dataloader", seed=4))
    obs["batch"] = torch.rand(4, 3, 32, 32)
    with pytest.raises(GradedTestFailure, match="not the test's images"):
        tests.judge_get_dataloader(obs, 4)


def test_a_forged_passed_line_gains_no_point():
    tests_ = [t for t in grade.kit_tests() if t.name == "test_scale"]
    line = {"test": {"name": "test_scale", "passed": True, "message": "Tests Passed"}}
    results, _, _, _ = grade._collect(json.dumps(line).encode() + b"\n", tests_, [], seed=1)
    assert results["test_scale"]["passed"] is False
    assert "only the grader decides" in results["test_scale"]["message"]


def array(dtype="float32", shape=(2,), data=None):
    raw = data if data is not None else base64.b64encode(bytes(8)).decode()
    return {"$array": {"dtype": dtype, "shape": list(shape), "data": raw}}


@pytest.mark.parametrize(
    "observation, reason",
    [
        ({"out": array(dtype="object")}, "unknown dtype"),
        ({"out": array(shape=(3,))}, "bytes instead of"),
        ({"out": array(shape=(1 << 40,))}, "too many bytes"),
        ({"out": array(data="not base64!")}, "base64"),
        ({"out": {"$pickle": "gASV"}}, "unknown special entry"),
        ({"out": {"$array": [1, 2]}}, "without dtype"),
        ({"out": "x" * 100_000}, "too long"),
        ("a list, not an object", "not a JSON object"),
    ],
)
def test_malformed_observations_fail_with_the_reason(observation, reason):
    passed, message = judged("test_scale", observation, 1)
    assert not passed and "cannot be read" in message and reason in message


def test_deep_or_huge_observations_fail_without_crashing_the_grader():
    deep = current = {}
    for _ in range(100):
        current["x"] = current = {}
    assert "nested too deep" in judged("test_scale", deep, 1)[1]
    assert "too many items" in judged("test_scale", {"x": [0] * 300_000}, 1)[1]


def test_observations_that_do_not_fit_the_checks_fail_with_a_clear_message():
    obs = {"out": array(shape=(2,)), "x_after": "text", "middle": None, "other": None}
    passed, message = judged("test_scale", obs, 1)
    assert not passed and "does not fit the test" in message
    passed, message = judged("test_scale", {}, 1)
    assert not passed and "no 'out'" in message


def test_a_failure_in_the_sandbox_is_kept_with_its_message():
    obs = {"failure": {"$failure": "scale(x) raised ValueError: nope."}}
    assert judged("test_scale", obs, 1) == (False, "scale(x) raised ValueError: nope.")


def test_encode_keeps_values_dtypes_and_non_finite_numbers():
    obs = verdicts.Observation(
        t=torch.arange(6, dtype=torch.float64).view(2, 3),
        b=torch.tensor([True, False]),
        h=torch.ones(2, dtype=torch.float16),
        n=float("nan"),
        nested=[{"k": (1, "two")}],
    )
    back = over_the_wire(obs)
    assert torch.equal(back["t"], obs["t"]) and back["t"].dtype == torch.float64
    assert torch.equal(back["b"], obs["b"]) and back["h"].dtype == torch.float32
    assert back["n"] != back["n"] and back["nested"] == [{"k": [1, "two"]}]


def test_a_record_too_large_to_replay_fails_before_any_replay(solution):
    obs = over_the_wire(observe(solution, "test_discriminator", seed=5))
    leaf = obs["trace"]["leaves"][0]
    leaf["state"]["weight"] = torch.zeros(8192, 3, 16, 16)  # 6 M weights on 32x32 images
    with pytest.raises(GradedTestFailure, match="cannot be replayed"):
        tests.judge_discriminator(obs, 5)


def test_training_records_with_huge_batches_fail_before_any_replay(solution):
    obs = over_the_wire(observe(solution, "test_train", seed=3))
    event = next(e for e in obs["run"]["events"] if e["kind"] == "D")
    event["input"] = torch.rand(3000, 3, 16, 16)
    with pytest.raises(GradedTestFailure, match="far larger"):
        tests.judge_train(obs, 3)
