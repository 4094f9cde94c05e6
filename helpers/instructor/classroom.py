"""Grade a whole class in one command (instructor tool).

    python -m helpers classroom SUBMISSIONS/ --out gradebook/ [--parallel 2]

SUBMISSIONS/ holds one notebook per student: ``alice.ipynb``, or a folder per student with one
notebook in it (``alice/dlnd_face_generation.ipynb``). Each submission is graded by
helpers.instructor.grade in its own bubblewrap sandbox, ``--parallel`` of them at a time. Written to
``--out``:

- ``gradebook.csv`` and ``gradebook.json``: one row per student (score, status, failed tests);
- ``feedback/<student>.txt``: the rubric that student gets.

A submission that cannot be read, crashes, hangs or attacks the grader affects its own row only.
Exit status: 0 when the gradebook is written, 2 for a bad command line or no sandbox.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import queue
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from helpers.files import atomic_write, positive_int
from helpers.instructor import canvas
from helpers.instructor import grade as grader

__all__ = ["find_submissions", "grade_class", "main"]


def find_submissions(folder: Path | str) -> list[tuple[str, Path]]:
    """[(student, notebook path)] in `folder`: its .ipynb files, and its subfolders holding exactly
    one .ipynb (checkpoint folders ignored), sorted by student. ValueError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of submissions.")
    found, used = [], set()
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb":
            student, path = entry.stem, entry
        elif entry.is_dir() and not entry.name.startswith("."):
            notebooks = [p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
            if len(notebooks) != 1:
                continue
            student, path = entry.name, notebooks[0]
        else:
            continue
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"
        while name in used:  # two ids that clean up to one file name
            name += "_"
        used.add(name)
        found.append((name, path))
    if not found:
        raise ValueError(
            f"No notebooks in {folder}: put one .ipynb per student there, or one folder "
            f"per student holding one .ipynb."
        )
    return found


def _row(student, path, report=None, status="graded", problem=""):
    failed = [t["name"] for t in report["tests"] if not t["passed"]] if report else []
    return {
        "student": student,
        "notebook": str(path),
        "passed": report["passed"] if report else 0,
        "total": report["total"] if report else 0,
        "score": round(100 * report["passed"] / report["total"], 1) if report else 0.0,
        "status": status,
        "problem": problem,
        "failed_tests": " ".join(failed),
        "seconds": report.get("seconds", 0.0) if report else 0.0,
    }


def _spreadsheet_safe(value):
    """A CSV cell a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _grade_with_retry(path, **options):
    """grader.grade, tried a second time after a fault of the grading machine itself (a sandbox
    that did not start under load, say), which says nothing about the submission. The report
    notes the retry; a second fault propagates and becomes the row's "grader error"."""
    try:
        return grader.grade(path, **options)
    except (FileNotFoundError, ValueError):
        raise  # the submission itself cannot be read: another try will not help
    except Exception as err:
        first = grader.clean_text(f"{type(err).__name__}: {err}", 300)
    time.sleep(1.0)
    report = grader.grade(path, **options)
    report["notes"].append(f"Graded on a second try; the first failed: {first}")
    return report


def grade_class(
    folder: Path | str,
    out: Path | str,
    parallel: int = 2,
    timeout: float = 60.0,
    workers: int = 2,
    deadline: float | None = None,
    sandbox: bool = True,
    progress: Callable[[str], object] | None = print,
) -> list[dict[str, Any]]:
    """Grade every submission in `folder` into `out` (see the module docstring); return the rows."""
    submissions = find_submissions(folder)
    if sandbox:
        from helpers.instructor.sandbox import SandboxUnavailable, available

        reason = available()
        if reason:
            raise SandboxUnavailable(reason)
    out = Path(out)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // (parallel * workers))
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(parallel):
        slots.put(slot)

    def one(student, path):
        slot = slots.get()
        try:
            report = _grade_with_retry(
                path,
                timeout=timeout,
                workers=workers,
                deadline=deadline,
                sandbox=sandbox,
                slot=slot,
                threads=threads,
            )
            return student, path, report, "graded", ""
        except (FileNotFoundError, ValueError) as err:
            return student, path, None, "unreadable", grader.clean_text(str(err))
        except Exception as err:  # a fault of the grader on this one submission: its row only
            return (
                student,
                path,
                None,
                "grader error",
                grader.clean_text(f"{type(err).__name__}: {err}"),
            )
        finally:
            slots.put(slot)

    rows, reports, start = [], {}, time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(one, student, path) for student, path in submissions]
        for done, future in enumerate(as_completed(futures), start=1):
            student, path, report, status, problem = future.result()
            rows.append(_row(student, path, report, status, problem))
            if report:
                reports[student] = report
                text = grader.format_report(report)
            else:
                text = f"Grading {path}\n\nYour notebook could not be graded: {problem}\n"
            with atomic_write(out / "feedback" / f"{student}.txt", "w") as f:
                f.write(text + "\n")
            if progress:
                score = f"{report['passed']}/{report['total']}" if report else status
                progress(f"[{done}/{len(submissions)}] {student}: {score}")
    rows.sort(key=lambda r: r["student"])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({k: _spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    with atomic_write(out / "gradebook.csv", "w") as f:
        f.write(buffer.getvalue())
    book = {
        "submissions": len(rows),
        "seconds": round(time.monotonic() - start, 1),
        "students": [{**row, "report": reports.get(row["student"])} for row in rows],
    }
    with atomic_write(out / "gradebook.json", "w") as f:
        f.write(json.dumps(book, indent=1) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: grade a folder of submissions into a gradebook; exit 0, or 2 on a bad call."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers classroom",
        description="Grade every notebook in a folder, each in its own bubblewrap sandbox, and "
        "write a gradebook (CSV and JSON) and one feedback file per student.",
        epilog="Exit status: 0 when the gradebook is written (whatever the scores), 2 for a bad "
        "command line, a folder without notebooks, or no sandbox.",
    )
    parser.add_argument(
        "folder",
        help="the folder of submissions: NAME.ipynb files, or one folder "
        "per student holding one notebook",
    )
    parser.add_argument(
        "--out",
        default="gradebook",
        metavar="FOLDER",
        help="where gradebook.csv, gradebook.json and feedback/ go (default: %(default)s)",
    )
    parser.add_argument(
        "--parallel",
        type=positive_int,
        default=2,
        metavar="N",
        help="how many submissions are graded at once, each in its own sandbox "
        "(default: %(default)s)",
    )
    grader.add_grading_arguments(parser)
    canvas.add_canvas_arguments(parser)
    args = parser.parse_args(argv)
    from helpers.instructor.sandbox import SandboxUnavailable

    try:
        rows = grade_class(
            args.folder,
            args.out,
            parallel=args.parallel,
            timeout=args.timeout,
            workers=args.workers,
            deadline=args.deadline,
            sandbox=not args.no_sandbox,
        )
    except (ValueError, SandboxUnavailable) as err:
        print(f"classroom: error: {err}", file=sys.stderr)
        return 2
    canvas.write_canvas(args, rows)
    graded = sum(r["status"] == "graded" for r in rows)
    print(f"Graded {graded} of {len(rows)} submissions; gradebook in {args.out}/")
    return 0
