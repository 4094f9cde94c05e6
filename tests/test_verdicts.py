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
from helpers.instructor import grade, references
from helpers.instructor.cells import kit_tests
from helpers.notebook import graded_test_calls, load_solution, read_notebook

references.install()  # judged here as the grader judges, at seeds other than the notebook's

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


def test_dataloader_epochs_in_one_order_fail_whatever_else_it_reports(solution):
    """Shuffling is read from the images of two epochs, not from a reported flag: the same
    order twice fails, and so do epochs that are not the test images or miss some of them."""
    obs = over_the_wire(observe(solution, "test_get_dataloader", seed=4))
    assert "shuffles" not in obs  # nothing to forge
    first, _ = obs["epochs"]
    for epochs, message in [
        ([first, [b.clone() for b in first]], "does not shuffle"),
        ([first, [torch.rand_like(b) for b in first]], "not the test's images"),
        ([first, first[:1]], "two epochs of the 11 test images"),
        ([first], "two epochs"),
    ]:
        with pytest.raises(GradedTestFailure, match=message):
            tests.judge_get_dataloader(verdicts.Observation(obs, epochs=epochs), 4)


def test_a_forged_passed_line_gains_no_point():
    tests_ = [t for t in kit_tests() if t.name == "test_scale"]
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


# A record that comes back malformed (forged, or broken on the way) fails with a message that
# keeps its first sentence and then says which part was wrong, what was expected and what came.


def test_a_training_record_with_an_unknown_event_names_the_event_and_its_kind(solution):
    obs = over_the_wire(observe(solution, "test_train", seed=3))
    obs["run"]["events"][3]["kind"] = "forged"
    with pytest.raises(GradedTestFailure) as failure:
        tests.judge_train(obs, 3)
    assert str(failure.value) == (
        "The record of the training run came back malformed. The kind of event 3 should be "
        '"D", "G", "sample", "d_step" or "g_step", got \'forged\'.'
    )


def test_a_training_record_that_does_not_start_with_its_start_event_says_so(solution):
    obs = over_the_wire(observe(solution, "test_train", seed=3))
    del obs["run"]["events"][0]
    kind = obs["run"]["events"][0]["kind"]
    with pytest.raises(
        GradedTestFailure, match=f"The kind of event 0 should be \"start\", got '{kind}'"
    ):
        tests.judge_train(obs, 3)
    obs["run"]["events"] = []
    with pytest.raises(GradedTestFailure, match=r"Its events should be a list .*, got \[\]\."):
        tests.judge_train(obs, 3)


def test_a_huge_batch_in_a_training_record_is_named_with_its_shape(solution):
    obs = over_the_wire(observe(solution, "test_train", seed=3))
    index, event = next((i, e) for i, e in enumerate(obs["run"]["events"]) if e["kind"] == "D")
    event["input"] = torch.rand(3000, 3, 16, 16)
    with pytest.raises(GradedTestFailure) as failure:
        tests.judge_train(obs, 3)
    message = str(failure.value)
    assert message.startswith("The record of the training run came back malformed (or D and G")
    assert f"The input of event {index} (a call of D) should be a batch of at most 64" in message
    assert message.endswith("got a float32 tensor of shape (3000, 3, 16, 16).")


def test_a_long_malformed_value_is_cut_short_in_the_message(solution):
    obs = over_the_wire(observe(solution, "test_train", seed=3))
    obs["run"]["events"][2]["kind"] = "x" * 4000
    passed, message = judged("test_train", verdicts.encode(obs), 3)
    assert not passed and "The kind of event 2 should be" in message
    assert "got 'xxxxx" in message and message.endswith("xxxxx ...") and len(message) < 200


def test_a_layer_call_to_no_layer_names_the_call_and_the_layers_there_are(solution):
    obs = over_the_wire(observe(solution, "test_discriminator", seed=5))
    n_leaves = len(obs["trace"]["leaves"])
    obs["trace"]["calls"][2]["leaf"] = 99
    with pytest.raises(GradedTestFailure) as failure:
        tests.judge_discriminator(obs, 5)
    assert str(failure.value) == (
        "The record of D's layers came back malformed. The layer of call 2 should be the index "
        f"of a layer (0 to {n_leaves - 1}), got 99."
    )


def test_a_layer_call_whose_input_is_not_a_tensor_names_the_call(solution):
    obs = over_the_wire(observe(solution, "test_generator", seed=5))
    obs["trace"]["calls"][0]["input"] = "forged"
    with pytest.raises(
        GradedTestFailure, match="The input of call 0 should be a tensor, got 'forged'"
    ):
        tests.judge_generator(obs, 5)


def test_a_layer_state_entry_that_is_not_a_tensor_names_the_entry_and_the_layer(solution):
    obs = over_the_wire(observe(solution, "test_discriminator", seed=5))
    leaf = obs["trace"]["leaves"][0]
    leaf["state"]["weight"] = [1, 2, 3]
    with pytest.raises(GradedTestFailure) as failure:
        tests.judge_discriminator(obs, 5)
    assert str(failure.value) == (
        "The record of a layer came back malformed. The entry 'weight' of its "
        f"'{leaf['kind']}' layer's state should be a tensor, got [1, 2, 3]."
    )


def test_a_forged_list_of_devices_is_shown_in_the_message(solution):
    obs = over_the_wire(observe(solution, "test_real_loss", seed=5))
    obs["loss"]["devices"] = ["cpu", "tpu"]
    with pytest.raises(GradedTestFailure) as failure:
        tests.judge_real_loss(obs, 5)
    assert str(failure.value) == (
        'The test\'s list of devices came back malformed. It should be one or two of "cpu" and '
        "\"cuda\", got ['cpu', 'tpu']."
    )
