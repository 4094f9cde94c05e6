"""PrairieLearn's external grader for the kit (instructor tool).

    python -m helpers prairielearn [--job-root /grade] [--allow-no-sandbox]

PrairieLearn copies the learner's files into ``/grade/student/``, runs the question's
``entrypoint`` in the grading image, and reads ``/grade/results/results.json``. This command
grades the one notebook in ``JOB_ROOT/student/`` (helpers.instructor.gradescope.grade_folder:
the same grading as on Gradescope) and writes that file: ``gradable``, ``succeeded``, ``score``
in [0, 1], ``message``, ``output`` and one test per graded test with ``name``, ``points`` (1 or
0), ``max_points`` (1), ``message`` and ``output``. A submission with no notebook, several, or
one that cannot be read is not gradable (PrairieLearn does not count it as an attempt); a
sandbox that cannot start or a grader fault gives ``succeeded: false``. The kit files it runs
from are those of the Gradescope bundle (docs/instructor-guide.md says where they go).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from helpers.instructor.gradescope import (
    Graded,
    grade_folder_or_say_why,
    summary,
    write_results,
)

__all__ = ["JOB_ROOT", "grade_job", "main", "prairielearn_results"]

JOB_ROOT = Path("/grade")  # PrairieLearn's job folder: student/ in, results/ out


def prairielearn_results(graded: Graded) -> dict[str, Any]:
    """PrairieLearn's results.json for `graded` (see the module docstring)."""
    report = graded.report
    tests = [
        {
            "name": t["name"],
            "points": 1 if t["passed"] else 0,
            "max_points": 1,
            "message": t["message"],
            "output": t["message"],
        }
        for t in (report["tests"] if report else [])
    ]
    text = summary(graded)
    return {
        "gradable": graded.gradable,
        "succeeded": report is not None or not graded.gradable,
        "score": report["passed"] / report["total"] if report and report["total"] else 0.0,
        "message": text,
        "output": text,
        "tests": tests,
    }


def grade_job(
    job_root: Path | str = JOB_ROOT,
    allow_no_sandbox: bool = False,
    timeout: float = 60.0,
    workers: int = 2,
) -> dict[str, Any]:
    """Grade ``job_root/student/`` and write ``job_root/results/results.json``; return it."""
    job_root = Path(job_root)
    graded = grade_folder_or_say_why(job_root / "student", allow_no_sandbox, timeout, workers)
    results = prairielearn_results(graded)
    write_results(job_root / "results" / "results.json", results)
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: grade PrairieLearn's job folder; exit 0 once results.json is written."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers prairielearn",
        description="PrairieLearn external grader: grade the notebook in JOB_ROOT/student/ "
        "and write JOB_ROOT/results/results.json in PrairieLearn's format.",
        epilog="Set it as the question's externalGradingOptions.entrypoint "
        "(docs/instructor-guide.md, 'Grading on Gradescope, PrairieLearn and Canvas'). "
        "Exit status: 0 when results.json is written, whatever the score; 2 for a bad command "
        "line.",
    )
    parser.add_argument(
        "--job-root",
        default=str(JOB_ROOT),
        metavar="FOLDER",
        help="PrairieLearn's job folder, holding student/ (default: %(default)s; another for "
        "tests)",
    )
    parser.add_argument(
        "--allow-no-sandbox",
        action="store_true",
        help="where bubblewrap cannot start inside the grading container, grade without it "
        "(the container is then the only wall) and say so in the results; without this flag "
        "such a submission is not graded (succeeded: false)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time limit of each graded test's process (default: %(default)g); keep the "
        "question's externalGradingOptions.timeout above a whole submission's time",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="graded tests run at once (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.workers < 1:
        parser.error("--timeout and --workers must be more than 0")
    results = grade_job(args.job_root, args.allow_no_sandbox, args.timeout, args.workers)
    print(results["message"])
    return 0
