"""The grader's trusted side against hostile observations and notebooks (issue 20's first and
fifth classes): nothing the learner side sends back, and no notebook, can make the judge
allocate gigabytes, run for minutes or crash the grader.

Each attack (tests/attacks/trusted.py) is the solution's honest observation with one part
forged, given to the judge as the grader would give it; its outcome is asserted: refused with
its reason, within a generous bound on the process's own peak memory (resource.getrusage:
what was refused was never allocated), the other tests still graded, or exit status 2 with one
line. Time is not asserted (a loaded machine would make that flaky): `python -m
benchmarks.judge_bounds` prints what judging and each attack cost. Most call the
judge functions directly; one reads a whole forged learner side's answer (grade._collect), the
sandbox aside.
"""

import json
import os
import resource
import time

import pytest
import torch

import problem_unittests as tests
from helpers.graded.failures import GradedTestFailure
from helpers.graded.layers import MAX_REPLAY_OUTPUT, REFUSED
from helpers.graded.training import check_fresh_noise
from helpers.instructor import cells, grade
from helpers.instructor.cells import kit_tests, read_submission
from tests.attacks import trusted
from tests.attacks.trusted import SEED, UNREADABLE

MB = 1024 * 1024
# A generous bound: far above what the refused attacks cost now (a few MB), far below what they
# cost before (3.7 GB; a pairwise noise check over 12,160 rows alone needs 590 MB).
MEMORY_BOUND = 500 * MB


@pytest.fixture(scope="module")
def honest():
    """The solution's observations of the tests the attacks forge, at the grader's seed."""
    return trusted.solution_observations(["test_generator", "test_discriminator", "test_train"])


def fresh(honest, name):
    """A copy of the solution's observation of `name`, free to forge."""
    return trusted.over_the_wire(honest[name])


class Cost:
    """The growth of this process's peak memory (bytes) across a block."""

    def __enter__(self):
        self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc):
        self.memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.peak

    def bounded(self):
        return self.memory < MEMORY_BOUND


def refused(judge, obs, *phrases):
    """Run `judge` on `obs`: it must refuse the observation, naming every phrase."""
    with pytest.raises(GradedTestFailure) as failure, Cost() as cost:
        judge(obs, SEED)
    message = str(failure.value)
    assert message.startswith(REFUSED) and all(p in message for p in phrases), message
    assert cost.bounded(), cost.memory
    return message


# ---------------------------------------------------------------- replayed layers


def test_the_solutions_observations_still_pass(honest):
    for name, obs in honest.items():
        tests.VERDICTS[name][1](trusted.over_the_wire(obs), SEED)


def test_a_deconv_with_a_big_stride_and_a_1x1_kernel_is_refused_by_its_output_size(honest):
    obs = trusted.huge_stride_deconv(fresh(honest, "test_generator"))
    refused(tests.judge_generator, obs, "ConvTranspose2d", f"over the {MAX_REPLAY_OUTPUT}")


@pytest.mark.parametrize(
    "stride", [[1000, 1000], [2], [0, 2], [-1, 2], [2, 2, 2], [2.0, 2.0], [True, 2], "2", None]
)
def test_a_stride_in_an_odd_form_is_refused_naming_the_layer(honest, stride):
    obs = trusted.stride_in_odd_forms(fresh(honest, "test_generator"), stride)
    refused(tests.judge_generator, obs, "G's ConvTranspose2d layer", "stride")


def test_an_input_of_a_rank_no_real_layer_takes_is_refused(honest):
    obs = trusted.odd_rank_input(fresh(honest, "test_discriminator"))
    refused(tests.judge_discriminator, obs, "D's Conv2d layer (call 0)", "5 dimensions")


def test_a_kernel_larger_than_any_of_the_notebooks_is_refused(honest):
    obs = fresh(honest, "test_discriminator")
    leaf = next(leaf for leaf in obs["trace"]["leaves"] if leaf["kind"] == "Conv2d")
    leaf["state"]["weight"] = torch.zeros(4, 3, 1, 1000)
    refused(tests.judge_discriminator, obs, "1x1000 kernel")


# ---------------------------------------------------------------- caps and fresh noise


def test_a_run_of_more_events_than_a_recorder_keeps_is_refused_whatever_its_flag(honest):
    obs = trusted.flood_of_noise(fresh(honest, "test_train"))
    assert obs["run"]["overflow"] is False
    refused(tests.judge_train, obs, "events", "over the 200")


def test_a_sample_far_larger_than_the_tests_fails_before_the_noise_check(honest):
    obs = fresh(honest, "test_train")
    sample = next(e for e in obs["run"]["events"] if e["kind"] == "sample")
    sample["input"] = torch.rand(400_000, 8)
    with pytest.raises(GradedTestFailure, match="far larger"), Cost() as cost:
        tests.judge_train(obs, SEED)
    assert cost.bounded(), cost.memory


def test_fresh_noise_is_checked_in_time_linear_in_the_rows():
    rows = trusted.many_noise_rows()  # 12 160 rows: pairwise, 3e10 comparisons
    with Cost() as cost:
        check_fresh_noise(rows, [torch.rand(16, 192)])
    assert cost.bounded(), cost.memory
    with pytest.raises(GradedTestFailure, match="fed G in 3 training calls"):
        check_fresh_noise(rows + [rows[5][:2], rows[5][1:3]], [])


# ---------------------------------------------------------------- judging in its own process


def slow_judge(obs, seed):
    time.sleep(60)


def greedy_judge(obs, seed):
    torch.ones(1024 * MB)  # 4 GB


def crashing_judge(obs, seed):
    os._exit(3)


def passing_judge(obs, seed):
    return None


@pytest.mark.parametrize(
    "judge, why",
    [
        (slow_judge, "judging it took over 2 s"),
        (greedy_judge, "more memory than the grader gives a judge"),
        (crashing_judge, "judging it ended the judge's process"),
    ],
)
def test_a_judge_past_its_deadline_or_memory_is_refused_and_the_others_still_judged(judge, why):
    jobs = [(passing_judge, {}), (judge, {}), (passing_judge, {})]
    with Cost() as cost:
        results = grade.judge_observations(jobs, SEED, seconds=2, memory=512 * MB)
    assert results[0] == results[2] == (True, "Tests Passed")
    assert results[1] == (False, f"{REFUSED}: {why}.") or (
        not results[1][0] and why in results[1][1]
    ), results[1]
    assert cost.memory < MEMORY_BOUND  # the grader's own process stays small


def test_a_submissions_judging_stops_when_its_budget_is_spent():
    """Observations each within their own deadline (30 s here) but too slow together: judging
    ends when the submission's budget is spent, and the observations left are refused."""
    jobs = [(passing_judge, {})] + [(slow_judge, {})] * 3
    results = grade.judge_observations(jobs, SEED, seconds=30, budget=3)
    assert results[0] == (True, "Tests Passed")
    spent = f"{REFUSED}: the grader's time for judging this submission ran out."
    assert results[1:] == [(False, spent)] * 3, results


def test_a_forged_learner_side_answer_is_refused_test_by_test_and_the_report_written(honest):
    generator = trusted.huge_stride_deconv(fresh(honest, "test_generator"))
    train = trusted.flood_of_noise(fresh(honest, "test_train"))
    lines = [{"started": True}]
    lines += [
        {"test": {"name": name, "observation": trusted.wire(obs), "seconds": 1.0}}
        for name, obs in [
            ("test_generator", generator),
            ("test_discriminator", honest["test_discriminator"]),
            ("test_train", train),
        ]
    ]
    lines.append({"done": True})
    stdout = b"\n".join(json.dumps(line).encode() for line in lines) + b"\n"
    plan = grade.Plan([t for t in kit_tests() if t.name in honest], [], [])
    with Cost() as cost:
        judged = grade._collect(stdout, plan.tests, [], seed=SEED)
    results = judged.results
    assert results["test_discriminator"]["passed"] is True
    for name in ("test_generator", "test_train"):
        assert not results[name]["passed"] and results[name]["message"].startswith(REFUSED)
    assert cost.bounded(), cost.memory


# ---------------------------------------------------------------- cell analysis


def test_a_10_mb_cell_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "big.ipynb"
    path.write_text(json.dumps(trusted.notebook_with_cell("x = 1\n" * (10 * MB // 6))))
    with pytest.raises(ValueError, match="code cell 1 is .* characters long") as err, Cost() as c:
        read_submission(path)
    assert "\n" not in str(err.value) and c.bounded(), c.memory


def test_code_over_the_submissions_budget_is_refused(tmp_path):
    nb = trusted.notebook_with_cell("")
    cell = "y = 2\n" * (cells.MAX_CELL // 6)
    nb["cells"] = [
        dict(nb["cells"][0], source=cell) for _ in range(cells.MAX_CODE // len(cell) + 1)
    ]
    path = tmp_path / "many.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="characters of code the grader reads"):
        read_submission(path)


def test_reading_cells_stops_at_its_time_budget(monkeypatch):
    monkeypatch.setattr(cells, "ANALYSIS_SECONDS", -1.0)
    nb = trusted.notebook_with_cell("x = 1")
    with pytest.raises(ValueError, match="took over -1 s"):
        cells.definition_cells(nb, ["x"])


# ---------------------------------------------------------------- unreadable notebooks


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_an_unreadable_notebook_exits_2_with_one_line(tmp_path, capsys, name):
    content, phrase = UNREADABLE[name]
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    assert grade.main([str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and phrase in captured.err, captured.err
    assert "Traceback" not in captured.err
