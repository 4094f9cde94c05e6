"""The classroom and the sandbox's caps against hostile submissions (issue 20, classes 2 and 3).

Classroom: a submission that is a link (to the solution, to a classmate's notebook, a student
folder that is a link, a link inside a student's folder) is a refused row with 0 points, and its
target is never read; `alice!.ipynb` beside `alice.ipynb` gets a row of its own in every run;
names with escape sequences, line breaks, bidi and invisible characters, or a spreadsheet
formula, come out clean; a row whose grading raises still leaves a complete gradebook. These
run the classroom with a stand-in for the grader that records every notebook it is given (the
sandbox is not what they test). Sandbox: a submission that writes 1 GB into /tmp and /dev/shm
is stopped at the caps, reported, and leaves the host as it was.
"""

import csv
import json
import os
import sys
import unicodedata
import uuid

import nbformat
import pytest

from helpers.instructor import classroom, grade, sandbox
from helpers.instructor.release import make_release
from helpers.notebook import NOTEBOOK
from tests.attacks.classroom import ESCAPE_NAME, FILL_TMPFS, FORMULA_NAME

MARK = f"dcgan-classroom-{uuid.uuid4().hex[:12]}"
INVISIBLE = classroom.INVISIBLE


def notebook(owner):
    """A small notebook whose content says whose it is."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(f"owner = {owner!r}"))
    return nbformat.writes(nb)


class Grader:
    """Stands in for grader.grade: records the owner named in every notebook it is given (the
    evidence of what was read) and gives it one point."""

    def __init__(self, fail=None):
        self.read = []
        self.fail = fail or {}

    def __call__(self, path, **options):
        owner = nbformat.read(path, as_version=4).cells[0].source.split("'")[1]
        self.read.append(owner)
        if owner in self.fail:
            raise self.fail[owner]
        test = {"name": "test_owner", "passed": True, "message": f"owner {owner}", "seconds": 0}
        return {
            "notebook": str(path),
            "passed": 1,
            "total": 1,
            "tests": [test],
            "definition_errors": [],
            "cells": [1],
            "notes": [f"owner {owner}"],
            "sandbox": "none",
            "seconds": 0.1,
        }


def run_class(folder, out, monkeypatch, grader, **kwargs):
    monkeypatch.setattr(classroom.grader, "grade", grader)
    monkeypatch.setattr(classroom.time, "sleep", lambda s: None)
    rows = classroom.grade_class(folder, out, sandbox=False, progress=print, **kwargs)
    return {r["student"]: r for r in rows}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def every_output(out):
    """(where, text) for the CSV, the JSON's strings and each feedback file's name and text."""
    yield "gradebook.csv", (out / "gradebook.csv").read_text()
    yield (
        "gradebook.json",
        json.dumps(json.loads((out / "gradebook.json").read_text()), ensure_ascii=False),
    )
    for path in (out / "feedback").iterdir():
        yield f"feedback name {path.name!r}", path.name
        yield f"feedback {path.name}", path.read_text()


def invisible_in(text):
    return sorted(
        {f"U+{ord(c):04X}" for c in text if c != "\n" and unicodedata.category(c) in INVISIBLE}
    )


# ---------------------------------------------------------------- links


@pytest.fixture
def linked_class(tmp_path):
    """A class where mallory's file links to the solution, trudy's to alice's notebook, eve's
    folder is a link to bob's, and oscar's folder holds his notebook as a link."""
    solution = tmp_path / "solution.ipynb"
    solution.write_text(notebook("the solution"))
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "alice.ipynb").write_text(notebook("alice"))
    (folder / "bob").mkdir()
    (folder / "bob" / "dlnd_face_generation.ipynb").write_text(notebook("bob"))
    (folder / "mallory.ipynb").symlink_to("../solution.ipynb")
    (folder / "trudy.ipynb").symlink_to(folder / "alice.ipynb")
    (folder / "eve").symlink_to("bob")
    (folder / "oscar").mkdir()
    (folder / "oscar" / "dlnd_face_generation.ipynb").symlink_to(solution)
    return folder


def test_links_are_refused_rows_with_no_points_and_are_never_read(
    linked_class, tmp_path, monkeypatch
):
    grader = Grader()
    rows = run_class(linked_class, tmp_path / "out", monkeypatch, grader)
    assert sorted(rows) == ["alice", "bob", "eve", "mallory", "oscar", "trudy"]
    for student in ("mallory", "trudy", "eve", "oscar"):
        row = rows[student]
        assert row["status"] == "refused" and row["passed"] == 0 and row["score"] == 0.0, row
        assert "symbolic link" in row["problem"], row
        assert "symbolic link" in (tmp_path / "out" / "feedback" / f"{student}.txt").read_text()
    # Only alice's and bob's own files were read, once each: no target of a link.
    assert sorted(grader.read) == ["alice", "bob"]
    assert rows["alice"]["passed"] == 1 and rows["bob"]["passed"] == 1


def test_a_notebook_swapped_for_a_link_after_the_folder_was_read_is_not_followed(
    linked_class, tmp_path, monkeypatch
):
    # The folder is read first, the notebooks later: a link put in between must still be
    # refused when the notebook is opened (O_NOFOLLOW), not followed.
    submissions = classroom.find_submissions(linked_class)
    alice = next(s for s in submissions if s.student == "alice")
    (linked_class / "alice.ipynb").unlink()
    (linked_class / "alice.ipynb").symlink_to(tmp_path / "solution.ipynb")
    with pytest.raises(ValueError, match="without following links"):
        classroom._copy_notebook(linked_class, alice.parts, tmp_path / "copy.ipynb")
    assert not (tmp_path / "copy.ipynb").exists()


def test_a_hard_link_to_a_classmates_notebook_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "alice.ipynb").write_text(notebook("alice"))
    os.link(folder / "alice.ipynb", folder / "trudy.ipynb")
    grader = Grader()
    rows = run_class(folder, tmp_path / "out", monkeypatch, grader)
    for student in ("alice", "trudy"):  # which is the copy cannot be told: both are flagged
        assert rows[student]["status"] == "refused" and "hard link" in rows[student]["problem"]
    assert grader.read == []


# ---------------------------------------------------------------- names


def test_a_look_alike_name_never_takes_alices_row_and_rows_are_stable(
    tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "alice!.ipynb").write_text(notebook("mallory"))
    (folder / "alice.ipynb").write_text(notebook("alice"))
    first = run_class(folder, tmp_path / "one", monkeypatch, Grader())
    (folder / "alice?.ipynb").write_text(notebook("trudy"))  # a newcomer changes no old row
    second = run_class(folder, tmp_path / "two", monkeypatch, Grader())
    assert "alice" in first and len(first) == 2
    impostor = next(name for name in first if name != "alice")
    assert impostor.startswith("alice-") and impostor in second and "alice" in second
    assert len(second) == 3
    for out in (tmp_path / "one", tmp_path / "two"):
        feedback = {p.name: p.read_text() for p in (out / "feedback").iterdir()}
        assert "owner alice" in feedback["alice.txt"] and "mallory" not in feedback["alice.txt"]
        assert "owner mallory" in feedback[f"{impostor}.txt"]
        assert len(feedback) == len(read_csv(out / "gradebook.csv"))


def test_names_that_clash_once_cleaned_or_ignoring_case_all_get_their_own_row():
    entries = ["alice", "alice.ipynb", "Alice.ipynb", "al ice.ipynb", "al_ice.ipynb", "x" * 300]
    names = classroom._row_names(entries)
    assert len({n.casefold() for n in names.values()}) == len(entries), names
    assert names == classroom._row_names(list(reversed(entries)))  # the order of listing
    assert names["al_ice.ipynb"] == "al_ice" and names["al ice.ipynb"].startswith("al_ice-")


def test_escape_sequences_line_breaks_and_bidi_never_reach_an_output(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / ESCAPE_NAME).write_text(notebook("mallory"))
    (folder / "bob").mkdir()
    (folder / "bob" / f"notes\u202e{ESCAPE_NAME}").write_text(notebook("bob"))
    rows = run_class(folder, tmp_path / "out", monkeypatch, Grader())
    assert len(rows) == 2 and all(r["status"] == "graded" for r in rows.values()), rows
    console = capsys.readouterr()
    outputs = [*every_output(tmp_path / "out"), ("console", console.out + console.err)]
    for where, text in outputs:
        assert invisible_in(text) == [], where
        fake = [line for line in text.splitlines() if line.strip().startswith("11")]
        assert fake == [], f"{where}: a fake result line {fake}"
    assert len(read_csv(tmp_path / "out" / "gradebook.csv")) == 2


def test_a_formula_in_a_name_is_not_a_formula_in_the_csv(tmp_path, monkeypatch):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / FORMULA_NAME).write_text(notebook("mallory"))
    (folder / "+cmd|calc.ipynb").write_text(notebook("trudy"))
    monkeypatch.chdir(folder)  # the folder given as ".": the notebook cell starts with "="
    run_class(".", tmp_path / "out", monkeypatch, Grader())
    with open(tmp_path / "out" / "gradebook.csv", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert "'" + FORMULA_NAME in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells


# ---------------------------------------------------------------- a row that raises


def test_a_row_whose_grading_raises_leaves_a_complete_gradebook(tmp_path, monkeypatch):
    folder = tmp_path / "submissions"
    folder.mkdir()
    for owner in ("alice", "bob", "crash", "exit", "empty"):
        (folder / f"{owner}.ipynb").write_text(notebook(owner))
    out = tmp_path / "out"
    seen_while_grading = []

    class Hostile(Grader):
        def __call__(self, path, **options):
            seen_while_grading.append([r["status"] for r in read_csv(out / "gradebook.csv")])
            report = super().__call__(path, **options)
            if "empty" in path.name:
                return {**report, "total": 0, "tests": None}  # malformed: no tests at all
            return report

    grader = Hostile(fail={"crash": MemoryError("the judge ran out"), "exit": SystemExit(3)})
    rows = run_class(folder, out, monkeypatch, grader, parallel=2)
    assert sorted(rows) == ["alice", "bob", "crash", "empty", "exit"]
    assert rows["alice"]["passed"] == 1 and rows["bob"]["passed"] == 1
    for student, why in (("crash", "MemoryError"), ("exit", "SystemExit"), ("empty", "TypeError")):
        assert rows[student]["status"] == "grader error" and why in rows[student]["problem"]
        assert "could not be graded" in (out / "feedback" / f"{student}.txt").read_text()
    book = json.loads((out / "gradebook.json").read_text())
    assert [s["student"] for s in book["students"]] == sorted(rows)
    assert len(read_csv(out / "gradebook.csv")) == 5
    # The gradebook was complete from the start: every row, "pending" until graded.
    assert all(len(statuses) == 5 for statuses in seen_while_grading)
    assert seen_while_grading[0] == ["pending"] * 5


# ---------------------------------------------------------------- the sandbox's caps


def shared_memory_mb():
    """The host's shared memory (tmpfs pages), from /proc/meminfo."""
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) >> 10 for line in f if line.startswith("Shmem:"))


def test_a_gigabyte_into_tmp_and_dev_shm_stops_at_the_caps(needs_sandbox, tmp_path):
    release, _, _ = make_release(NOTEBOOK, tmp_path / "release")
    nb = nbformat.read(release, as_version=4)
    code = FILL_TMPFS.replace("{MARK}", MARK)
    nb.cells.append(nbformat.v4.new_code_cell(code, metadata={"tags": ["solution"]}))
    nbformat.write(nb, tmp_path / "fill.ipynb")
    before = shared_memory_mb()
    report = grade.grade(tmp_path / "fill.ipynb", timeout=30, only=["test_scale"])
    after = shared_memory_mb()
    limits = sandbox.Limits()
    (error,) = [e for e in report["definition_errors"] if "filled" in e["message"]]
    for where in ("/tmp", "/dev/shm"):
        assert f"'{where}': '{limits.tmp_mb} MB then No space left on device'" in error["message"]
    assert report["passed"] == 0
    assert f"{limits.tmp_mb} MB (/tmp) and {limits.tmp_mb} MB (/dev/shm)" in report["sandbox"]
    assert after - before < 100, f"host shared memory grew from {before} to {after} MB"
    left = [p for d in ("/tmp", "/dev/shm") for p in os.listdir(d) if MARK in p]
    assert left == []


def test_the_sandbox_as_a_whole_is_memory_capped_or_says_it_is_not(needs_sandbox):
    # tmpfs larger than the memory cap: the cgroup, which counts tmpfs pages, must stop it.
    limits = sandbox.Limits(tmp_mb=2048, sandbox_mb=300)
    fill = "for i in range(1024): open(f'/tmp/{i}', 'wb').write(b'x' * (1 << 20))\nprint('done')"
    if sandbox._memory_cgroup(64) is None:  # no cgroup here: the report must say so
        assert "memory NOT capped for the sandbox as a whole" in sandbox.mode(0, limits)
        return
    assert "memory of the whole sandbox capped at 300 MB" in sandbox.mode(0, limits)
    before = shared_memory_mb()
    outcome = sandbox.run_in_sandbox([sys.executable, "-c", fill], b"", 60, 1 << 16, limits)
    assert b"done" not in outcome.stdout and outcome.returncode != 0, outcome
    assert shared_memory_mb() - before < 100
