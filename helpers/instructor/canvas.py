"""A gradebook Canvas imports, from the classroom's rows (instructor tool).

    python -m helpers classroom SUBMISSIONS/ --out gradebook/ --canvas canvas.csv
        [--canvas-assignment "Face generation (12345)"] [--canvas-points 100]
        [--canvas-key sis_login_id]

Canvas's gradebook import (Grades > Import) reads a CSV in the layout of its own export: the
columns ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column
per assignment, headed ``NAME (CANVAS ID)`` for an assignment that exists (a header Canvas does
not know makes a new assignment), and a second row, ``Points Possible``, that gives the
assignment's points. Canvas finds each student by ``ID``, ``SIS User ID`` or ``SIS Login ID``.

The student key is the submission's name (``alice.ipynb`` or ``alice/``, as
helpers.instructor.classroom.find_submissions cleans it): name each submission after the
learner's Canvas SIS login (the default, ``--canvas-key sis_login_id``), SIS user id or Canvas
user id, and the key goes in that column and in ``Student``. The score is the share of graded
tests passed times ``--canvas-points``; a submission that could not be read scores 0, and one
the grader failed on is left blank (Canvas leaves a blank cell's grade as it was), to regrade.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from helpers.files import atomic_write

__all__ = [
    "COLUMNS",
    "KEYS",
    "POINTS_POSSIBLE",
    "add_canvas_arguments",
    "canvas_csv",
    "write_canvas",
]

COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
# --canvas-key: which of Canvas's user columns the submission names hold.
KEYS = {"sis_login_id": "SIS Login ID", "sis_user_id": "SIS User ID", "id": "ID"}
# Canvas's export puts the label with leading spaces in the Student column.
POINTS_POSSIBLE = "    Points Possible"


def canvas_csv(
    rows: Iterable[dict[str, Any]],
    assignment: str = "Face generation",
    points: float = 100.0,
    key: str = "sis_login_id",
) -> str:
    """The CSV text of a Canvas gradebook with one assignment column; `rows` are the
    classroom's (student, passed, total, status), `points` the assignment's points possible."""
    if key not in KEYS:
        raise ValueError(f"key must be one of {', '.join(KEYS)}, not {key!r}")
    columns = [*COLUMNS, assignment]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerow({"Student": POINTS_POSSIBLE, assignment: _number(points)})
    for row in sorted(rows, key=lambda r: r["student"]):
        if row["status"] == "graded" and row["total"]:
            score = _number(round(points * row["passed"] / row["total"], 2))
        elif row["status"] == "unreadable":
            score = "0"
        else:  # a fault of the grader: blank keeps Canvas's grade, and the instructor regrades
            score = ""
        writer.writerow({"Student": row["student"], KEYS[key]: row["student"], assignment: score})
    return buffer.getvalue()


def _number(value: float) -> str:
    return f"{value:g}"


def add_canvas_arguments(parser: argparse.ArgumentParser) -> None:
    """The classroom's options for a Canvas gradebook (--canvas and its settings)."""
    parser.add_argument(
        "--canvas",
        metavar="FILE",
        help="also write a gradebook Canvas imports (Grades > Import) to FILE: Canvas's "
        "columns, one row per submission keyed by its name (see --canvas-key)",
    )
    parser.add_argument(
        "--canvas-assignment",
        default="Face generation",
        metavar="HEADER",
        help="the assignment's column header as in Canvas's own export, 'NAME (ID)', e.g. "
        "'Face generation (12345)'; a header Canvas does not know makes a new assignment "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--canvas-points",
        type=float,
        default=100.0,
        metavar="POINTS",
        help="the assignment's points possible; a student scores this times the share of "
        "graded tests passed (default: %(default)g)",
    )
    parser.add_argument(
        "--canvas-key",
        choices=KEYS,
        default="sis_login_id",
        help="which Canvas user column the submission names are: a submission named "
        "<key>.ipynb or <key>/ (default: %(default)s)",
    )


def write_canvas(args: argparse.Namespace, rows: Iterable[dict[str, Any]]) -> Path | None:
    """Write the Canvas gradebook when the command line asked for one (--canvas); its path."""
    if not args.canvas:
        return None
    path = Path(args.canvas)
    text = canvas_csv(rows, args.canvas_assignment, args.canvas_points, args.canvas_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        f.write(text)
    return path
