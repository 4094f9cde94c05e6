"""Specification of helpers.instructor.classroom: a folder of submissions graded into one gradebook.

The class: the learner release twice (a file, and a folder per student), a notebook that is not
JSON, a hostile submission (fake log lines, then os._exit).
"""

import csv
import json
import os
import shutil

import pytest

from helpers.instructor import classroom, sandbox
from helpers.instructor.release import make_release
from helpers.notebook import NOTEBOOK
from tests.test_attacks import attack_notebook

SANDBOX = sandbox.available() is None


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not SANDBOX and os.environ.get("CI") == "true":
        pytest.fail(f"CI must grade in the sandbox: {sandbox.available()}")
    root = tmp_path_factory.mktemp("class")
    release, _, _ = make_release(NOTEBOOK, root / "release")
    folder = root / "submissions"
    folder.mkdir()
    shutil.copy(release, folder / "alice.ipynb")
    (folder / "bob").mkdir()
    shutil.copy(release, folder / "bob" / "dlnd_face_generation.ipynb")
    (folder / "carol.ipynb").write_text("{ not json")
    attack_notebook(release, root, "fake-log-lines", root / "canary", 9).rename(
        folder / "mallory.ipynb"
    )
    out = root / "gradebook"
    status = classroom.main(
        [str(folder), "--out", str(out), "--parallel", "2", "--timeout", "60"]
        + ([] if SANDBOX else ["--no-sandbox"])
    )
    return status, out


def test_gradebook_has_one_row_per_student(graded):
    status, out = graded
    assert status == 0
    rows = read_csv(out / "gradebook.csv")
    assert [r["student"] for r in rows] == ["alice", "bob", "carol", "mallory"]
    book = json.loads((out / "gradebook.json").read_text())
    assert book["submissions"] == 4 and [s["student"] for s in book["students"]] == [
        "alice",
        "bob",
        "carol",
        "mallory",
    ]


def test_unreadable_and_hostile_submissions_affect_only_their_rows(graded):
    _, out = graded
    rows = {r["student"]: r for r in read_csv(out / "gradebook.csv")}
    assert rows["carol"]["status"] == "unreadable" and "not valid JSON" in rows["carol"]["problem"]
    assert rows["mallory"]["status"] == "graded" and rows["mallory"]["passed"] == "0"
    for student in ("alice", "bob"):
        row = rows[student]
        assert row["status"] == "graded" and row["total"] == "11", f"{student}: {row['problem']}"
        assert row["passed"] == "0"  # the bare release earns nothing


def test_each_student_gets_a_feedback_file(graded):
    _, out = graded
    files = sorted(p.name for p in (out / "feedback").iterdir())
    assert files == ["alice.txt", "bob.txt", "carol.txt", "mallory.txt"]
    assert "not implemented yet" in (out / "feedback" / "alice.txt").read_text()
    assert "could not be graded" in (out / "feedback" / "carol.txt").read_text()


def test_empty_folder_exits_2(tmp_path, capsys):
    assert classroom.main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "No notebooks in" in capsys.readouterr().err


def test_csv_cells_never_start_a_formula():
    assert classroom._spreadsheet_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert classroom._spreadsheet_safe("alice") == "alice"


def test_a_fault_of_the_grading_machine_is_retried_once(tmp_path, monkeypatch):
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in ("dana", "erin"):
        (folder / f"{name}.ipynb").write_text("{}")
    calls = {}

    def flaky(path, **options):
        calls[path.stem] = calls.get(path.stem, 0) + 1
        if path.stem == "erin" or calls[path.stem] == 1:  # dana fails once, erin always
            raise sandbox.SandboxUnavailable("the sandbox did not start: bwrap: no namespace")
        report = {"notebook": str(path), "passed": 0, "total": 1, "tests": [], "cells": []}
        report |= {"definition_errors": [], "notes": [], "sandbox": "none", "seconds": 0.1}
        report["tests"] = [{"name": "test_scale", "passed": True, "message": "", "seconds": 0}]
        report["passed"] = 1
        return report

    monkeypatch.setattr(classroom.grader, "grade", flaky)
    monkeypatch.setattr(classroom.time, "sleep", lambda s: None)
    rows = {
        r["student"]: r
        for r in classroom.grade_class(folder, tmp_path / "out", sandbox=False, progress=None)
    }
    assert calls == {"dana": 2, "erin": 2}
    assert rows["dana"]["status"] == "graded" and rows["dana"]["passed"] == 1
    assert "second try" in (tmp_path / "out" / "feedback" / "dana.txt").read_text()
    assert rows["erin"]["status"] == "grader error"
    assert "the sandbox did not start" in rows["erin"]["problem"]
