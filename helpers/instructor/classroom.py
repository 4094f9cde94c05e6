"""Grade a whole class in one command (instructor tool).

    python -m helpers classroom SUBMISSIONS/ --out gradebook/ [--parallel 2]

SUBMISSIONS/ holds one notebook per student: ``alice.ipynb``, or a folder per student with one
notebook in it (``alice/dlnd_face_generation.ipynb``). Each submission is graded by
helpers.instructor.grade in its own bubblewrap sandbox, ``--parallel`` of them at a time. Written to
``--out``:

- ``gradebook.csv`` and ``gradebook.json``: one row per student (score, status, failed tests);
- ``feedback/<student>.txt``: the rubric that student gets.

A submission that cannot be read, crashes, hangs or attacks the grader affects its own row only.
The grader reads each learner's own file only: a symbolic link anywhere in a submission (the
notebook, the student's folder, anything inside it), a file with other hard links or a file that
is not a regular file is refused with the reason and 0 points, never opened. Each notebook is
copied once, opened with ``O_NOFOLLOW`` through folders opened the same way, into a private
folder, and graded there. Row names are the submissions' names made safe for a file name; a name
that had to change, or that another submission shares, gets a short hash of its original name
(``alice!.ipynb`` becomes ``alice-1f3e2a``), so no two submissions share a row or a feedback file
and the same file gets the same row in every run. Control, bidi and invisible characters are
removed from every output, and CSV cells that a spreadsheet would run as a formula start with
``'``. The gradebook is written before grading starts (every row "pending") and again after each
row, so it is always complete.
Exit status: 0 when the gradebook is written, 2 for a bad command line or no sandbox.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import queue
import re
import shutil
import stat
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.files import atomic_write, positive_int
from helpers.instructor import canvas
from helpers.instructor import grade as grader
from helpers.instructor.cells import MAX_NOTEBOOK

__all__ = ["Submission", "clean_name", "find_submissions", "grade_class", "main"]

# Unicode categories never shown: controls (ESC, line breaks), format characters (bidi
# overrides, zero-width joiners, the BOM), surrogates, private use, unassigned, line and
# paragraph separators.
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
MAX_DEPTH = 16  # folders inside one student's folder
MAX_ENTRIES = 2000  # files and folders in one student's folder
NAME_CHARS = 60  # of a row name, before its hash


@dataclass
class Submission:
    """One row of the gradebook: `student` (the row and feedback file name), `entry` (the name
    in the submissions folder, as it is), `parts` (the notebook's path inside that folder, as
    names), `shown` (that path fit for any output) and `refused` (why it is not graded, or "")."""

    student: str
    entry: str
    parts: tuple[str, ...]
    shown: str
    refused: str = ""


def clean_name(text: str) -> str:
    """`text` without control, bidi and invisible characters (NFC, spaces kept), for any output;
    "?" when nothing is left."""
    text = unicodedata.normalize("NFC", text)
    kept = "".join(c for c in text if unicodedata.category(c) not in INVISIBLE).strip()
    return kept or "?"


def _clean_lines(text: str) -> str:
    """Feedback text: every line cleaned as a name, line breaks kept (only the grader's own)."""
    return "\n".join(
        "".join(c for c in line if unicodedata.category(c) not in INVISIBLE)
        for line in text.split("\n")
    )


def _clean_strings(value: Any) -> Any:
    """`value` (a report: dicts, lists, strings) with every string cleaned by _clean_lines."""
    if isinstance(value, str):
        return _clean_lines(value)
    if isinstance(value, dict):
        return {_clean_strings(k): _clean_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_strings(v) for v in value]
    return value


def _stem(entry: str) -> str:
    return entry[: -len(".ipynb")] if entry.endswith(".ipynb") else entry


def _safe(entry: str) -> str:
    """The entry's name as a file name: letters, digits, dot, dash and underscore."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", _stem(entry)).strip("._-")[:NAME_CHARS]
    return safe or "student"


def _hashed(entry: str, width: int) -> str:
    digest = hashlib.sha256(os.fsencode(entry)).hexdigest()[:width]
    return f"{_safe(entry)}-{digest}"


def _row_names(entries: list[str]) -> dict[str, str]:
    """{entry: row name}: the safe name when it is the name itself, else the safe name and a
    hash of the entry; names that still clash (ignoring case, as some file systems do) all get
    longer hashes. Depends only on the names, so it is the same in every run."""
    names = {e: _safe(e) if _safe(e) == _stem(e) else _hashed(e, 6) for e in entries}
    for width in (6, 12, 64):
        groups: dict[str, list[str]] = {}
        for entry, name in names.items():
            groups.setdefault(name.casefold(), []).append(entry)
        clashes = [e for group in groups.values() if len(group) > 1 for e in group]
        if not clashes:
            break
        for entry in clashes:
            names[entry] = _hashed(entry, width)
    return names


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class _Found:
    """What one student's folder holds: notebooks, links and oddities (paths as name tuples)."""

    notebooks: list[tuple[str, ...]] = field(default_factory=list)
    links: list[tuple[str, ...]] = field(default_factory=list)
    odd: list[str] = field(default_factory=list)
    entries: int = 0


def _walk(parent: int, name: str, parts: tuple[str, ...], found: _Found) -> None:
    """Add to `found` what folder `name` of folder fd `parent` and its subfolders hold, every
    folder opened without following a link, and bounded in depth and size."""
    if len(parts) > MAX_DEPTH:
        found.odd.append(f"folders nested deeper than {MAX_DEPTH}")
        return
    fd = os.open(name, _DIR, dir_fd=parent)
    try:
        with os.scandir(fd) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        for entry in entries:
            found.entries += 1
            if found.entries > MAX_ENTRIES:
                found.odd.append(f"more than {MAX_ENTRIES} files")
                return
            mode = entry.stat(follow_symlinks=False).st_mode
            path = (*parts, entry.name)
            if stat.S_ISLNK(mode):
                found.links.append(path)
            elif stat.S_ISDIR(mode):
                _walk(fd, entry.name, path, found)
            elif entry.name.endswith(".ipynb") and ".ipynb_checkpoints" not in parts:
                found.notebooks.append(path)
    finally:
        os.close(fd)


def _shown(folder: Path, parts: tuple[str, ...]) -> str:
    return str(folder.joinpath(*(clean_name(p) for p in parts)))


def find_submissions(folder: Path | str) -> list[Submission]:
    """The rows of `folder`, sorted by student: its .ipynb files, and its subfolders holding one
    .ipynb (checkpoint folders ignored; hidden entries and folders with none skipped); links,
    files that are not regular, and folders with links or several notebooks come as refused
    rows. Nothing is followed. ValueError when there is nothing to grade."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of submissions.")
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the instructor's own
    try:
        with os.scandir(top) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        kept: list[tuple[str, tuple[str, ...], str]] = []  # (entry, parts, refused)
        for entry in entries:
            name, mode = entry.name, entry.stat(follow_symlinks=False).st_mode
            if name.startswith(".") and not name.endswith(".ipynb"):
                continue
            if stat.S_ISLNK(mode):
                why = "it is a symbolic link; the grader never follows links: submit the file"
                kept.append((name, (name,), why))
            elif stat.S_ISDIR(mode):
                found = _Found()
                try:
                    _walk(top, name, (name,), found)
                except OSError as err:
                    found.odd.append(f"its folder cannot be read ({err.strerror})")
                notebooks, links = found.notebooks, found.links
                if found.odd:
                    kept.append((name, (name,), f"{found.odd[0]}: refused"))
                elif links:
                    where = clean_name("/".join(links[0][1:]))
                    kept.append(
                        (
                            name,
                            (name,),
                            f"its folder holds {len(links)} symbolic link(s) ({where}); the "
                            f"grader never follows links: submit files only",
                        )
                    )
                elif len(notebooks) > 1:
                    kept.append((name, (name,), f"its folder holds {len(notebooks)} notebooks"))
                elif notebooks:
                    kept.append((name, notebooks[0], ""))
            elif name.endswith(".ipynb"):
                why = "" if stat.S_ISREG(mode) else "it is not a regular file"
                kept.append((name, (name,), why))
    finally:
        os.close(top)
    if not kept:
        raise ValueError(
            f"No notebooks in {folder}: put one .ipynb per student there, or one folder "
            f"per student holding one .ipynb."
        )
    names = _row_names([entry for entry, _, _ in kept])
    rows = [
        Submission(names[entry], entry, parts, _shown(folder, parts), refused)
        for entry, parts, refused in kept
    ]
    return sorted(rows, key=lambda s: s.student)


class _Refused(ValueError):
    """A submission the grader will not open: a link, not a regular file, a shared file."""


def _copy_notebook(folder: Path, parts: tuple[str, ...], dest: Path) -> None:
    """Copy the notebook at `parts` in `folder` to `dest`, opening every folder on the way and
    the file itself without following a link; ValueError (the row's reason) when one is a link,
    the file is not a regular file, has other hard links or is too large."""
    fds = [os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    try:
        for part in parts[:-1]:
            try:
                fds.append(os.open(part, _DIR, dir_fd=fds[-1]))
            except OSError as err:
                raise _Refused(
                    f"a folder of this submission cannot be opened as a folder "
                    f"without following links ({err.strerror})"
                ) from err
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fds.append(os.open(parts[-1], flags, dir_fd=fds[-1]))
        except OSError as err:  # ELOOP: it became a link since the folder was read
            raise _Refused(
                f"the notebook cannot be opened without following links ({err.strerror})"
            ) from err
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            raise _Refused("it is not a regular file")
        if info.st_nlink > 1:
            raise _Refused(
                f"the file has {info.st_nlink - 1} other hard link(s), so it may be another "
                f"file (a classmate's, the solution): submit a copy of your own"
            )
        if info.st_size > MAX_NOTEBOOK:
            raise ValueError(
                f"the notebook is {info.st_size / 1e6:.0f} MB, more than the grader reads "
                f"({MAX_NOTEBOOK / 1e6:.0f} MB). Clear its outputs and save it again."
            )
        with os.fdopen(fds.pop(), "rb") as source, open(dest, "xb") as copy:
            copy.write(source.read(MAX_NOTEBOOK + 1))
    finally:
        for fd in fds:
            os.close(fd)


def _row(student, shown, report=None, status="graded", problem=""):
    failed = [t["name"] for t in report["tests"] if not t["passed"]] if report else []
    total = report["total"] if report else 0
    return {
        "student": student,
        "notebook": shown,
        "passed": report["passed"] if report else 0,
        "total": total,
        "score": round(100 * report["passed"] / total, 1) if report and total else 0.0,
        "status": status,
        "problem": problem,
        "failed_tests": " ".join(failed),
        "seconds": report.get("seconds", 0.0) if report else 0.0,
    }


def _spreadsheet_safe(value):
    """A CSV cell a spreadsheet will not run as a formula, without invisible characters."""
    text = clean_name(value) if isinstance(value, str) and value else str(value)
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


def _grade_one(
    folder: Path, sub: Submission, work: Path, out: Path, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Grade one submission and write its feedback file; (row, report or None). Never raises:
    whatever goes wrong (the grader itself included) ends in this row's status and problem."""
    report = None
    try:
        if sub.refused:
            raise _Refused(sub.refused)
        copy = work / f"{sub.student}.ipynb"
        try:
            _copy_notebook(folder, sub.parts, copy)
            report = _clean_strings(_grade_with_retry(copy, **options))
        finally:
            copy.unlink(missing_ok=True)
        report["notebook"] = sub.shown
        row = _row(sub.student, sub.shown, report)
        text = grader.format_report(report)
    except (FileNotFoundError, ValueError) as err:
        status = "refused" if isinstance(err, _Refused) else "unreadable"
        row, report = _row(sub.student, sub.shown, None, status, grader.clean_text(str(err))), None
    except (Exception, SystemExit) as err:  # the grader's fault on this submission: its row only
        problem = grader.clean_text(f"{type(err).__name__}: {err}")
        row, report = _row(sub.student, sub.shown, None, "grader error", problem), None
    if report is None:
        text = f"Grading {sub.shown}\n\nYour notebook could not be graded: {row['problem']}\n"
    try:
        with atomic_write(out / "feedback" / f"{sub.student}.txt", "w") as f:
            f.write(_clean_lines(text) + "\n")
    except OSError as err:
        row["problem"] = grader.clean_text(f"{row['problem']} (feedback not written: {err})")
    return row, report


def _write_gradebook(
    out: Path, rows: list[dict[str, Any]], reports: dict, seconds: float, complete: bool = False
):
    """gradebook.csv and gradebook.json from `rows` (in order) and {student: report};
    ``complete`` only once every submission was graded (a stopped run says it is not)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({k: _spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    with atomic_write(out / "gradebook.csv", "w") as f:
        f.write(buffer.getvalue())
    book = {
        "submissions": len(rows),
        "complete": complete,
        "seconds": round(seconds, 1),
        "students": [{**row, "report": reports.get(row["student"])} for row in rows],
    }
    with atomic_write(out / "gradebook.json", "w") as f:
        f.write(json.dumps(book, indent=1) + "\n")


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
    """Grade every submission in `folder` into `out` (see the module docstring); return the rows
    (sorted by student)."""
    folder = Path(folder)
    submissions = find_submissions(folder)
    if sandbox:
        from helpers.instructor.sandbox import SandboxUnavailable, available

        reason = available()
        if reason:
            raise SandboxUnavailable(reason)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # The last run's feedback is set aside, not mixed with this run's: a run stopped midway
    # must not leave last time's files looking like this time's.
    if (out / "feedback").is_dir():
        shutil.rmtree(out / "feedback.previous", ignore_errors=True)
        os.replace(out / "feedback", out / "feedback.previous")
    (out / "feedback").mkdir()
    threads = max(1, (os.cpu_count() or 1) // (parallel * workers))
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(parallel):
        slots.put(slot)
    options = {"timeout": timeout, "workers": workers, "deadline": deadline, "sandbox": sandbox}
    start = time.monotonic()
    pending = "not graded: the run stopped before this submission was graded"
    rows = [_row(s.student, s.shown, None, "pending", pending) for s in submissions]
    reports: dict[str, Any] = {}
    _write_gradebook(out, rows, reports, 0.0)

    def one(index, sub, work):
        slot = slots.get()
        try:
            return index, *_grade_one(
                folder, sub, work, out, {**options, "slot": slot, "threads": threads}
            )
        finally:
            slots.put(slot)

    with (
        tempfile.TemporaryDirectory(prefix="dcgan-class-") as work,
        ThreadPoolExecutor(max_workers=parallel) as pool,
    ):
        futures = [pool.submit(one, i, s, Path(work)) for i, s in enumerate(submissions)]
        for done, future in enumerate(as_completed(futures), start=1):
            index, row, report = future.result()
            rows[index] = row
            if report:
                reports[row["student"]] = report
            _write_gradebook(out, rows, reports, time.monotonic() - start)
            if progress:
                score = f"{report['passed']}/{report['total']}" if report else row["status"]
                progress(f"[{done}/{len(submissions)}] {row['student']}: {score}")
    _write_gradebook(out, rows, reports, time.monotonic() - start, complete=True)
    shutil.rmtree(out / "feedback.previous", ignore_errors=True)
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
