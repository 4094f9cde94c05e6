"""Specification of helpers.instructor.canvas: the classroom's rows as a gradebook in Canvas's
import layout (Student, ID, SIS User ID, SIS Login ID, Section, the assignment; Points
Possible on the second row)."""

import csv
import io

import pytest

from helpers.instructor import canvas, classroom

ROWS = [
    {"student": "bob", "passed": 11, "total": 11, "status": "graded"},
    {"student": "alice", "passed": 3, "total": 11, "status": "graded"},
    {"student": "carol", "passed": 0, "total": 0, "status": "unreadable"},
    {"student": "dave", "passed": 0, "total": 0, "status": "grader error"},
]


def table(text):
    return list(csv.reader(io.StringIO(text)))


def test_the_columns_are_canvass_and_points_possible_comes_second():
    rows = table(canvas.canvas_csv(ROWS, "Face generation (12345)", points=50))
    assert rows[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "Face generation (12345)",
    ]
    assert rows[1] == ["    Points Possible", "", "", "", "", "50"]


def test_each_student_is_keyed_by_the_submission_name_with_a_share_of_the_points():
    rows = table(canvas.canvas_csv(ROWS, points=50))[2:]
    assert rows == [
        ["alice", "", "", "alice", "", "13.64"],  # 3 of 11 tests, times 50 points
        ["bob", "", "", "bob", "", "50"],
        ["carol", "", "", "carol", "", "0"],  # unreadable: 0
        ["dave", "", "", "dave", "", ""],  # the grader failed: blank, to regrade
    ]


def test_the_key_column_can_be_the_sis_user_id_or_canvas_id():
    rows = table(canvas.canvas_csv(ROWS[:1], key="sis_user_id"))
    assert rows[2] == ["bob", "", "bob", "", "", "100"]
    rows = table(canvas.canvas_csv(ROWS[:1], key="id"))
    assert rows[2] == ["bob", "bob", "", "", "", "100"]
    with pytest.raises(ValueError, match="sis_login_id"):
        canvas.canvas_csv(ROWS, key="email")


def test_classroom_writes_the_canvas_file_it_is_asked_for(tmp_path, monkeypatch):
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "u123.ipynb").write_text("{}")

    def fake_grade_class(folder, out, **options):
        return [{"student": "u123", "passed": 5, "total": 10, "status": "graded"}]

    monkeypatch.setattr(classroom, "grade_class", fake_grade_class)
    out = tmp_path / "canvas" / "grades.csv"
    argv = [str(tmp_path / "subs"), "--out", str(tmp_path / "book"), "--canvas", str(out)]
    assert classroom.main([*argv, "--canvas-assignment", "GAN (7)"]) == 0
    rows = table(out.read_text())
    assert rows[0][-1] == "GAN (7)" and rows[2] == ["u123", "", "", "u123", "", "50"]
