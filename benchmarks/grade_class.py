"""How long grading a class takes: N submissions, each in its own sandbox
(helpers.instructor.classroom).

    python -m benchmarks.grade_class [--students 100] [--parallel 2] [--workers 1]
                                     [--sandbox-cost 3]

The class is made from the kit's own notebooks, in these shares: the solution (full marks), the
bare learner release (no marks), the solution in the original course's format, the solution
with two broken pieces, notebooks that cannot be read, and hostile submissions (the attack
suite's floods and forgeries). `--sandbox-cost N` first grades the release N times with and
without the sandbox, to price the sandbox per submission. Prints a table and one JSON line.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from benchmarks import print_result
from helpers.files import positive_int
from helpers.instructor import classroom, grade
from helpers.instructor.release import make_release
from helpers.notebook import NOTEBOOK
from tests.original_format import original_notebook
from tests.test_attacks import attack_notebook

SHARES = {
    "solution": 0.3,
    "release": 0.3,
    "original": 0.2,
    "partial": 0.1,
    "unreadable": 0.05,
    "hostile": 0.05,
}


def make_class(folder, students):
    """Write `students` submissions into `folder`; return {kind: count}."""
    work = Path(tempfile.mkdtemp(prefix="dcgan-class-src-"))
    release, _, _ = make_release(NOTEBOOK, work / "release")
    partial = nbformat.read(NOTEBOOK, as_version=4)
    for cell in partial.cells:  # two pieces wrong: scale ignores feature_range, no tanh in G
        cell.source = cell.source.replace("return x * (high - low) + low", "return x * 2 - 1")
        cell.source = cell.source.replace(
            "return torch.tanh(self.deconv3(x))", "return self.deconv3(x)"
        )
    nbformat.write(partial, work / "partial.ipynb")
    sources = {
        "solution": [NOTEBOOK],
        "release": [release],
        "original": [original_notebook(work / "original.ipynb")],
        "partial": [work / "partial.ipynb"],
        "hostile": [
            attack_notebook(release, work, name, work / "canary", 9)
            for name in ("floods", "forge-result-pipe", "steal-and-harm")
        ],
    }
    counts = {kind: round(share * students) for kind, share in SHARES.items()}
    counts["solution"] += students - sum(counts.values())
    n = 0
    for kind, count in counts.items():
        for i in range(count):
            n += 1
            target = folder / f"student{n:03d}_{kind}.ipynb"
            if kind == "unreadable":
                target.write_text('{"nbformat": 4, "cells": "oops"}' if i % 2 else "not json")
            else:
                shutil.copy(sources[kind][i % len(sources[kind])], target)
    shutil.rmtree(work)
    return counts


def sandbox_cost(repeats):
    """Seconds to grade the release on test_scale in and out of the sandbox, best of `repeats`."""
    work = Path(tempfile.mkdtemp(prefix="dcgan-cost-"))
    release, _, _ = make_release(NOTEBOOK, work / "release")
    times = {True: [], False: []}
    for _ in range(repeats):
        for boxed in (True, False):
            start = time.monotonic()
            grade.grade(release, only=["test_scale"], sandbox=boxed)
            times[boxed].append(time.monotonic() - start)
    shutil.rmtree(work)
    return min(times[True]), min(times[False])


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.grade_class", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--students", type=positive_int, default=100, help="class size (default: %(default)s)"
    )
    parser.add_argument(
        "--parallel",
        type=positive_int,
        default=2,
        help="submissions graded at once (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="tests of one submission at once (default: %(default)s)",
    )
    parser.add_argument(
        "--sandbox-cost",
        type=int,
        default=3,
        metavar="N",
        help="price the sandbox first, best of N runs each way; 0 skips it (default: %(default)s)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the JSON line to PATH")
    args = parser.parse_args(argv)
    result = {"students": args.students, "parallel": args.parallel, "workers": args.workers}
    if args.sandbox_cost:
        boxed, plain = sandbox_cost(args.sandbox_cost)
        result.update(
            sandbox_s=round(boxed, 2),
            no_sandbox_s=round(plain, 2),
            sandbox_cost_s=round(boxed - plain, 2),
        )
        print(
            f"one submission on test_scale: {boxed:.2f} s in the sandbox, {plain:.2f} s without "
            f"(cost of the sandbox: {boxed - plain:+.2f} s)"
        )
    root = Path(tempfile.mkdtemp(prefix="dcgan-class-"))
    (root / "submissions").mkdir()
    counts = make_class(root / "submissions", args.students)
    start = time.monotonic()
    rows = classroom.grade_class(
        root / "submissions",
        root / "gradebook",
        parallel=args.parallel,
        workers=args.workers,
        progress=None,
    )
    wall = time.monotonic() - start
    by_kind = {}
    for row in rows:
        kind = row["student"].split("_", 1)[1]
        by_kind.setdefault(kind, []).append(row)
    print(f"{'kind':<11} {'count':>5} {'mean score':>10} {'statuses'}")
    for kind, kind_rows in by_kind.items():
        statuses = sorted({r["status"] for r in kind_rows})
        mean = sum(r["score"] for r in kind_rows) / len(kind_rows)
        print(f"{kind:<11} {len(kind_rows):5d} {mean:10.1f} {', '.join(statuses)}")
    # (No CPU time: the sandboxes' processes are reaped inside their own PID namespaces.)
    print(f"{args.students} submissions in {wall:.0f} s ({wall / args.students:.1f} s each)")
    result.update(
        counts=counts,
        wall_s=round(wall, 1),
        per_submission_s=round(wall / args.students, 2),
        gradebook=str(root / "gradebook"),
    )
    print_result(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
