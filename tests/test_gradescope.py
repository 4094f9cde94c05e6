"""Specification of helpers.instructor.gradescope: the autograder bundle, run in a folder laid
out like Gradescope's /autograder (source/, submission/, results/)."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers.instructor import gradescope, sandbox
from helpers.instructor.release import make_release
from helpers.notebook import BEGIN, NOTEBOOK, PART2_NOTEBOOK, ROOT

SANDBOX = sandbox.available() is None


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    return gradescope.build_bundle(out, visibility="hidden")


def run_bundle(bundle, root, files):
    """Lay out `root` like /autograder with `files` {name: bytes} submitted, run
    run_autograder there, and return results.json."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):  # zipfile drops the modes
        (root / "source" / name).chmod(0o755)
    (root / "submission").mkdir()
    for name, data in files.items():
        (root / "submission" / name).write_bytes(data)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    done = subprocess.run(
        [str(root / "source" / "run_autograder")], env=env, capture_output=True, timeout=600
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


def test_the_zip_has_gradescopes_layout_and_no_solution(bundle):
    with zipfile.ZipFile(bundle) as zf:
        infos = {info.filename: info for info in zf.infolist()}
        names = set(infos)
        assert {"setup.sh", "run_autograder", "grading.json", "requirements.txt"} <= names
        for script in gradescope.EXECUTABLES:
            assert (infos[script].external_attr >> 16) & 0o111, f"{script} is not executable"
        assert "helpers/instructor/grade.py" in names and "problem_unittests.py" in names
        assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", ".git")]
        assert not [n for n in names if "mutant" in n]
        # The notebooks in it are the learner editions, byte for byte: no solution region.
        notebooks = sorted(n for n in names if n.endswith(".ipynb"))
        assert notebooks == [f"solution/{NOTEBOOK.name}", f"solution/{PART2_NOTEBOOK.name}"]
        for name in notebooks:
            data = zf.read(name)
            assert BEGIN.encode() not in data
            assert data == (ROOT / name.split("/")[1]).read_bytes()
            assert data != (ROOT / name).read_bytes()
        assert json.loads(zf.read("grading.json"))["visibility"] == "hidden"
        assert "apt-get install" in zf.read("setup.sh").decode()
        assert "bubblewrap" in zf.read("setup.sh").decode()


def test_one_kit_makes_one_zip_byte_for_byte(bundle, tmp_path):
    again = gradescope.build_bundle(tmp_path, visibility="hidden")
    assert again.read_bytes() == bundle.read_bytes()


def test_a_link_or_a_checkpoint_is_not_the_submission(tmp_path):
    (tmp_path / "mine.ipynb").write_text("{}")
    (tmp_path / "other.ipynb").symlink_to(NOTEBOOK)
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "mine-checkpoint.ipynb").write_text("{}")
    assert gradescope.find_notebook(tmp_path) == tmp_path / "mine.ipynb"


def test_a_grader_crash_is_reported_not_raised(tmp_path, monkeypatch):
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "mine.ipynb").write_text("{}")
    monkeypatch.setattr(sandbox, "available", lambda: None)

    def crash(path, **options):
        raise RuntimeError("out of disk")

    monkeypatch.setattr(gradescope.grader, "grade", crash)
    results = gradescope.run_autograder(tmp_path, {"visibility": "visible"})
    assert "The grader failed on this submission (RuntimeError: out of disk)" in results["output"]
    assert json.loads((tmp_path / "results" / "results.json").read_text()) == results


def test_a_visibility_gradescope_does_not_know_is_refused(tmp_path):
    with pytest.raises(ValueError, match="after_due_date"):
        gradescope.build_bundle(tmp_path, visibility="sometimes")


@pytest.mark.parametrize(
    "files, expected",
    [
        ({}, "has no notebook"),
        ({"a.ipynb": b"{}", "b.ipynb": b"{}"}, "has 2 notebooks (a.ipynb, b.ipynb)"),
        ({"mine.ipynb": b"{ not json"}, "is not a Jupyter notebook"),
    ],
    ids=["none", "two", "unreadable"],
)
def test_a_bad_submission_gets_a_message_in_results_json(bundle, tmp_path, files, expected):
    results = run_bundle(bundle, tmp_path, files)
    assert expected in results["output"]
    assert results["score"] == 0 and results["tests"] == []
    assert results["visibility"] == "hidden"


def test_results_json_is_written_even_when_the_grader_cannot_start(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path / "source")
    (tmp_path / "submission").mkdir()
    env = {**os.environ, "AUTOGRADER_ROOT": str(tmp_path), "AUTOGRADER_PYTHON": "/no/python"}
    subprocess.run(["bash", str(tmp_path / "source" / "run_autograder")], env=env, timeout=60)
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 0 and "before it wrote any results" in results["output"]


def test_the_same_zip_is_prairielearns_grader(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path / "kit")
    (tmp_path / "job" / "student").mkdir(parents=True)
    env = {**os.environ, "AUTOGRADER_PYTHON": sys.executable}
    script = tmp_path / "kit" / "run_prairielearn"
    command = ["bash", str(script), "--job-root", str(tmp_path / "job")]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    results = json.loads((tmp_path / "job" / "results" / "results.json").read_text())
    assert results["gradable"] is False and "has no notebook" in results["message"]


def test_without_a_sandbox_nothing_is_graded_unless_the_instructor_allowed_it(
    tmp_path, monkeypatch
):
    (tmp_path / "mine.ipynb").write_text("{}")
    monkeypatch.setattr(sandbox, "available", lambda: "no user namespaces")
    refused = gradescope.grade_folder(tmp_path)
    assert refused.report is None and "did not allow grading without it" in refused.problem
    calls = []

    def fake_grade(path, **options):
        calls.append(options)
        test = {"name": "test_x", "passed": True, "message": "Tests Passed", "seconds": 0.1}
        return {"passed": 1, "total": 1, "tests": [test], "notes": [], "definition_errors": []}

    monkeypatch.setattr(gradescope.grader, "grade", fake_grade)
    allowed = gradescope.grade_folder(tmp_path, allow_no_sandbox=True)
    assert calls[0]["sandbox"] is False
    results = gradescope.gradescope_results(allowed, "visible")
    assert "Graded without the bubblewrap sandbox" in results["output"]
    assert results["score"] == 1.0 and results["tests"][0]["visibility"] == "visible"


@pytest.mark.slow  # two real grades (~15-25 s each here)
@pytest.mark.skipif(not SANDBOX, reason="bubblewrap cannot start here")
def test_the_solution_gets_full_marks_and_the_bare_release_none(bundle, tmp_path):
    solution = run_bundle(bundle, tmp_path / "solution", {NOTEBOOK.name: NOTEBOOK.read_bytes()})
    assert solution["score"] == len(solution["tests"]) > 0
    assert all(t["max_score"] == 1.0 and t["output"] == "Tests Passed" for t in solution["tests"])
    assert all(t["visibility"] == "hidden" for t in solution["tests"])
    release, _, _ = make_release(NOTEBOOK, tmp_path / "release")
    bare = run_bundle(bundle, tmp_path / "bare", {release.name: release.read_bytes()})
    assert bare["score"] == 0 and len(bare["tests"]) == len(solution["tests"])
    assert all(t["output"] != "Tests Passed" for t in bare["tests"])
    shutil.rmtree(tmp_path / "release")


@pytest.mark.slow  # one real grade, without the sandbox
def test_the_opt_in_fallback_grades_without_the_sandbox_and_says_so(tmp_path, monkeypatch):
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    monkeypatch.setattr(sandbox, "available", lambda: "user namespaces are off")
    graded = gradescope.grade_folder(tmp_path, allow_no_sandbox=True)
    results = gradescope.gradescope_results(graded)
    assert results["score"] == len(results["tests"]) > 0
    assert "Graded without the bubblewrap sandbox" in results["output"]
    assert "user namespaces are off" in results["output"]
