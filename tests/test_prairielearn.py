"""Specification of helpers.instructor.prairielearn: PrairieLearn's external grader, run on a
job folder laid out like /grade (student/ in, results/results.json out)."""

import json
import shutil

import pytest

from helpers.instructor import prairielearn, sandbox
from helpers.instructor.release import make_release
from helpers.notebook import NOTEBOOK

SANDBOX = sandbox.available() is None


def job(root, files):
    (root / "student").mkdir(parents=True)
    for name, data in files.items():
        (root / "student" / name).write_bytes(data)
    return root


def read_results(root):
    return json.loads((root / "results" / "results.json").read_text())


@pytest.mark.parametrize(
    "files, expected",
    [
        ({}, "has no notebook"),
        ({"a.ipynb": b"{}", "b.ipynb": b"{}"}, "has 2 notebooks"),
        ({"mine.ipynb": b"\xff\xfe"}, "is not a Jupyter notebook"),
    ],
    ids=["none", "two", "unreadable"],
)
def test_a_bad_submission_is_not_gradable_and_says_why(tmp_path, files, expected):
    root = job(tmp_path, files)
    assert prairielearn.main(["--job-root", str(root)]) == 0
    results = read_results(root)
    assert results["gradable"] is False and results["score"] == 0.0
    assert expected in results["message"] and results["tests"] == []


def test_a_sandbox_that_cannot_start_is_a_failed_grading_not_a_score(tmp_path, monkeypatch):
    root = job(tmp_path, {"mine.ipynb": b"{}"})
    monkeypatch.setattr(sandbox, "available", lambda: "no user namespaces")
    results = prairielearn.grade_job(root)
    assert results["succeeded"] is False and results["gradable"] is True
    assert "no user namespaces" in results["message"]


@pytest.mark.slow  # two real grades (~15-25 s each here)
@pytest.mark.skipif(not SANDBOX, reason="bubblewrap cannot start here")
def test_the_solution_scores_1_and_the_bare_release_0(tmp_path):
    solution = read_results_after(tmp_path / "solution", {NOTEBOOK.name: NOTEBOOK.read_bytes()})
    assert solution["score"] == 1.0 and solution["succeeded"] and solution["gradable"]
    assert solution["tests"] and all(
        t["points"] == t["max_points"] == 1 and t["message"] == "Tests Passed"
        for t in solution["tests"]
    )
    release, _, _ = make_release(NOTEBOOK, tmp_path / "release")
    bare = read_results_after(tmp_path / "bare", {release.name: release.read_bytes()})
    assert bare["score"] == 0.0 and bare["succeeded"] and bare["gradable"]
    assert len(bare["tests"]) == len(solution["tests"])
    assert all(t["points"] == 0 and t["message"] != "Tests Passed" for t in bare["tests"])
    shutil.rmtree(tmp_path / "release")


def read_results_after(root, files):
    prairielearn.grade_job(job(root, files))
    return read_results(root)
