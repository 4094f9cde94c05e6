"""The grader on part 2: a part-2 notebook is graded with part 2's graded tests
(part2_unittests), picked by the notebook's own import or by --part.

Graded once per notebook (module-scoped fixtures), the whole part-2 suite, in the sandbox when
bubblewrap is there (always in CI).
"""

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest

import part2_unittests
import problem_unittests
from helpers.instructor import grade, sandbox
from helpers.instructor.cells import kit_notebook_for, kit_tests, read_kit
from helpers.instructor.release import PART2_LEARNER_NOTEBOOK
from helpers.notebook import NOTEBOOK, PART2_NOTEBOOK, ROOT, read_notebook, tags

NO_SANDBOX = (
    [] if sandbox.available() is None or os.environ.get("CI") == "true" else ["--no-sandbox"]
)


def run_cli(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = grade.main([str(a) for a in args] + NO_SANDBOX)
    return status, out.getvalue()


def test_the_kit_notebook_follows_the_submissions_import():
    assert kit_notebook_for(read_notebook(PART2_NOTEBOOK)) == PART2_NOTEBOOK
    assert kit_notebook_for(read_notebook(PART2_LEARNER_NOTEBOOK)) == PART2_NOTEBOOK
    assert kit_notebook_for(read_notebook(NOTEBOOK)) == NOTEBOOK


def test_part2_kit_tests_are_part2_unittests():
    tests = kit_tests(PART2_NOTEBOOK)
    assert sorted(t.name for t in tests) == sorted(part2_unittests.__all__)
    assert {t.module for t in tests} == {"part2_unittests"}
    assert {t.module for t in kit_tests(NOTEBOOK)} == {"problem_unittests"}


def test_each_part_imports_its_own_graded_tests():
    """Part 1's tests module does not pull in part 2's; part 2's notebook imports its own."""
    probe = "import sys, problem_unittests; print('part2_unittests' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
    assert not hasattr(problem_unittests, "test_slerp")
    for notebook in (PART2_NOTEBOOK, PART2_LEARNER_NOTEBOOK):
        setup = [c["source"] for c in read_notebook(notebook)["cells"] if "setup" in tags(c)]
        assert any("import part2_unittests as tests" in source for source in setup), notebook
    # the learner side's fork server preloads the tests module of the part being graded only
    assert read_kit(PART2_NOTEBOOK).preload[0] == "part2_unittests"
    assert "part2_unittests" not in read_kit(NOTEBOOK).preload


@pytest.fixture(scope="module")
def solution(tmp_path_factory):
    report = tmp_path_factory.mktemp("grade") / "report.json"
    status, printed = run_cli(PART2_NOTEBOOK, "--json", report, "--workers", "2")
    return status, printed, json.loads(report.read_text())


def test_part2_solution_gets_full_marks(solution):
    status, printed, report = solution
    assert status == 0, printed
    assert report["passed"] == report["total"] == len(part2_unittests.__all__)
    assert "test_gradient_penalty" in printed and "test_slerp" in printed
    # part 2's verdicts are decided by the grader, like part 1's: no note says otherwise
    assert not any("sandbox" in n for n in report["notes"]), report["notes"]


def test_every_part2_test_is_judged_by_the_grader():
    assert sorted(part2_unittests.VERDICTS) == sorted(part2_unittests.__all__)
    judges = grade.judged_tests({t.module for t in kit_tests(PART2_NOTEBOOK)})
    assert judges.keys() == part2_unittests.VERDICTS.keys()


def test_part2_learner_edition_fails_with_not_implemented_yet(tmp_path):
    report = tmp_path / "report.json"
    status, printed = run_cli(PART2_LEARNER_NOTEBOOK, "--json", report, "--part", "2")
    verdicts = {t["name"]: t for t in json.loads(report.read_text())["tests"]}
    assert status == 1
    assert not verdicts["test_slerp"]["passed"]
    assert "not implemented yet" in verdicts["test_slerp"]["message"]
    assert "not implemented yet" in verdicts["test_gradient_penalty"]["message"]


def test_part2_notebook_without_tags_is_still_graded_with_part2s_tests(tmp_path):
    nb = json.loads(PART2_NOTEBOOK.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell["metadata"].pop("tags", None)  # as some editors leave a notebook
    path = tmp_path / "untagged.ipynb"
    path.write_text(json.dumps(nb))
    report = tmp_path / "report.json"
    status, printed = run_cli(path, "--json", report)
    assert status == 0, printed
    assert json.loads(report.read_text())["total"] == len(part2_unittests.__all__)


def test_classroom_grades_part2_submissions_with_part2s_judged_tests(tmp_path):
    from helpers.instructor import classroom

    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "ann.ipynb").write_bytes(PART2_NOTEBOOK.read_bytes())
    (folder / "ben.ipynb").write_bytes(PART2_LEARNER_NOTEBOOK.read_bytes())
    out = tmp_path / "gradebook"
    with contextlib.redirect_stdout(io.StringIO()):
        status = classroom.main([str(folder), "--out", str(out), "--timeout", "120"] + NO_SANDBOX)
    assert status == 0
    rows = {s["student"]: s for s in json.loads((out / "gradebook.json").read_text())["students"]}
    total = len(part2_unittests.__all__)
    assert (rows["ann"]["passed"], rows["ann"]["total"]) == (total, total), rows["ann"]
    assert (rows["ben"]["passed"], rows["ben"]["total"]) == (0, total), rows["ben"]
