"""A Gradescope autograder bundle of the kit's grader (instructor tool).

    python -m helpers gradescope --out DIR [--visibility after_due_date] [--allow-no-sandbox]

writes ``DIR/autograder.zip`` in Gradescope's layout: ``setup.sh`` and ``run_autograder`` at
its root, beside the kit files grading needs (Gradescope unzips it into
``/autograder/source/``):

- ``helpers/`` (the grader's trusted side included: it runs there), ``problem_unittests.py``,
  ``part2_unittests.py``, ``workspace_utils.py`` and a ``requirements.txt``;
- ``solution/*.ipynb``: the **learner editions** (what ``python -m helpers release`` makes, no
  solution code in them) under the names where the grader looks for the kit notebooks. The
  grader reads only their ``graded-test`` cells (which tests, with which arguments) and setup
  cells, and the learner editions carry the same ones, so the solution never leaves your
  machine;
- ``grading.json``: what you chose at bundle time (visibility, sandbox fallback, time limits);
- ``run_prairielearn``: the same files serve as PrairieLearn's external grader
  (helpers.instructor.prairielearn), with this script as the question's entrypoint.

Never in it: the solution notebooks, the mutants, the tests, the benchmarks, ``.git``.

``run_autograder`` grades the one notebook in ``$AUTOGRADER_ROOT/submission/``
(``AUTOGRADER_ROOT`` defaults to ``/autograder``) with ``python -m helpers gradescope --run``,
and writes ``$AUTOGRADER_ROOT/results/results.json`` in Gradescope's schema: one test per graded
test (score 1 or 0 out of 1, the learner-facing message as its output). A submission with no
notebook, several, or one that cannot be read, a sandbox that cannot start and a grader crash
each get a results.json that says so. :func:`grade_folder` is shared with
helpers.instructor.prairielearn.
"""

from __future__ import annotations

import argparse
import json
import os
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.files import atomic_write, positive_int
from helpers.instructor import grade as grader
from helpers.instructor.release import runtime_requirements
from helpers.instructor.shipping import TOP_LEVEL_FILES
from helpers.notebook import NOTEBOOK, PART2_NOTEBOOK, ROOT

__all__ = [
    "BUNDLE_NAME",
    "CONFIG_NAME",
    "EXECUTABLES",
    "VISIBILITIES",
    "Graded",
    "build_bundle",
    "bundle_members",
    "find_notebook",
    "grade_folder",
    "grade_folder_or_say_why",
    "gradescope_results",
    "main",
    "run_autograder",
    "write_results",
    "summary",
]

BUNDLE_NAME = "autograder.zip"
CONFIG_NAME = "grading.json"  # the instructor's choices, read by run_autograder
# Gradescope's visibility values, from most to least hidden.
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
# One fixed date for every zip member, so one kit makes one zip, byte for byte.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu base image).
set -euxo pipefail
export DEBIAN_FRONTEND=noninteractive
# Ubuntu 24.04's pip refuses system-wide installs without this (older pips ignore it); the
# image exists only to grade.
export PIP_BREAK_SYSTEM_PACKAGES=1
apt-get update
# bubblewrap is the grader's sandbox; prlimit (util-linux) sets its limits.
apt-get install -y --no-install-recommends python3 python3-pip bubblewrap util-linux
# CPU-only torch: the grader never uses a GPU, and the CPU wheels are a tenth of the size.
python3 -m pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \\
    torch torchvision
python3 -m pip install --no-cache-dir -r /autograder/source/requirements.txt
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission. It always leaves a results.json behind.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-python3}"
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
cd "$ROOT/source" && AUTOGRADER_ROOT="$ROOT" "$PYTHON" -m helpers gradescope --run
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
    printf '{"score": 0, "output": "The grader stopped (exit status %s) before it wrote any \
results. Your notebook was not graded: tell your instructor.", "tests": []}\\n' "$status" \
        > "$ROOT/results/results.json"
fi
exit 0
"""


# The same files serve PrairieLearn (docs/instructor-guide.md): this is the question's entrypoint.
RUN_PRAIRIELEARN = """\
#!/usr/bin/env bash
# PrairieLearn's entrypoint: grade /grade/student/ into /grade/results/results.json.
cd "$(dirname "$0")" && exec "${AUTOGRADER_PYTHON:-python3}" -m helpers prairielearn "$@"
"""
EXECUTABLES = ("setup.sh", "run_autograder", "run_prairielearn")


def bundle_members() -> dict[str, Path | str]:
    """{name in the zip: the kit file it copies, or its text}: what grading on Gradescope needs."""
    members: dict[str, Path | str] = {
        "setup.sh": SETUP_SH,
        "run_autograder": RUN_AUTOGRADER,
        "run_prairielearn": RUN_PRAIRIELEARN,
    }
    for path in sorted((ROOT / "helpers").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed"):
            members[path.relative_to(ROOT).as_posix()] = path
    for name in TOP_LEVEL_FILES:
        members[name] = ROOT / name
    # The learner editions stand in for the solution notebooks: same graded-test cells.
    for kit_notebook in (NOTEBOOK, PART2_NOTEBOOK):
        members[f"solution/{kit_notebook.name}"] = ROOT / kit_notebook.name
    members["requirements.txt"] = runtime_requirements()
    return members


def build_bundle(
    out: Path | str,
    visibility: str = "after_due_date",
    allow_no_sandbox: bool = False,
    timeout: float = 60.0,
    workers: int = 2,
) -> Path:
    """Write ``out/autograder.zip`` (see the module docstring); return its path."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
    config = {
        "visibility": visibility,
        "allow_no_sandbox": allow_no_sandbox,
        "timeout": timeout,
        "workers": workers,
    }
    members = bundle_members()
    members[CONFIG_NAME] = json.dumps(config, indent=2) + "\n"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / BUNDLE_NAME
    with atomic_write(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, source in members.items():
            info = zipfile.ZipInfo(name, _ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100755 if name in EXECUTABLES else 0o100644) << 16
            data = source.encode() if isinstance(source, str) else source.read_bytes()
            zf.writestr(info, data)
    return path


# ---------------------------------------------------------------- grading one submission


@dataclass
class Graded:
    """What grading a submission folder came to: the grader's report, or the reason there is
    none (`problem`, for the learner); `gradable` is False when the submission itself is at
    fault (no notebook, several, unreadable); `notes` say how it ran (the sandbox fallback)."""

    report: dict[str, Any] | None
    problem: str = ""
    gradable: bool = True
    notes: list[str] = field(default_factory=list)


def find_notebook(folder: Path | str) -> Path:
    """The one notebook in submission `folder` (checkpoint copies and links ignored: a link
    could point at any file of the grading machine); ValueError naming what was found when
    there is none or more than one."""
    folder = Path(folder)
    found = sorted(
        p
        for p in folder.rglob("*.ipynb")
        if p.is_file()
        and not p.is_symlink()
        and ".ipynb_checkpoints" not in p.relative_to(folder).parts
    )
    if not found:
        raise ValueError(
            "Your submission has no notebook (.ipynb file): upload your "
            f"{NOTEBOOK.name} (or {PART2_NOTEBOOK.name} for part 2)."
        )
    if len(found) > 1:
        names = ", ".join(p.relative_to(folder).as_posix() for p in found)
        raise ValueError(
            f"Your submission has {len(found)} notebooks ({names}); the grader grades one. "
            "Upload only the notebook you want graded."
        )
    return found[0]


def grade_folder(
    folder: Path | str,
    allow_no_sandbox: bool = False,
    timeout: float = 60.0,
    workers: int = 2,
) -> Graded:
    """Grade the one notebook in `folder` in a bubblewrap sandbox. Where the sandbox cannot
    start, grade without it only if `allow_no_sandbox` (and say so in the notes); else no report.
    Never raises for a bad submission or a grader fault: the reason is in the result."""
    from helpers.instructor.sandbox import available

    try:
        notebook = find_notebook(folder)
    except ValueError as err:
        return Graded(None, str(err), gradable=False)
    notes = []
    reason = available()
    if reason and not allow_no_sandbox:
        return Graded(
            None,
            "The grader's sandbox (bubblewrap) cannot start on this grading machine, and the "
            f"instructor did not allow grading without it. Your notebook was not graded. {reason}",
        )
    if reason:
        notes.append(
            "Graded without the bubblewrap sandbox, as the instructor allowed: it cannot start "
            f"on this grading machine ({grader.clean_text(reason, 200)})."
        )
    try:
        report = grader.grade(notebook, timeout=timeout, workers=workers, sandbox=not reason)
    except (FileNotFoundError, ValueError) as err:
        return Graded(
            None,
            f"Your notebook cannot be graded: {grader.clean_text(str(err))}",
            gradable=False,
            notes=notes,
        )
    except Exception as err:  # a fault of the grader, not the submission
        traceback.print_exc()  # into the platform's log, for the instructor
        return Graded(
            None,
            "The grader failed on this submission "
            f"({grader.clean_text(f'{type(err).__name__}: {err}', 300)}). Tell your instructor.",
            notes=notes,
        )
    report["notes"] = notes + report["notes"]
    return Graded(report, notes=notes)


def summary(graded: Graded) -> str:
    """The learner-facing text of a whole submission: the score, notes and definition errors,
    or why it was not graded."""
    if graded.report is None:
        return "\n".join([*graded.notes, graded.problem])
    report = graded.report
    lines = [f"{report['passed']}/{report['total']} graded tests passed."]
    lines += [f"Note: {note}" for note in report["notes"]]
    if report["definition_errors"]:
        lines.append("Problems while running your definition cells:")
        lines += [
            f"  {e['message']}  [cell {e['cell']} starts: {e['cell_starts']}]"
            for e in report["definition_errors"]
        ]
    return "\n".join(lines)


def gradescope_results(graded: Graded, visibility: str = "after_due_date") -> dict[str, Any]:
    """Gradescope's results.json for `graded`: score, output, visibility and one test per
    graded test (score 1.0 or 0.0 out of max_score 1.0, output its message)."""
    tests = [
        {
            "name": t["name"],
            "score": 1.0 if t["passed"] else 0.0,
            "max_score": 1.0,
            "output": t["message"],
            "visibility": visibility,
        }
        for t in (graded.report["tests"] if graded.report else [])
    ]
    return {
        "score": float(sum(t["score"] for t in tests)),
        "output": summary(graded),
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def run_autograder(root: Path | str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Grade ``root/submission/`` and write ``root/results/results.json``; return what was
    written. `config` defaults to the bundle's grading.json (keys visibility, allow_no_sandbox,
    timeout, workers)."""
    root = Path(root)
    if config is None:  # outside a bundle (the kit itself) there is none: the defaults
        path = ROOT / CONFIG_NAME
        config = json.loads(path.read_text()) if path.exists() else {}
    visibility = config.get("visibility", "after_due_date")
    graded = grade_folder_or_say_why(
        root / "submission",
        bool(config.get("allow_no_sandbox", False)),
        float(config.get("timeout", 60.0)),
        int(config.get("workers", 2)),
        tell=" Tell your instructor.",
    )
    results = gradescope_results(graded, visibility)
    write_results(root / "results" / "results.json", results)
    return results


def grade_folder_or_say_why(
    folder: Path, allow_no_sandbox: bool, timeout: float, workers: int, tell: str = ""
) -> Graded:
    """grade_folder, with any fault it did not catch itself turned into a Graded that says what
    failed: a platform must always get a results file, never a traceback alone."""
    try:
        return grade_folder(folder, allow_no_sandbox, timeout, workers)
    except Exception as err:
        traceback.print_exc()  # the platform's log keeps the whole story for the instructor
        return Graded(None, f"The grader failed ({type(err).__name__}: {err}).{tell}")


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write a platform's results JSON whole (never half a file), making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        f.write(json.dumps(results, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command line: build the bundle (--out), or grade inside it (--run); exit 0, or 2."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers gradescope",
        description="Build a Gradescope autograder bundle (autograder.zip) of the kit's grader, "
        "with the learner editions of the notebooks and no solution.",
        epilog="Upload DIR/autograder.zip as the programming assignment's autograder "
        "(docs/instructor-guide.md, 'Grading on Gradescope, PrairieLearn and Canvas'). "
        "Exit status: 0 when the zip is written (or, with --run, results.json), 2 for a bad "
        "command line.",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="write DIR/autograder.zip (the folder is made if missing)"
    )
    parser.add_argument(
        "--visibility",
        choices=VISIBILITIES,
        default="after_due_date",
        help="when learners see their score and each test's message on Gradescope "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--allow-no-sandbox",
        action="store_true",
        help="where bubblewrap cannot start inside Gradescope's container, grade without it "
        "(Gradescope's container is then the only wall between the learner's code and the "
        "grader) and say so in results.json; without this flag such a submission is not "
        "graded and results.json says why",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time limit of each graded test's process (default: %(default)g)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        metavar="N",
        help="graded tests run at once per submission (default: %(default)s)",
    )
    parser.add_argument(
        "--run",
        action="store_true",
        help="used by the bundle's run_autograder, not by you: grade the notebook in "
        "$AUTOGRADER_ROOT/submission/ (default /autograder) with the bundle's grading.json "
        "and write $AUTOGRADER_ROOT/results/results.json",
    )
    args = parser.parse_args(argv)
    if args.run:
        results = run_autograder(os.environ.get("AUTOGRADER_ROOT", "/autograder"))
        print(results["output"])
        return 0
    if not args.out:
        parser.error("give --out DIR (or --run inside the bundle)")
    if args.timeout <= 0:
        parser.error(f"--timeout must be more than 0, got {args.timeout:g}")
    path = build_bundle(
        args.out, args.visibility, args.allow_no_sandbox, args.timeout, args.workers
    )
    print(f"Wrote {path}: upload it as the assignment's autograder on Gradescope.")
    return 0
